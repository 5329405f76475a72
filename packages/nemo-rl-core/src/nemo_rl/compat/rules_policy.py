"""Migration rules for `policy.*`: model, backend choice, backend options, optimizer, scheduler,
batching.

Example:
    >>> [r.new for r in POLICY_RULES if r.old == "policy.dtensor_cfg.enabled"]
    ['policy.backend']
"""

from __future__ import annotations

from typing import Any

from nemo_rl.compat.legacy_defaults import DTENSOR_DEFAULTS, legacy_default
from nemo_rl.compat.rule_types import Drop, MigrationContext, Rule, dropped, same, unsupported
from nemo_rl.compat.rules_lora import LORA_RULES

_TORCH_OPTIMIZERS = {"AdamW": "adamw", "Adam": "adam", "SGD": "sgd"}
_PRECISIONS = {"bfloat16", "float16", "float32"}


def _is(backend: str, option_owner: str):
    def condition(ctx: MigrationContext) -> str | None:
        if ctx.training_backend == backend:
            return None
        return (
            f"policy.{option_owner}.enabled is false, so the run uses the "
            f"{ctx.training_backend} backend: {backend}-only options have no effect"
        )

    return condition


def _backend_name(value: Any, ctx: MigrationContext) -> str:
    return ctx.training_backend


def backend_option(section: str, defaults: dict[str, Any] | None = None):
    """Converter carrying a backend-specific legacy value into `backend_options`, unless it is
    empty, NeMo RL's default, or inside a sub-section whose `enabled` flag is false."""

    def convert(value: Any, ctx: MigrationContext) -> Any:
        rest = ctx.key[len(section) + 1 :]
        parts = rest.split(".")
        for depth in range(1, len(parts)):
            flag = f"{section}.{'.'.join(parts[:depth])}.enabled"
            if ctx.get(flag) is False:
                return Drop(f"{flag} is false: this option of the disabled feature has no effect")
        if value is None or value == {}:
            return Drop("empty in the legacy config: nothing to carry")
        known, default = legacy_default(defaults or {}, rest, ctx.legacy)
        if known and value == default and type(value) is type(default):
            return Drop(f"equals NeMo RL's default ({default!r}): the backend's own default applies")
        return value

    return convert


def _optimizer_name(value: Any, ctx: MigrationContext) -> Any:
    short = str(value).rsplit(".", 1)[-1]
    if short in _TORCH_OPTIMIZERS:
        return _TORCH_OPTIMIZERS[short]
    return Drop(
        f"optimizer {value!r} has no nemo-rl equivalent (adamw, adam, sgd); the run uses adamw",
        changes_behaviour=True,
    )


def _optimizer_kwarg(value: Any, ctx: MigrationContext) -> Any:
    name = ctx.key.rsplit(".", 1)[-1]
    if name == "betas":
        return tuple(value)
    if name in {"foreach", "fused"}:
        return Drop(f"'{name}' is an implementation switch the training backend chooses itself")
    if name not in {"lr", "weight_decay", "eps"}:
        return Drop(f"optimizer argument '{name}' has no nemo-rl equivalent", changes_behaviour=True)
    return value


def _not_megatron(ctx: MigrationContext) -> str | None:
    if ctx.training_backend == "megatron":
        return "Megatron runs use policy.megatron_cfg.optimizer / scheduler, not this one"
    return None


def _precision(value: Any, ctx: MigrationContext) -> Any:
    if value in _PRECISIONS:
        return value
    return Drop(f"precision {value!r} is not one of {sorted(_PRECISIONS)}; auto applies", True)


def _tokenizer_name(value: Any, ctx: MigrationContext) -> Any:
    # None means "the model's own tokenizer", which is what the common `${policy.model_name}` says.
    return None if value == ctx.get("policy.model_name") else value


