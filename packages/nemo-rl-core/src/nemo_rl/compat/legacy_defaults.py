"""NeMo RL's default values for backend-specific options (from its `grpo_math_1B.yaml`).

Backend options move to `policy.backend_options` / `generation.backend_options`, which the
installed backend validates. A legacy value equal to NeMo RL's default is not carried: it is
reported as dropped (the backend's own default applies), which keeps migrated files short and does
not pin options a backend may name differently. A callable default is computed from the legacy
config (vLLM's `max_model_len` follows `policy.max_total_sequence_length`).

Example:
    >>> DTENSOR_DEFAULTS["tensor_parallel_size"]
    1
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

DTENSOR_DEFAULTS: dict[str, Any] = {
    "cpu_offload": False,
    "sequence_parallel": False,
    "tensor_parallel_size": 1,
    "context_parallel_size": 1,
    "dp_replicate_size": 1,
    "custom_parallel_plan": None,
    "clear_cache_every_n_steps": None,
    # lora_cfg.* has its own rules (nemo_rl.compat.rules_lora).
}


def _max_seq_len(legacy: dict[str, Any]) -> Any:
    return legacy.get("policy.max_total_sequence_length")


def _precision(legacy: dict[str, Any]) -> Any:
    return legacy.get("policy.precision")


VLLM_DEFAULTS: dict[str, Any | Callable[[dict[str, Any]], Any]] = {
    "async_engine": False,
    "precision": _precision,
    "kv_cache_dtype": "auto",
    "logprobs_mode": "processed_logprobs",
    "tensor_parallel_size": 1,
    "pipeline_parallel_size": 1,
    "expert_parallel_size": 1,
    "gpu_memory_utilization": 0.6,
    "max_model_len": _max_seq_len,
    "enforce_eager": False,
    "use_tqdm": True,
    "use_deep_gemm": False,
    "num_last_layers_in_bf16": 0,
    "num_first_layers_in_bf16": 0,
    "enable_vllm_metrics_logger": True,
    "vllm_metrics_logger_interval": 0.5,
    "http_refit_api_key_env_var": None,
    "reset_encoder_cache_after_weight_update": False,
    "http_refit_server_port": None,
    "zmq_refit_server_port": None,
}


def legacy_default(table: dict[str, Any], rest: str, legacy: dict[str, Any]) -> tuple[bool, Any]:
    """(whether `rest` has a NeMo RL default in `table`, that default)."""
    if rest not in table:
        return False, None
    default = table[rest]
    return True, default(legacy) if callable(default) else default
