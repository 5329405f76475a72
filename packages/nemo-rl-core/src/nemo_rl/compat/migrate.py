"""Migrate a legacy NeMo RL config (YAML file or dict) to a validated nemo-rl config.

Every resolved legacy leaf key either lands in a new key (`mapping[old] = new`) or is dropped
with a reason (`mapping[old] = None`, `dropped[old] = reason`); nothing is lost silently.

Example:
    >>> from nemo_rl.compat import migrate_legacy_config
    >>> legacy = {"grpo": {"num_prompts_per_step": 8}, "loss_fn": {"reference_policy_kl_penalty": 0.0}}
    >>> result = migrate_legacy_config(legacy)
    >>> result.config.loss.kl_penalty, result.mapping["loss_fn.reference_policy_kl_penalty"]
    (0.0, 'loss.kl_penalty')
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from nemo_rl.compat.datasets import resolve_datasets
from nemo_rl.compat.legacy_loader import LegacyConfigError, LegacyOverrides, load_legacy_config
from nemo_rl.compat.rule_types import Drop, MigrationContext, Rule
from nemo_rl.compat.rules_algorithms import ALGORITHM_RULES
from nemo_rl.compat.rules_environment import (
    ENVIRONMENT_RULES,
    derive_environment_options,
    environment_for_legacy,
)
from nemo_rl.compat.rules_generation import GENERATION_RULES
from nemo_rl.compat.rules_infra import INFRA_RULES
from nemo_rl.compat.rules_policy import POLICY_RULES
from nemo_rl.config.algorithm import AlgorithmConfig
from nemo_rl.config.schema import flatten

SUPPORTED_ALGORITHMS = ("grpo", "sft", "dpo")
UNSUPPORTED_ALGORITHMS = {
    "ppo": "PPO",
    "rm": "reward-model training",
    "distillation": "distillation",
}


class UnsupportedAlgorithmError(LegacyConfigError):
    """A legacy config of an algorithm nemo-rl does not implement yet (PPO, RM, distillation)."""


@dataclass
class MigrationResult:
    """The outcome of a migration.

    `config` is the validated new config; `mapping` sends every legacy dotted leaf key to the new
    dotted key it landed in (None when dropped); `dropped` gives each dropped key's reason;
    `warnings` are the deprecation messages (one per renamed key or section, plus each dropped
    value that changes the run); `legacy_values` are the resolved legacy leaves.

    Example:
        >>> r = migrate_legacy_config({"sft": {"max_num_steps": 5}})
        >>> r.config.max_num_steps, r.mapping["sft.max_num_steps"]
        (5, 'max_num_steps')
    """

    config: AlgorithmConfig
    mapping: dict[str, str | None]
    dropped: dict[str, str]
    warnings: list[str]
    legacy_values: dict[str, Any] = field(repr=False)


def detect_algorithm(legacy: Mapping[str, Any]) -> str:
    """The algorithm a legacy config trains, from its top-level section; errors name the fix."""
    unsupported = [name for name in UNSUPPORTED_ALGORITHMS if name in legacy]
    if unsupported:
        what = UNSUPPORTED_ALGORITHMS[unsupported[0]]
        raise UnsupportedAlgorithmError(
            f"this is a NeMo RL {what} config (top-level '{unsupported[0]}' section): nemo-rl "
            f"does not support {what} yet, only {', '.join(SUPPORTED_ALGORITHMS)}; keep running "
            "it with NeMo RL"
        )
    found = [name for name in SUPPORTED_ALGORITHMS if name in legacy]
    if len(found) != 1:
        problem = "has none" if not found else f"has several ({', '.join(found)})"
        raise LegacyConfigError(
            f"a legacy NeMo RL config names its algorithm by one top-level section (grpo, sft or "
            f"dpo); this one {problem}: keep exactly one"
        )
    return found[0]


def _rules_for(algorithm: str) -> tuple[dict[str, Rule], list[Rule]]:
    rules = [*ALGORITHM_RULES[algorithm], *POLICY_RULES]
    if algorithm == "grpo":
        rules += [*GENERATION_RULES, *ENVIRONMENT_RULES]  # before INFRA_RULES, which drop env.*
    rules += INFRA_RULES
    exact: dict[str, Rule] = {}
    for rule in rules:
        if not rule.is_section:
            exact.setdefault(rule.old, rule)
    sections = sorted((r for r in rules if r.is_section), key=lambda r: -len(r.old))
    return exact, sections


def _context(algorithm: str, flat: dict[str, Any]) -> MigrationContext:
    backend = "megatron" if flat.get("policy.megatron_cfg.enabled") is True else "dtensor"
    generation = flat.get("policy.generation.backend", "vllm") if algorithm == "grpo" else None
    return MigrationContext(algorithm, backend, generation, flat)


def _set(tree: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for part in parents:
        tree = tree.setdefault(part, {})
    if isinstance(value, dict) and isinstance(tree.get(leaf), dict):
        tree[leaf].update(value)
    else:
        tree[leaf] = value


def _unmatched_reason(key: str, algorithm: str) -> str:
    return f"no equivalent in nemo-rl's {algorithm} config (section '{key.split('.')[0]}')"


def _display(pattern: str) -> str:
    return pattern.replace("{rest}", "*")


def migrate_legacy_config(
    path_or_dict: str | os.PathLike | Mapping[str, Any], overrides: LegacyOverrides = None
) -> MigrationResult:
    """Load a legacy NeMo RL config (with its `defaults:`, interpolations and Hydra-style
    `overrides`), map every key to the new layout and validate the result.

    Raises `UnsupportedAlgorithmError` for PPO, RM and distillation configs and
    `LegacyConfigError` (a `ConfigError`) naming the legacy keys behind any invalid value.
    """
    legacy = load_legacy_config(path_or_dict, overrides)
    algorithm = detect_algorithm(legacy)
    flat = flatten(legacy)
    ctx = _context(algorithm, flat)
    exact, sections = _rules_for(algorithm)
    mapping: dict[str, str | None] = {}
    dropped: dict[str, str] = {}
    warnings: list[str] = []
    landed: dict[str, list[tuple[int, str, Any]]] = {}
    for key, value in flat.items():
        rule = exact.get(key) or next((r for r in sections if r.matches(key)), None)
        outcome = rule.apply(key, value, ctx) if rule else Drop(_unmatched_reason(key, algorithm))
        if isinstance(outcome, Drop):
            mapping[key], dropped[key] = None, outcome.reason
            if outcome.changes_behaviour:
                warnings.append(f"'{key}' ({value!r}) is dropped: {outcome.reason}")
            continue
        new_key, new_value = outcome
        landed.setdefault(new_key, []).append((rule.priority, key, new_value))  # type: ignore[union-attr]
        mapping[key] = new_key
        if rule.old != rule.new:  # type: ignore[union-attr]
            message = f"'{rule.old}' is deprecated: use '{_display(rule.new)}'"  # type: ignore[union-attr,arg-type]
            if message not in warnings:
                warnings.append(message)
    tree: dict[str, Any] = {"algorithm": algorithm}
    for new_key, sources in landed.items():
        winner = max(sources, key=lambda s: s[0])
        for _, old_key, value in sources:
            if value != winner[2]:
                mapping[old_key] = None
                dropped[old_key] = (
                    f"superseded by '{winner[1]}' ({winner[2]!r}), which NeMo RL reads"
                )
        _set(tree, new_key, winner[2])
    _derive(tree, flat, algorithm)
    resolve_datasets(tree, flat, mapping, dropped, warnings)
    warnings += [n for n in ctx.notes if n not in warnings]
    config = _validate(tree, algorithm, mapping, flat)
    _report_missing_backends(config, mapping, dropped, warnings)
    return MigrationResult(config, mapping, dropped, warnings, flat)


def _report_missing_backends(
    config: Any, mapping: dict[str, str | None], dropped: dict[str, str], warnings: list[str]
) -> None:
    """Options of a backend that is not installed (or not available yet) cannot be honoured
    (nothing here can even validate them): they are dropped, each reported in `.dropped` with the
    reason (the install command, or "not available yet"), so that migrating again once the
    backend is there carries them."""
    from nemo_rl import registry

    sections = [("training_backends", "policy", config.policy.backend)]
    if getattr(config, "generation", None) is not None:
        sections.append(("generation_backends", "generation", config.generation.backend))
    for group, section, name in sections:
        if name in registry.available(group):
            continue  # installed: importing it (torch, transformers) is the run's job, not this one's
        try:
            registry.resolve(group, name)
            continue
        except registry.PluginNotFoundError as err:
            reason = str(err)
            # A planned backend cannot be installed yet: no "install it and migrate again".
            later = (
                "migrate again once nemo-rl provides it to carry it"
                if isinstance(err, registry.PluginNotAvailableError)
                else "migrate again after installing it to carry it"
            )
        # policy.megatron is read only by the megatron backend: its options go with it.
        prefixes = [f"{section}.backend_options"] + (
            ["policy.megatron"] if section == "policy" and name == "megatron" else []
        )
        for old, new in mapping.items():
            if new is not None and any(new == p or new.startswith(p + ".") for p in prefixes):
                mapping[old] = None
                dropped[old] = (
                    f"an option of backend {name!r}, which cannot run here ({reason}); {later}"
                )
        getattr(config, section).backend_options = {}
        if len(prefixes) > 1:
            config.policy.megatron = type(config.policy.megatron)()
        warnings.append(f"'{section}.backend: {name}' cannot run on this installation: {reason}")


def _derive(tree: dict[str, Any], flat: dict[str, Any], algorithm: str) -> None:
    """Values the new config needs that no single legacy key holds."""
    if algorithm == "grpo" and "environment" not in tree:
        # No env_name key: NeMo RL's first scripts used the config's one `env.<name>` section.
        environment = environment_for_legacy(flat)
        if environment is not None:
            tree["environment"] = environment
    if algorithm == "grpo":
        derive_environment_options(tree, flat)
    nodes, gpus = flat.get("cluster.num_nodes", 1), flat.get("cluster.gpus_per_node", 0)
    # NeMo RL always ran on Ray; a single device runs best inline, one host's GPUs as processes.
    launcher = "ray" if (nodes or 1) > 1 else "local" if (gpus or 0) > 1 else "inline"
    tree.setdefault("cluster", {})["launcher"] = launcher
    if flat.get("checkpointing.checkpoint_dir") and flat.get("checkpointing.enabled", True):
        # NeMo RL resumes from checkpoint_dir whenever a checkpoint is there; nemo-rl only when
        # asked, so a migrated config asks.
        tree.setdefault("checkpointing", {})["resume"] = True


def _validate(
    tree: dict[str, Any], algorithm: str, mapping: dict[str, str | None], flat: dict[str, Any]
) -> AlgorithmConfig:
    from nemo_rl import registry

    config_class = registry.resolve("algorithms", algorithm)
    try:
        return config_class.model_validate(tree)
    except ValidationError as err:
        problems = []
        for entry in err.errors():
            new_key = ".".join(str(p) for p in entry["loc"])
            message = entry["msg"].removeprefix("Value error, ")
            if not new_key:  # a check across fields; its message names the fields
                problems.append(f"{message} (keys named as in nemo-rl; fix the legacy values)")
                continue
            sources = [
                o
                for o, n in mapping.items()
                if n
                and (n == new_key or n.startswith(new_key + ".") or new_key.startswith(n + "."))
            ]
            origin = ", ".join(f"{o}={flat[o]!r}" for o in sources) or "derived values"
            problems.append(
                f"{new_key} (from legacy {origin}): {message}; fix the legacy value or override it"
            )
        raise LegacyConfigError(problems) from None


def is_legacy_config(raw: Mapping[str, Any], base_dir: str | os.PathLike | None = None) -> bool:
    """Whether a config's raw top-level mapping is in NeMo RL's legacy layout.

    With `base_dir`, a file with only a `defaults:` key is judged by its parents.

    Example:
        >>> is_legacy_config({"grpo": {}, "policy": {}}), is_legacy_config({"algorithm": "grpo"})
        (True, False)
    """
    if "algorithm" in raw:
        return False
    if set(raw) & _LEGACY_SECTIONS:
        return True
    policy, logger = raw.get("policy"), raw.get("logger")
    if isinstance(policy, Mapping):
        if set(policy) & _LEGACY_POLICY_KEYS or isinstance(policy.get("scheduler"), list):
            return True
        if isinstance(policy.get("optimizer"), Mapping) and "kwargs" in policy["optimizer"]:
            return True
    if isinstance(logger, Mapping) and any(str(k).endswith("_enabled") for k in logger):
        return True
    return _parents_are_legacy(raw.get("defaults"), base_dir)


def _parents_are_legacy(
    parents: Any, base_dir: str | os.PathLike | None, chain: tuple[Path, ...] = ()
) -> bool:
    if base_dir is None or not parents:
        return False
    # The same checks as the loaders (shared): a bad `defaults:` value, a parent that does not
    # parse and a cycle are ConfigErrors naming the file, whichever layout the config turns out to be.
    from nemo_rl.config.defaults import defaults_list, parent_path
    from nemo_rl.config.files import read_config_file

    where = chain[-1] if chain else None
    for parent in defaults_list(parents, where):
        if not (Path(base_dir) / parent).is_file():
            continue  # the loader that reads the config reports the missing file
        path = parent_path(parent, Path(base_dir), list(chain))
        data = read_config_file(path)
        if "algorithm" in data:
            continue  # a nemo-rl parent: neither it nor its own parents make the config legacy
        if is_legacy_config(data, None) or _parents_are_legacy(
            data.get("defaults"), path.parent, (*chain, path)
        ):
            return True
    return False


_LEGACY_SECTIONS = {
    *SUPPORTED_ALGORITHMS,
    *UNSUPPORTED_ALGORITHMS,
    "loss_fn",
    "env",
    "data_plane",
    "reward_penalties",
    "teacher",
    "teachers",
    "value",
    "value_loss_fn",
    "async_rl",
    "on_policy_distillation",
}
_LEGACY_POLICY_KEYS = {
    "dtensor_cfg",
    "megatron_cfg",
    "generation",
    "dynamic_batching",
    "generation_batch_size",
    "make_sequence_length_divisible_by",
    "activation_checkpointing_enabled",
}