def torch_scheduler(value: Any, ctx: MigrationContext) -> Any:
    """NeMo RL's list of torch schedulers (warm-up LinearLR, then constant/cosine/linear, joined
    by milestones) as {name, warmup_steps, min_lr_ratio, total_steps}."""
    if not value:
        return Drop("null: a constant learning rate, which is nemo-rl's default")
    steps = [s for s in value if isinstance(s, dict) and "name" in s]
    kinds = [str(s["name"]).rsplit(".", 1)[-1] for s in steps]
    kwargs = [s.get("kwargs") or {} for s in steps]
    result: dict[str, Any] = {"name": "constant", "warmup_steps": 0}
    if kinds and kinds[0] == "LinearLR" and kwargs[0].get("end_factor", 1.0) == 1.0:
        result["warmup_steps"] = int(kwargs[0].get("total_iters", 5))
        start = kwargs[0].get("start_factor", 1.0 / 3)
        ctx.notes.append(
            f"policy.scheduler: NeMo RL warmed up from {start} x lr; nemo-rl's warm-up start is "
            "its own (not configurable)"
        )
        kinds, kwargs = kinds[1:], kwargs[1:]
    if len(kinds) > 1:
        return Drop(f"scheduler chain {kinds} has no nemo-rl equivalent; constant applies", True)
    lr = ctx.get("policy.optimizer.kwargs.lr") or 1.0
    if kinds and kinds[0] == "CosineAnnealingLR":
        result.update(name="cosine", min_lr_ratio=kwargs[0].get("eta_min", 0.0) / lr)
        result["total_steps"] = result["warmup_steps"] + int(kwargs[0]["T_max"])
    elif kinds and kinds[0] == "LinearLR":
        result.update(name="linear", min_lr_ratio=kwargs[0].get("end_factor", 1.0))
        result["total_steps"] = result["warmup_steps"] + int(kwargs[0].get("total_iters", 5))
    elif kinds and (kinds[0] != "ConstantLR" or kwargs[0].get("factor", 1.0) != 1.0):
        return Drop(f"scheduler {kinds[0]} {kwargs[0]} has no nemo-rl equivalent", True)
    return result


_MEGATRON = "policy.megatron_cfg"
_MEGATRON_OPT = f"{_MEGATRON}.optimizer"
_MEGATRON_SCHED = f"{_MEGATRON}.scheduler"


def _megatron_optimizer(value: Any, ctx: MigrationContext) -> Any:
    # Megatron's "adam" applies decoupled weight decay, i.e. AdamW.
    return {"adam": "adamw", "sgd": "sgd"}.get(value) or Drop(f"optimizer {value!r} unknown", True)


def _megatron_betas(value: Any, ctx: MigrationContext) -> tuple[float, float]:
    return (ctx.get(f"{_MEGATRON_OPT}.adam_beta1", 0.9), ctx.get(f"{_MEGATRON_OPT}.adam_beta2", 0.999))


def _decay_style(value: Any, ctx: MigrationContext) -> Any:
    if value in {"constant", "linear", "cosine"}:
        return value
    return Drop(f"lr_decay_style {value!r} has no nemo-rl equivalent; constant applies", True)


def _when_decaying(value: Any, ctx: MigrationContext) -> Any:
    if ctx.get(f"{_MEGATRON_SCHED}.lr_decay_style", "constant") == "constant":
        return Drop("lr_decay_style is constant, so the learning rate never decays to it")
    if ctx.key.endswith("min_lr"):
        return value / ctx.get(f"{_MEGATRON_OPT}.lr")
    return value


def _grad_clip(value: Any, ctx: MigrationContext) -> Any:
    return value or None  # Megatron's clip_grad 0 means no clipping


def _when_recomputing(value: Any, ctx: MigrationContext) -> Any:
    if not ctx.get(f"{_MEGATRON}.activation_checkpointing", False):
        return Drop("activation_checkpointing is false, so nothing is recomputed")
    if ctx.key.endswith("recompute_modules"):
        if value is None or ctx.get(f"{_MEGATRON}.recompute_granularity") != "selective":
            return Drop("only read with recompute_granularity: selective (core_attn by default)")
        unknown = sorted(set(value) - {"core_attn", "mlp", "layernorm"})
        if unknown:
            return Drop(f"recompute_modules {unknown} are MoE/MLA modules nemo-rl's Megatron "
                        "backend does not build; the default (core_attn) applies", True)
    return value


def _unmapped_dtensor(value: Any, ctx: MigrationContext) -> Any:
    carried = backend_option("policy.dtensor_cfg", DTENSOR_DEFAULTS)(value, ctx)
    if isinstance(carried, Drop):
        return carried
    return Drop(
        "a DTensor setting nemo-rl's dtensor backend does not offer (it shards with FSDP2 over "
        "all ranks; policy.dtensor holds offload_reference_to_cpu, policy.lora the adapters)",
        changes_behaviour=True,
    )


