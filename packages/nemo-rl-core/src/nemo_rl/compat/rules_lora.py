"""Migration rules for NeMo RL's DTensor LoRA settings (`policy.dtensor_cfg.lora_cfg`) into
`policy.lora`.

With `lora_cfg.enabled` false every other LoRA key is dropped (it had no effect). Enabled, the
rank (`dim`), `alpha` and `dropout` are always carried, because nemo-rl's defaults differ from
NeMo RL's (alpha 16, not 32); `match_all_linear: true` overrides `target_modules`, as it did in
NeMo RL, and becomes `target_modules: all-linear`. NeMo RL's kernel and initialisation switches
have no equivalent and are reported. Megatron's `peft` section is reported as not carried.

Example:
    >>> [r.new for r in LORA_RULES if r.old.endswith("lora_cfg.dim")]
    ['policy.lora.rank']
"""

from __future__ import annotations

from typing import Any

from nemo_rl.compat.rule_types import Drop, MigrationContext, Rule

LORA_CFG = "policy.dtensor_cfg.lora_cfg"


def _on_dtensor(ctx: MigrationContext) -> str | None:
    if ctx.training_backend == "dtensor":
        return None
    return (
        "policy.dtensor_cfg.enabled is false, so the run uses the "
        f"{ctx.training_backend} backend: the DTensor LoRA settings have no effect"
    )


def _enabled(ctx: MigrationContext) -> bool:
    return ctx.get(f"{LORA_CFG}.enabled") is True


def _when_enabled(value: Any, ctx: MigrationContext) -> Any:
    if not _enabled(ctx):
        return Drop(f"{LORA_CFG}.enabled is false: LoRA is off, so this setting had no effect")
    return value


def _flag(value: Any, ctx: MigrationContext) -> Any:
    return value if value is True else Drop("false: LoRA is off, which is nemo-rl's default")


def _all_linear(value: Any, ctx: MigrationContext) -> Any:
    kept = _when_enabled(value, ctx)
    if isinstance(kept, Drop):
        return kept
    if value is True:
        return "all-linear"
    return Drop("false: the adapted layers come from lora_cfg.target_modules")


def _target_modules(value: Any, ctx: MigrationContext) -> Any:
    kept = _when_enabled(value, ctx)
    if isinstance(kept, Drop):
        return kept
    if ctx.get(f"{LORA_CFG}.match_all_linear", True) is not False:
        return Drop(
            "lora_cfg.match_all_linear is true, which overrode target_modules in NeMo RL: every "
            "linear layer of the decoder blocks is adapted (policy.lora.target_modules: all-linear)"
        )
    if not value:
        return Drop(
            "empty: nemo-rl adapts the model family's attention and MLP projections "
            "(policy.lora.target_modules: null)",
            changes_behaviour=True,
        )
    return list(value)


def _exclude_modules(value: Any, ctx: MigrationContext) -> Any:
    kept = _when_enabled(value, ctx)
    if isinstance(kept, Drop) or not value:
        return kept if isinstance(kept, Drop) else Drop("empty: nothing is excluded")
    return list(value)


def _dropout_position(value: Any, ctx: MigrationContext) -> Any:
    kept = _when_enabled(value, ctx)
    if isinstance(kept, Drop):
        return kept
    if not ctx.get(f"{LORA_CFG}.dropout", 0.0) or value == "pre":
        return Drop("nemo-rl applies LoRA dropout to the adapter's input (NeMo RL's 'pre')")
    return Drop(
        f"dropout_position {value!r} is not available: nemo-rl (peft) applies LoRA dropout to "
        "the adapter's input (NeMo RL's 'pre')",
        changes_behaviour=True,
    )


def _not_carried(reason: str, changes_behaviour: bool = False):
    def convert(value: Any, ctx: MigrationContext) -> Any:
        kept = _when_enabled(value, ctx)
        return kept if isinstance(kept, Drop) else Drop(reason, changes_behaviour)

    return convert


def _megatron_peft(value: Any, ctx: MigrationContext) -> Any:
    if ctx.training_backend != "megatron":
        return Drop("policy.megatron_cfg.enabled is false: the Megatron LoRA settings have no effect")
    if value is not True:
        return Drop("false: LoRA is off")
    return Drop(
        "LoRA on the Megatron backend is not available yet; nemo-rl trains LoRA with the dtensor "
        "backend (policy.backend: dtensor, policy.lora.enabled: true)",
        changes_behaviour=True,
    )


LORA_RULES: list[Rule] = [
    Rule(f"{LORA_CFG}.enabled", "policy.lora.enabled", convert=_flag, when=_on_dtensor),
    Rule(f"{LORA_CFG}.dim", "policy.lora.rank", "when enabled", _when_enabled, _on_dtensor),
    Rule(f"{LORA_CFG}.alpha", "policy.lora.alpha", "when enabled",
         lambda v, c: _when_enabled(float(v), c), _on_dtensor),
    Rule(f"{LORA_CFG}.dropout", "policy.lora.dropout", "when enabled",
         lambda v, c: _when_enabled(float(v), c), _on_dtensor),
    Rule(f"{LORA_CFG}.match_all_linear", "policy.lora.target_modules", "true -> all-linear",
         _all_linear, _on_dtensor),
    Rule(f"{LORA_CFG}.target_modules", "policy.lora.target_modules",
         "when match_all_linear is false", _target_modules, _on_dtensor),
    Rule(f"{LORA_CFG}.exclude_modules", "policy.lora.exclude_modules", "when enabled",
         _exclude_modules, _on_dtensor),
    Rule(f"{LORA_CFG}.dropout_position", None, convert=_dropout_position, when=_on_dtensor),
    Rule(f"{LORA_CFG}.lora_A_init", None, convert=_not_carried(
        "nemo-rl initialises A as peft does (Kaiming-uniform) and B at zero, so training starts "
        "from the base model as in NeMo RL"), when=_on_dtensor),
    Rule(f"{LORA_CFG}.use_triton", None, convert=_not_carried(
        "a kernel switch: nemo-rl runs peft's PyTorch LoRA layers"), when=_on_dtensor),
    Rule(f"{LORA_CFG}.*", None, convert=_not_carried(
        "a LoRA setting nemo-rl does not offer (policy.lora has rank, alpha, dropout, "
        "target_modules, exclude_modules, layers, save_merged)", changes_behaviour=True),
        when=_on_dtensor),
    Rule("policy.megatron_cfg.peft.enabled", None, convert=_megatron_peft),
]
