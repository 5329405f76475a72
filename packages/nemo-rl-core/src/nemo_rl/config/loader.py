"""Load a config from YAML, JSON, a dict or a config object, with `defaults:` and overrides.

A file may name parents in a `defaults:` key (a path or a list of paths, relative to the file);
parents load recursively and merge deeply (dicts merge key by key, anything else is replaced),
later parents win over earlier ones and the file wins over all its parents. Then dotted overrides
apply (`policy.optimizer.lr=1e-6`, `~key` deletes, `+key=value` adds), and the `algorithm` key
picks the config class from the plugin registry.

Example:
    >>> from nemo_rl.config import load_config
    >>> cfg = load_config({"algorithm": "sft"}, ["policy.optimizer.lr=1e-6", "batch_size=8"])
    >>> cfg.policy.optimizer.lr, cfg.batch_size
    (1e-06, 8)
"""

from __future__ import annotations

import copy
import difflib
import os
import re
import typing
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from nemo_rl.config.algorithm import AlgorithmConfig
from nemo_rl.config.defaults import defaults_list, parent_path
from nemo_rl.config.errors import ConfigError, _model_class, _strip, unknown_key_message
from nemo_rl.config.files import check_depth, read_config_file

ConfigSource = str | os.PathLike | Mapping[str, Any] | AlgorithmConfig
Overrides = Sequence[str] | Mapping[str, Any] | None

# YAML 1.1 reads `1e-6` as a string (it wants `1.0e-6`); users mean a float.
_FLOAT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)$")


def load_config(source: ConfigSource, overrides: Overrides = None) -> AlgorithmConfig:
    """Read, merge, override and validate a config; raises `ConfigError` naming every problem.

    `source` is a YAML/JSON path, a dict, or a config object (re-validated with the overrides
    applied). `overrides` is a list of "a.b=value" strings (values parsed as YAML) or a dict
    {"a.b": value}.

    Example:
        >>> load_config({"algorithm": "grpo"}, {"loss.kl_penalty": 0.0}).loss.kl_penalty
        0.0
    """
    source_name: str | None = None
    if isinstance(source, AlgorithmConfig):
        raw, base_dir = _given_values(source), Path.cwd()
    elif isinstance(source, Mapping):
        check_depth(source, "the config")  # before deepcopy, which would overflow the stack
        raw, base_dir = copy.deepcopy(dict(source)), Path.cwd()
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        source_name = str(source)
        raw, base_dir = read_config_file(path), path.resolve().parent
    else:
        raise ConfigError(
            f"cannot load a config from a {type(source).__name__}: pass a YAML/JSON path, a dict "
            "or a config object"
        )
    try:
        if "algorithm" not in raw:
            legacy = _load_legacy(raw, source, overrides)
            if legacy is not None:
                return legacy
        seen = [Path(source_name).resolve()] if source_name else []
        merged = _apply_defaults(raw, base_dir, seen)
        config_class = _config_class(merged, overrides, source)
        merged = apply_overrides(merged, overrides, config_class)
        try:
            return config_class.model_validate(merged)
        except ValidationError as err:
            raise ConfigError.from_validation_error(err, config_class) from None
    except ConfigError as err:
        raise err.with_source(source_name) if source_name else err from None


def _given_values(config: AlgorithmConfig) -> dict[str, Any]:
    """The values of `config` that were given or differ from the defaults, nested.

    A full dump would mark every field as given when loaded back, which turns off what looks at
    the given fields (column detection from the rows' shape, for one); the fields set alone would
    miss values changed by assignment inside a default sub-section.

    Example:
        >>> from nemo_rl.config import SFTConfig
        >>> cfg = SFTConfig(data={"prompt_key": "prompt"})
        >>> cfg.policy.optimizer.lr = 1e-3
        >>> _given_values(cfg)
        {'algorithm': 'sft', 'policy': {'optimizer': {'lr': 0.001}}, 'data': {'prompt_key': 'prompt'}}
    """
    merged = config.model_dump(exclude_defaults=True)
    _merge_into(merged, config.model_dump(exclude_unset=True))
    return {"algorithm": config.algorithm, **merged}