def _unmapped_megatron(value: Any, ctx: MigrationContext) -> Any:
    carried = backend_option(_MEGATRON)(value, ctx)
    if isinstance(carried, Drop):
        return carried
    return Drop(
        "a Megatron setting nemo-rl's megatron backend does not offer (policy.megatron holds its "
        "parallelism, distributed-optimizer and recomputation settings)"
    )


_MEGATRON_SECTION = [
    Rule(f"{_MEGATRON}.tensor_model_parallel_size", "policy.megatron.tensor_parallel_size"),
    Rule(f"{_MEGATRON}.pipeline_model_parallel_size", "policy.megatron.pipeline_parallel_size"),
    Rule(f"{_MEGATRON}.context_parallel_size", "policy.megatron.context_parallel_size"),
    Rule(f"{_MEGATRON}.sequence_parallel", "policy.megatron.sequence_parallel"),
    Rule(f"{_MEGATRON_OPT}.use_distributed_optimizer", "policy.megatron.use_distributed_optimizer"),
    Rule(f"{_MEGATRON}.distributed_data_parallel_config.overlap_grad_reduce",
         "policy.megatron.overlap_grad_reduce"),
    Rule(f"{_MEGATRON}.distributed_data_parallel_config.overlap_param_gather",
         "policy.megatron.overlap_param_gather"),
    Rule(f"{_MEGATRON}.recompute_granularity", "policy.megatron.recompute_granularity",
         "when activation_checkpointing", _when_recomputing),
    Rule(f"{_MEGATRON}.recompute_modules", "policy.megatron.recompute_modules",
         "when recompute_granularity is selective", _when_recomputing),
]


