"""`generation.backend_options` of the vllm backend: validated, split into vLLM engine arguments
and nemo-rl's own settings (refit chunk size and timeout, sleep level).

Accepted keys: the common engine arguments in `ENGINE_KEYS` (passed to `vllm.LLM` as they are),
`precision` (NeMo RL's name for `dtype`), `logprobs_mode` (only `raw_logprobs`: log-probs of the
unscaled model, what the training backend's `get_logprobs` returns), `engine_kwargs` (any other
`vllm.LLM` argument, passed through last, so it wins) and the nemo-rl settings in `VLLMOptions`.
Anything else is refused with the list, so a typo never silently does nothing.

Example:
    >>> opts = parse_options({"gpu_memory_utilization": 0.5, "refit_timeout_s": 60}, "cuda", True)
    >>> opts.engine["gpu_memory_utilization"], opts.refit_timeout_s, opts.engine["enable_sleep_mode"]
    (0.5, 60.0, True)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# vLLM engine arguments accepted at the top level of backend_options (NeMo RL's vllm_cfg names).
ENGINE_KEYS = frozenset(
    {
        "tensor_parallel_size",
        "pipeline_parallel_size",
        "gpu_memory_utilization",
        "max_model_len",
        "enforce_eager",
        "dtype",
        "kv_cache_dtype",
        "seed",
        "enable_prefix_caching",
        "max_num_seqs",
        "max_num_batched_tokens",
        "cpu_offload_gb",
        "quantization",
        "trust_remote_code",
        "enable_sleep_mode",
    }
)
NEMO_RL_KEYS = frozenset(
    {"refit_chunk_bytes", "refit_timeout_s", "sleep_level", "precision", "logprobs_mode", "engine_kwargs"}
)
# Left free below gpu_memory_utilization when colocated: the training backend's state that is
# still resident while the engine is built (its weights and optimizer are offloaded only later).
COLOCATED_GPU_MEMORY_UTILIZATION = 0.5


@dataclass
class VLLMOptions:
    """Validated backend options: `engine` goes to `vllm.LLM(**engine)`; the rest is nemo-rl's.

    `refit_chunk_bytes` bounds the bytes of one refit message when the engine runs in other
    processes; `refit_timeout_s` turns a stalled refit into an error; `sleep_level` is vLLM's
    (1: weights to host memory, KV cache dropped; 2: both dropped, only when every wake is
    followed by `update_weights`).

    Example:
        >>> VLLMOptions().sleep_level
        1
    """

    engine: dict[str, Any] = field(default_factory=dict)
    refit_chunk_bytes: int = 512 * 1024**2
    refit_timeout_s: float = 600.0
    sleep_level: int = 1


def parse_options(
    options: dict[str, Any], device_type: str, colocated: bool, devices: list[int] | None = None
) -> VLLMOptions:
    """Check `backend_options` and add the defaults of `device_type` ("cpu" or "cuda").

    CPU needs eager mode and float32 (vLLM's CPU path compiles no graphs here and our parity
    tests compare fp32); on CUDA, a colocated engine gets sleep mode and a memory share that
    leaves room for the training backend. `devices` are the GPUs of an engine that does not
    share them (`generation.colocated: false`): vLLM's `device_ids`, with a tensor-parallel size
    of their number unless the options split them another way (tensor x pipeline parallel sizes
    must then multiply to it).

    Example:
        >>> parse_options({}, "cpu", True).engine["dtype"]
        'float32'
        >>> parse_options({"tp": 2}, "cpu", True)
        Traceback (most recent call last):
        ...
        ValueError: generation.backend_options ['tp'] are not understood by the vllm backend; ...
    """
    unknown = sorted(set(options) - ENGINE_KEYS - NEMO_RL_KEYS)
    if unknown:
        raise ValueError(
            f"generation.backend_options {unknown} are not understood by the vllm backend; "
            f"it accepts {sorted(ENGINE_KEYS | NEMO_RL_KEYS)}; put any other vllm.LLM argument "
            "under backend_options.engine_kwargs"
        )
    mode = options.get("logprobs_mode", "raw_logprobs")
    if mode != "raw_logprobs":
        raise ValueError(
            f"generation.backend_options.logprobs_mode={mode!r}: nemo-rl's generation log-probs "
            "are those of the unscaled model (what get_logprobs returns), so only 'raw_logprobs' "
            "is accepted"
        )
    extra = options.get("engine_kwargs") or {}
    if not isinstance(extra, dict):
        raise ValueError(
            f"generation.backend_options.engine_kwargs must be a mapping, got {type(extra).__name__}"
        )
    if "precision" in options and "dtype" in options:
        raise ValueError("generation.backend_options: set dtype or precision (its alias), not both")
    engine: dict[str, Any] = {"logprobs_mode": "raw_logprobs"}
    if device_type == "cpu":
        engine.update(dtype="float32", enforce_eager=True)
    elif colocated:
        engine.update(enable_sleep_mode=True, gpu_memory_utilization=COLOCATED_GPU_MEMORY_UTILIZATION)
    engine.update({k: v for k, v in options.items() if k in ENGINE_KEYS})
    if "precision" in options:
        engine["dtype"] = options["precision"]
    engine.update(extra)
    if devices:
        _place_on(engine, devices)
    level = int(options.get("sleep_level", 1))
    if level not in (1, 2):
        raise ValueError(f"generation.backend_options.sleep_level={level}; use 1 or 2")
    return VLLMOptions(
        engine=engine,
        refit_chunk_bytes=int(options.get("refit_chunk_bytes", VLLMOptions.refit_chunk_bytes)),
        refit_timeout_s=float(options.get("refit_timeout_s", VLLMOptions.refit_timeout_s)),
        sleep_level=level,
    )


def _place_on(engine: dict[str, Any], devices: list[int]) -> None:
    """Put the engine on `devices` (its own GPUs), its parallel sizes covering all of them."""
    if "tensor_parallel_size" not in engine and "pipeline_parallel_size" not in engine:
        engine["tensor_parallel_size"] = len(devices)
    tp, pp = int(engine.get("tensor_parallel_size", 1)), int(engine.get("pipeline_parallel_size", 1))
    if tp * pp != len(devices):
        raise ValueError(
            f"generation.num_gpus={len(devices)} but generation.backend_options has "
            f"tensor_parallel_size={tp} x pipeline_parallel_size={pp} = {tp * pp} GPUs; make "
            "them multiply to generation.num_gpus (or leave both unset: tensor parallel over all)"
        )
    engine["device_ids"] = list(devices)


def engine_devices(colocated: bool, num_gpus: int, device_type: str, training_workers: int, visible: int) -> list[int] | None:
    """The GPUs of an engine that does not share the training GPUs (`generation.colocated:
    false`): the `generation.num_gpus` right after the training workers' (infra's placement,
    `nemo_rl.infra.placement.separate_devices`); None when colocated or generating on the CPU.

    Example:
        >>> engine_devices(False, 2, "cuda", training_workers=2, visible=4)
        [2, 3]
        >>> engine_devices(True, 0, "cuda", training_workers=4, visible=4) is None
        True
    """
    if colocated:
        return None
    if device_type != "cuda":
        if num_gpus:
            raise ValueError(
                f"generation.num_gpus={num_gpus} with generation.colocated=false asks for GPUs of "
                "its own, but the cluster runs on the CPU (cluster.gpus_per_node=0, or no GPU "
                "seen); set generation.num_gpus=0 to generate on the CPU, or run on GPUs"
            )
        return None
    from nemo_rl.infra.placement import separate_devices

    return separate_devices(training_workers, num_gpus, visible)[1]
