"""Migration rules for GRPO's reward: NeMo RL's `data.*.env_name` (or its lone `env.<name>`
section) becomes nemo-rl's `environment`, a name registered by a plugin such as nemo-rl-envs.

NeMo RL picked an environment per dataset (`data.train.env_name`, else `data.default.env_name`)
and configured it from `env.<name>`; its oldest scripts hard-wired the one `env.math` section.
Its reward-model environment (`env.reward_model`: an HF model scored on its own GPUs) becomes
nemo-rl-envs' `reward_model` with the model, precision, batch size and length as
`environment_options`, raw scores as NeMo RL gave them (`derive_environment_options`), and its
training-only worker settings dropped with the reason.

Example:
    >>> environment_for_legacy({"data.default.env_name": "math_default", "env.math.num_workers": 8})
    'math'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nemo_rl.compat.rule_types import Drop, MigrationContext, Rule

# NeMo RL environment name -> nemo-rl environment name (both registries' `math` and `code` verify
# the same way: math-verify on the boxed answer; sandboxed execution of the tests).
RENAMED_ENVIRONMENTS = {
    "math": "math", "math_default": "math", "code": "code", "reward_model": "reward_model",
}
# NeMo RL environments nemo-rl does not have; a name in neither table passes through unchanged,
# so a config naming a nemo-rl environment (`exact_match`) or a user's own plugin keeps it.
MISSING_ENVIRONMENTS = {
    "code_jaccard": "Jaccard-similarity code scoring",
    "math_multi_reward": "GDPO's multi-reward math scoring",
    **{name: "vision-language answer scoring"
       for name in ("vlm", "clevr-cogent", "geometry3k", "refcoco")},
    "nemo_gym": "NeMo Gym environments",
    "sliding_puzzle_game": "the sliding-puzzle game",
}
NEMO_RL_ENVS = ("math", "code", "exact_match", "guess_number", "reward_model", "llm_judge")
# Most specific first: a dataset's own env_name overrides the defaults section.
ENV_NAME_KEYS = ("data.train.env_name", "data.default.env_name", "data.env_name")
FIX = (
    f"nemo-rl-envs provides {', '.join(NEMO_RL_ENVS)}: override ++data.default.env_name=<one of "
    "them>, or pass fit(reward_fn=...) from Python"
)


def legacy_environment_name(legacy: Mapping[str, Any]) -> str | None:
    """The environment a legacy GRPO config trains with, as NeMo RL names it (from its flat
    resolved keys); None when it names none, or several `env` sections and no `env_name`.

    Example:
        >>> legacy_environment_name({"env.math.num_workers": 8, "env.code.num_workers": 2}) is None
        True
    """
    for key in ENV_NAME_KEYS:
        if legacy.get(key):
            return str(legacy[key])
    sections = {key.split(".")[1] for key in legacy if key.startswith("env.")}
    return sections.pop() if len(sections) == 1 else None


def new_environment_name(name: str) -> str | Drop:
    """The nemo-rl environment for NeMo RL's `name`, or a `Drop` saying it has no equivalent.

    Example:
        >>> new_environment_name("math_default"), new_environment_name("exact_match")
        ('math', 'exact_match')
    """
    if name in MISSING_ENVIRONMENTS:
        return Drop(
            f"NeMo RL's '{name}' environment ({MISSING_ENVIRONMENTS[name]}) has no nemo-rl "
            f"equivalent, so the run has no reward; {FIX}",
            changes_behaviour=True,
        )
    return RENAMED_ENVIRONMENTS.get(name, name)


def environment_for_legacy(legacy: Mapping[str, Any]) -> str | None:
    """The nemo-rl `environment` for a legacy GRPO config; None when there is none to map."""
    name = legacy_environment_name(legacy)
    new = new_environment_name(name) if name else None
    return new if isinstance(new, str) else None


def _environment(value: Any, ctx: MigrationContext) -> str | Drop:
    return new_environment_name(str(value))


def _validation_environment(value: Any, ctx: MigrationContext) -> Drop:
    training = legacy_environment_name(ctx.legacy)
    if str(value) == training:
        return Drop("validation scores with the training environment in nemo-rl")
    return Drop(
        f"nemo-rl validates with the training environment ('{training}'), not '{value}'",
        changes_behaviour=True,
    )


def _environment_is(name: str):
    def condition(ctx: MigrationContext) -> str | None:
        if environment_for_legacy(ctx.legacy) == name:
            return None
        return f"the run's environment is not '{name}': its settings are unused"

    return condition


_NOTE = "math_default -> math; names nemo-rl lacks (vlm, nemo_gym, ...) are dropped"
_RM = "env.reward_model"
_WHEN_RM = "when the environment is reward_model"


def _reward_model_tokenizer(value: Any, ctx: MigrationContext) -> Drop:
    if value in (None, ctx.get(f"{_RM}.model_name")):
        return Drop("the reward model's own tokenizer is used, as here")
    return Drop(
        f"nemo-rl's reward_model environment uses the tokenizer saved with the model, not "
        f"{value!r}; save that tokenizer with the model if it differs",
        changes_behaviour=True,
    )


def _reward_model_checkpoint(value: Any, ctx: MigrationContext) -> Drop:
    if value is None:
        return Drop("no checkpoint set")
    return Drop(
        f"NeMo RL loaded the reward model's weights from its own checkpoint {value!r}; nemo-rl "
        "loads environment_options.model, an HF model directory or hub name: export the "
        "checkpoint to HF format and set environment_options.model to it",
        changes_behaviour=True,
    )


def derive_environment_options(tree: dict[str, Any], legacy: Mapping[str, Any]) -> None:
    """Options of the migrated environment that no single legacy key holds: NeMo RL's reward
    model environment scored with the model's raw (Bradley-Terry) output on a GPU of its own
    (`env.reward_model.resources`), so nemo-rl's gets `transform: raw` and `device: cuda`.

    Example:
        >>> tree = {"environment": "reward_model"}
        >>> derive_environment_options(tree, {"env.reward_model.resources.gpus_per_node": 1})
        >>> tree["environment_options"]
        {'transform': 'raw', 'device': 'cuda'}
    """
    if tree.get("environment") != "reward_model":
        return
    options = tree.setdefault("environment_options", {})
    options.setdefault("transform", "raw")
    if (legacy.get(f"{_RM}.resources.gpus_per_node") or 0) > 0:
        options.setdefault("device", "cuda")


_REWARD_MODEL_RULES: list[Rule] = [
    Rule(f"{_RM}.model_name", "environment_options.model", _WHEN_RM, when=_environment_is("reward_model")),
    Rule(f"{_RM}.precision", "environment_options.dtype", _WHEN_RM, when=_environment_is("reward_model")),
    Rule(f"{_RM}.batch_size", "environment_options.batch_size", _WHEN_RM,
         when=_environment_is("reward_model")),
    Rule(f"{_RM}.max_model_len", "environment_options.max_length", _WHEN_RM,
         when=_environment_is("reward_model")),
    Rule(f"{_RM}.tokenizer.name", None, _WHEN_RM, _reward_model_tokenizer, when=_environment_is("reward_model")),
    Rule(f"{_RM}.checkpoint_path", None, _WHEN_RM, _reward_model_checkpoint,
         when=_environment_is("reward_model")),
    Rule(f"{_RM}.resources.*", None,
         "nemo-rl runs the reward model where environment_pool puts it, on environment_options."
         "device (cuda when NeMo RL gave it GPUs): inline, that is the driver's GPU; "
         "environment_pool.mode: ray with environment_pool.ray_num_gpus: 1 gives it a GPU of "
         "its own"),
    Rule(f"{_RM}.reward_model_cfg.*", None,
         "NeMo RL's reward model environment always scored Bradley-Terry style (the raw model "
         "output); the migrated environment_options.transform is raw to match"),
    Rule(f"{_RM}.*", None,
         "a training setting of NeMo RL's reward-model worker (parallelism, batching, packing, "
         "offloading, data processor); nemo-rl's reward model only scores"),
]

ENVIRONMENT_RULES: list[Rule] = [
    Rule("data.train.env_name", "environment", _NOTE, _environment, priority=2),
    Rule("data.default.env_name", "environment", _NOTE, _environment, priority=1),
    Rule("data.env_name", "environment", _NOTE, _environment),
    Rule("data.validation.env_name", None, "validation uses the training environment",
         _validation_environment),
    # NeMo RL's code environment ran `num_workers` sandboxes at once; nemo-rl's runs threads.
    Rule("env.code.num_workers", "environment_options.max_workers", "when the environment is code",
         when=_environment_is("code")),
    *_REWARD_MODEL_RULES,
]