POLICY_RULES: list[Rule] = [
    *same(
        "policy.model_name",
        "policy.tokenizer.chat_template",
        "policy.train_micro_batch_size",
        "policy.logprob_batch_size",
        "policy.max_total_sequence_length",
        "policy.max_grad_norm",
    ),
    Rule("policy.tokenizer.name", "policy.tokenizer.name", "null when it equals model_name",
         _tokenizer_name),
    Rule("policy.train_global_batch_size", "policy.train_global_batch_size"),
    Rule("policy.precision", "policy.precision", convert=_precision),
    Rule("policy.dtensor_cfg.enabled", "policy.backend", "dtensor or megatron", _backend_name),
    Rule("policy.megatron_cfg.enabled", "policy.backend", "dtensor or megatron", _backend_name),
    Rule("policy.dtensor_cfg.activation_checkpointing", "policy.activation_checkpointing",
         when=_is("dtensor", "dtensor_cfg")),
    Rule("policy.activation_checkpointing_enabled", "policy.activation_checkpointing"),
    *dropped("nemo-rl has one DTensor implementation", "policy.dtensor_cfg._v2"),
    Rule("policy.dtensor_cfg.*", None, "dropped with a reason unless empty, default or disabled",
         _unmapped_dtensor, _is("dtensor", "dtensor_cfg")),
    Rule("policy.optimizer", "policy.optimizer", "null", lambda v, c: Drop(
        "null: the Megatron backend uses policy.megatron_cfg.optimizer" if v is None else "empty")),
    Rule("policy.optimizer.name", "policy.optimizer.name", "torch class -> adamw/adam/sgd",
         _optimizer_name, _not_megatron),
    Rule("policy.optimizer.kwargs.*", "policy.optimizer.{rest}", "lr, weight_decay, betas, eps",
         _optimizer_kwarg, _not_megatron),
    Rule("policy.scheduler", "policy.scheduler", "LinearLR warm-up + Constant/Cosine/LinearLR -> "
         "name, warmup_steps, min_lr_ratio, total_steps", torch_scheduler, _not_megatron),
    Rule(f"{_MEGATRON}.activation_checkpointing", "policy.activation_checkpointing",
         when=_is("megatron", "megatron_cfg")),
    Rule(f"{_MEGATRON_OPT}.optimizer", "policy.optimizer.name", "adam -> adamw",
         _megatron_optimizer, _is("megatron", "megatron_cfg")),
    Rule(f"{_MEGATRON_OPT}.lr", "policy.optimizer.lr", when=_is("megatron", "megatron_cfg")),
    Rule(f"{_MEGATRON_OPT}.weight_decay", "policy.optimizer.weight_decay",
         when=_is("megatron", "megatron_cfg")),
    Rule(f"{_MEGATRON_OPT}.adam_beta1", "policy.optimizer.betas", "(adam_beta1, adam_beta2)",
         _megatron_betas, _is("megatron", "megatron_cfg")),
    Rule(f"{_MEGATRON_OPT}.adam_beta2", "policy.optimizer.betas", "(adam_beta1, adam_beta2)",
         _megatron_betas, _is("megatron", "megatron_cfg")),
    Rule(f"{_MEGATRON_OPT}.adam_eps", "policy.optimizer.eps", when=_is("megatron", "megatron_cfg")),
    Rule(f"{_MEGATRON_OPT}.clip_grad", "policy.max_grad_norm", "0 -> null", _grad_clip,
         _is("megatron", "megatron_cfg"), priority=1),
    Rule(f"{_MEGATRON_OPT}.min_lr", "policy.scheduler.min_lr_ratio", "min_lr / lr",
         _when_decaying, _is("megatron", "megatron_cfg")),
    Rule(f"{_MEGATRON_SCHED}.lr_decay_style", "policy.scheduler.name", convert=_decay_style,
         when=_is("megatron", "megatron_cfg")),
    Rule(f"{_MEGATRON_SCHED}.lr_warmup_iters", "policy.scheduler.warmup_steps",
         when=_is("megatron", "megatron_cfg")),
    Rule(f"{_MEGATRON_SCHED}.lr_decay_iters", "policy.scheduler.total_steps",
         convert=_when_decaying, when=_is("megatron", "megatron_cfg")),
    *(Rule(r.old, r.new, r.note, r.convert, _is("megatron", "megatron_cfg"))
      for r in _MEGATRON_SECTION),
    Rule(f"{_MEGATRON}.*", None, "dropped with a reason unless empty or disabled",
         _unmapped_megatron, _is("megatron", "megatron_cfg")),
    Rule("policy.hf_config_overrides.*", "policy.backend_options.hf_config_overrides.{rest}",
         convert=backend_option("policy")),
    Rule("policy.hf_config_overrides", "policy.backend_options.hf_config_overrides",
         convert=backend_option("policy")),
    Rule("policy.sequence_packing.enabled", "policy.sequence_packing"),
    Rule("policy.sequence_packing.train_mb_tokens", "policy.max_tokens_per_microbatch",
         when=lambda c: None if c.get("policy.sequence_packing.enabled") else
         "policy.sequence_packing.enabled is false: this token budget is unused"),
    Rule("policy.dynamic_batching.enabled", "policy.max_tokens_per_microbatch",
         "true -> dynamic_batching.train_mb_tokens",
         lambda v, c: c.get("policy.dynamic_batching.train_mb_tokens") if v else Drop(
             "off: nemo-rl batches by sequence count unless policy.max_tokens_per_microbatch "
             "is set")),
    Rule("policy.dynamic_batching.train_mb_tokens", "policy.max_tokens_per_microbatch",
         when=lambda c: None if c.get("policy.dynamic_batching.enabled") else
         "policy.dynamic_batching.enabled is false: this token budget is unused"),
    *dropped("nemo-rl uses one token budget (policy.max_tokens_per_microbatch) for training and "
             "log-prob micro-batches", "policy.sequence_packing.logprob_mb_tokens",
             "policy.dynamic_batching.logprob_mb_tokens"),
    *dropped("packing details are chosen by nemo-rl's packer",
             "policy.sequence_packing.algorithm", "policy.sequence_packing.microbatch_order",
             "policy.sequence_packing.sequence_length_round",
             "policy.dynamic_batching.sequence_length_round"),
    *dropped("the training backend pads sequences as its parallelism needs",
             "policy.make_sequence_length_divisible_by"),
    *dropped("nemo-rl has no such switch: offloading at phase changes is decided by its infra layer",
             "policy.offload_optimizer_for_logprob"),
    *dropped("nemo-rl passes no chat-template kwargs; bake them into policy.tokenizer.chat_template",
             "policy.tokenizer.chat_template_kwargs"),
    *dropped("a NeMo RL tokenizer implementation switch; nemo-rl uses the HF tokenizer",
             "policy.tokenizer.use_fastokens"),
    *dropped("multimodal (video) preprocessing is not part of nemo-rl yet", "policy.tokenizer.video.*"),
    unsupported("policy.logprob_chunk_size", "chunked log-prob computation"),
    unsupported("policy.draft.enabled", "draft-model (speculative) training"),
    *dropped("only used with policy.draft.enabled", "policy.draft.*"),
    unsupported("policy.router_replay.enabled", "MoE router replay"),
    *dropped("only used with policy.router_replay.enabled", "policy.router_replay.*"),
    *LORA_RULES,
]