def _merge_into(target: dict[str, Any], extra: Mapping[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _merge_into(target[key], value)
        else:
            target.setdefault(key, value)


def _load_legacy(raw: dict[str, Any], source: Any, overrides: Overrides) -> AlgorithmConfig | None:
    """Migrate a legacy NeMo RL config through `nemo_rl.compat`, when that module is available."""
    import importlib

    try:
        compat = importlib.import_module("nemo_rl.compat")
    except ModuleNotFoundError as err:
        if err.name != "nemo_rl.compat":
            raise
        return None
    is_legacy = getattr(compat, "is_legacy_config", None)  # absent while compat is being built
    base_dir = Path(source).parent if isinstance(source, (str, Path)) else None
    if is_legacy is None or not is_legacy(raw, base_dir=base_dir):
        return None
    result = compat.migrate_legacy_config(source, overrides)
    for message in result.warnings:
        # stacklevel 3: the warning points at the caller of load_config, not at this helper.
        warnings.warn(message, DeprecationWarning, stacklevel=3)
    return result.config


def _apply_defaults(raw: dict[str, Any], base_dir: Path, seen: list[Path]) -> dict[str, Any]:
    """`raw` merged over its `defaults:` parents (recursively); `seen` is the chain, for cycles."""
    raw = dict(raw)
    # No file name here: errors of a parent file are attributed to it below, and the top file's
    # by load_config.
    parents = defaults_list(raw.pop("defaults", None), None)
    merged: dict[str, Any] = {}
    for parent in parents:
        path = parent_path(parent, base_dir, seen)
        try:
            parent_raw = _apply_defaults(read_config_file(path), path.parent, [*seen, path])
        except ConfigError as err:
            raise err.with_source(str(path)) from None
        merged = deep_merge(merged, parent_raw)
    return deep_merge(merged, raw)


def deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """`update` over `base`: nested dicts merge key by key, every other value is replaced.

    Example:
        >>> deep_merge({"a": {"x": 1, "y": 2}, "b": [1]}, {"a": {"y": 3}, "b": [2]})
        {'a': {'x': 1, 'y': 3}, 'b': [2]}
    """
    merged = copy.deepcopy(dict(base))
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _config_class(raw: dict[str, Any], overrides: Overrides, source: Any) -> type[AlgorithmConfig]:
    """The config class the `algorithm` key (or an override of it) names."""
    from nemo_rl import registry

    name = raw.get("algorithm")
    for op, key, value in parse_overrides(overrides):
        if key == "algorithm" and op != "delete":
            name = value
    if name is None:
        if isinstance(source, AlgorithmConfig):
            return type(source)
        keys = {k.lower(): k for k in raw if isinstance(k, str)}
        close = difflib.get_close_matches("algorithm", list(keys), n=1)
        typo = f" ('{keys[close[0]]}' is not a key; did you mean 'algorithm'?)" if close else ""
        raise ConfigError(
            f"missing required key 'algorithm'{typo}: add 'algorithm: <name>' (installed "
            f"algorithms: {_installed()})"
        )
    if not isinstance(name, str):
        raise ConfigError(f"algorithm = {name!r}: expected a name (installed: {_installed()})")
    if isinstance(source, AlgorithmConfig) and source.algorithm == name:
        return type(source)
    try:
        config_class = registry.resolve("algorithms", name)
    except registry.PluginNotFoundError as err:
        raise ConfigError(f"algorithm = {name!r}: {err}") from None
    if not (isinstance(config_class, type) and issubclass(config_class, AlgorithmConfig)):
        raise ConfigError(
            f"algorithm {name!r} resolves to {config_class!r}, which is not an AlgorithmConfig "
            "subclass: fix the 'nemo_rl.algorithms' entry point of its package"
        )
    return config_class


def _installed() -> str:
    # Only for messages: listing plugins reads every installed package's metadata (milliseconds).
    from nemo_rl import registry

    return ", ".join(registry.available("algorithms")) or "none"


def parse_override_value(text: str) -> Any:
    """An override's value as YAML would read it, except that `1e-6` is a float.

    Example:
        >>> [parse_override_value(t) for t in ["1e-6", "true", "[1,2]", "null", "abc", ""]]
        [1e-06, True, [1, 2], None, 'abc', '']
    """
    if text.strip() == "":
        return ""
    if _FLOAT.match(text.strip()):
        return float(text)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text  # not YAML (e.g. "a: b: c"): take it literally, as the user typed it
    except RecursionError:
        raise ConfigError(
            f"override value {text[:40]!r}... is nested too deeply to parse; pass a flat value"
        ) from None


def parse_overrides(overrides: Overrides) -> list[tuple[str, str, Any]]:
    """Overrides as (operation, dotted key, value); operation is 'set', 'add' or 'delete'.

    Example:
        >>> parse_overrides(["a.b=1", "~c", "+d.e=x"])
        [('set', 'a.b', 1), ('delete', 'c', None), ('add', 'd.e', 'x')]
    """
    if overrides is None:
        return []
    if isinstance(overrides, str):
        raise ConfigError(
            f"overrides = {overrides!r}: expected a list of 'key=value' strings or a dict, not one "
            "string; wrap it in a list"
        )
    items: list[tuple[str, Any, bool]] = []  # (key with prefix, value, value needs parsing)
    if isinstance(overrides, Mapping):
        items = [(str(key), value, False) for key, value in overrides.items()]
    else:
        for text in overrides:
            key, sep, value = str(text).partition("=")
            if not sep and not key.strip().startswith("~"):
                raise ConfigError(
                    f"override {text!r} has no '=': write key=value, e.g. policy.optimizer.lr=1e-6"
                )
            items.append((key, value, True))
    parsed = []
    for key, value, from_text in items:
        key = key.strip()
        op = "delete" if key.startswith("~") else "add" if key.startswith("+") else "set"
        key = key.lstrip("~+")
        if not key or any(part == "" for part in key.split(".")):
            raise ConfigError(f"override key {key!r} is not a dotted key such as 'policy.backend'")
        if op == "delete":
            value = None
        elif from_text:
            value = parse_override_value(value)
        parsed.append((op, key, value))
    return parsed


def apply_overrides(
    raw: dict[str, Any], overrides: Overrides, config_class: type[BaseModel]
) -> dict[str, Any]:
    """A copy of `raw` with the overrides applied; keys are checked against `config_class`.

    Example:
        >>> from nemo_rl.config import SFTConfig
        >>> apply_overrides({"algorithm": "sft"}, ["policy.backend=megatron"], SFTConfig)
        {'algorithm': 'sft', 'policy': {'backend': 'megatron'}}
    """
    result = copy.deepcopy(raw)
    for op, key, value in parse_overrides(overrides):
        parts = key.split(".")
        exists = _in_dict(result, parts) or _in_model(config_class, parts) is None
        if op == "set" and not exists:
            problem = _in_model(config_class, parts) or f"unknown key '{key}'"
            # A key with a known right name needs that name, not the '+' of a free-form mapping.
            if "did you mean" in problem or "s name for" in problem or "moved to" in problem:
                raise ConfigError(f"override '{key}': {problem}")
            raise ConfigError(
                f"override '{key}': {problem} (to add a new key under a mapping such as "
                f"backend_options, write '+{key}=...')"
            )
        if op == "add" and _in_dict(result, parts):
            raise ConfigError(f"override '+{key}': '{key}' is already set; write '{key}=...'")
        if op == "delete":
            _delete(result, parts, key)
        else:
            _set(result, parts, value, key)
    return result


def _in_dict(raw: Mapping[str, Any], parts: list[str]) -> bool:
    node: Any = raw
    for part in parts:
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True


def _in_model(model: type[BaseModel], parts: list[str]) -> str | None:
    """None when the dotted key is a field of `model` (or lies inside a free-form mapping field);
    otherwise the 'unknown key' message with a suggestion."""
    current: Any = model
    for depth, part in enumerate(parts):
        cls = _model_class(current)
        if cls is None:
            container = _strip(current)
            if container is dict or typing.get_origin(container) is dict or container is Any:
                return None  # free-form mapping (e.g. backend_options): any key is allowed
            return f"'{'.'.join(parts[:depth])}' is not a mapping, so it has no key '{part}'"
        if part not in cls.model_fields:
            return unknown_key_message(".".join(parts[: depth + 1]), cls)
        current = cls.model_fields[part].annotation
    return None


def _set(raw: dict[str, Any], parts: list[str], value: Any, key: str) -> None:
    node = raw
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            prefix = ".".join(parts[: depth + 1])
            raise ConfigError(f"override '{key}': '{prefix}' = {child!r} is not a mapping")
        node = child
    node[parts[-1]] = value


def _delete(raw: dict[str, Any], parts: list[str], key: str) -> None:
    node: Any = raw
    for part in parts[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
    if not isinstance(node, dict) or parts[-1] not in node:
        keys = list(node) if isinstance(node, dict) else []
        close = difflib.get_close_matches(parts[-1], keys, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"override '~{key}': '{key}' is not set in the config{hint}")
    del node[parts[-1]]
