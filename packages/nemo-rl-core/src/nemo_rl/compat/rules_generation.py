"""Migration rules for `policy.generation.*` (GRPO's rollout engine) -> `generation.*`.

Backend-specific sections (`vllm_cfg`, `vllm_kwargs`, `sglang_cfg`, ...) are kept in
`generation.backend_options` when that backend generates, else dropped.

Example:
    >>> [r.new for r in GENERATION_RULES if r.old == "policy.generation.colocated.enabled"]
    ['generation.colocated']
"""

from __future__ import annotations

from typing import Any

from nemo_rl.compat.legacy_defaults import VLLM_DEFAULTS
from nemo_rl.compat.rule_types import Drop, MigrationContext, Rule, dropped, unsupported
from nemo_rl.compat.rules_policy import backend_option

_GEN = "policy.generation"


def _generating_with(backend: str):
    def condition(ctx: MigrationContext) -> str | None:
        if ctx.generation_backend == backend:
            return None
        return f"{_GEN}.backend is {ctx.generation_backend!r}: {backend}-only options have no effect"

    return condition


def _dedicated_gpus(value: Any, ctx: MigrationContext) -> Any:
    if ctx.get(f"{_GEN}.colocated.enabled", True):
        return Drop("generation is colocated: dedicated generation resources are unused")
    gpus = ctx.get(f"{_GEN}.colocated.resources.gpus_per_node") or ctx.get("cluster.gpus_per_node")
    return int(gpus) * int(ctx.get(f"{_GEN}.colocated.resources.num_nodes") or 1)


def _hf_batch_size(value: Any, ctx: MigrationContext) -> Any:
    if ctx.generation_backend != "hf":
        return Drop(f"only used by the HF generation backend; this run generates with "
                    f"{ctx.generation_backend!r}")
    return value


def _backend_sections() -> list[Rule]:
    rules = []
    for backend, defaults in [("vllm", VLLM_DEFAULTS), ("sglang", None), ("trtllm", None)]:
        rules += [
            Rule(f"{_GEN}.{backend}_cfg.*", "generation.backend_options.{rest}",
                 f"when generation.backend is {backend}",
                 backend_option(f"{_GEN}.{backend}_cfg", defaults), _generating_with(backend)),
            Rule(f"{_GEN}.{backend}_kwargs.*", "generation.backend_options.engine_kwargs.{rest}",
                 f"when generation.backend is {backend}",
                 backend_option(f"{_GEN}.{backend}_kwargs"), _generating_with(backend)),
            Rule(f"{_GEN}.{backend}_kwargs", "generation.backend_options.engine_kwargs",
                 convert=backend_option(_GEN), when=_generating_with(backend)),
        ]
    rules += [
        Rule(f"{_GEN}.mcore_generation_config.*", "generation.backend_options.{rest}",
             "when generation.backend is megatron",
             backend_option(f"{_GEN}.mcore_generation_config"), _generating_with("megatron")),
        Rule(f"{_GEN}.dynamo_cfg.*", "generation.backend_options.{rest}",
             "when generation.backend is dynamo",
             backend_option(f"{_GEN}.dynamo_cfg"), _generating_with("dynamo")),
    ]
    return rules


GENERATION_RULES: list[Rule] = [
    Rule(f"{_GEN}.backend", "generation.backend"),
    *[Rule(f"{_GEN}.{k}", f"generation.{k}") for k in
      ("temperature", "top_p", "top_k", "max_new_tokens", "stop_strings", "stop_token_ids")],
    Rule(f"{_GEN}.colocated.enabled", "generation.colocated"),
    Rule(f"{_GEN}.colocated.resources.gpus_per_node", "generation.num_gpus",
         "gpus_per_node x num_nodes, when not colocated", _dedicated_gpus),
    Rule(f"{_GEN}.colocated.resources.num_nodes", "generation.num_gpus",
         "gpus_per_node x num_nodes, when not colocated", _dedicated_gpus),
    Rule("policy.generation_batch_size", "generation.batch_size", "HF backend only",
         _hf_batch_size),
    *_backend_sections(),
    *[Rule(f"{_GEN}.{k}", f"generation.backend_options.{k}", "when generation.backend is vllm",
           backend_option(_GEN, {"real_quant_export_cpu_offload": True}),
           _generating_with("vllm"))
      for k in ("refit_transport", "real_quant_export_cpu_offload")],
    Rule(f"{_GEN}.refit_cfg.*", "generation.backend_options.refit_cfg.{rest}",
         "when generation.backend is vllm and refit_transport is set",
         lambda v, c: v if c.get(f"{_GEN}.refit_transport") else Drop(
             "policy.generation.refit_transport is null: these transport settings are unused"),
         _generating_with("vllm")),
    *dropped("validation samples with the generation settings; nemo-rl has no separate "
             "validation sampling", f"{_GEN}.val_temperature", f"{_GEN}.val_top_p",
             f"{_GEN}.val_top_k"),
    *dropped("nemo-rl's config has no port settings", f"{_GEN}.port_range_low",
             f"{_GEN}.port_range_high"),
    unsupported(f"{_GEN}.use_async_rollouts", "asynchronous rollouts"),
]
