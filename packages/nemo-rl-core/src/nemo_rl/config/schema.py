"""Configs as documents: JSON schemas for editors, YAML dumps, and key-by-key diffs.

Example:
    >>> from nemo_rl.config import SFTConfig, diff_configs, dump_config
    >>> print(dump_config(SFTConfig(batch_size=8), minimal=True), end="")
    algorithm: sft
    batch_size: 8
    >>> diff_configs(SFTConfig(), SFTConfig(seed=1))
    [('seed', 42, 1)]
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from nemo_rl.config.algorithm import AlgorithmConfig
from nemo_rl.config.errors import ConfigError

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


class _Absent:
    """Marks a key one side of a diff does not have (configs of different algorithms)."""

    def __repr__(self) -> str:
        return "<absent>"


ABSENT = _Absent()


def _algorithm_class(algorithm: str) -> type[AlgorithmConfig]:
    from nemo_rl import registry

    try:
        return registry.resolve("algorithms", algorithm)
    except registry.PluginNotFoundError as err:
        raise ConfigError(f"algorithm = {algorithm!r}: {err}") from None


def config_json_schema(algorithm: str) -> dict[str, Any]:
    """The JSON schema of an installed algorithm's config, for editor completion and checks.

    It also admits the loader's `defaults:` key, so files that inherit still validate.

    Example:
        >>> config_json_schema("sft")["properties"]["algorithm"]["const"]
        'sft'
    """
    schema = _algorithm_class(algorithm).model_json_schema()
    schema["properties"]["defaults"] = {
        "description": "Parent config file(s), relative to this file; this file wins over them.",
        "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
    }
    return {"$schema": JSON_SCHEMA_DIALECT, **schema}


def write_json_schemas(directory: str | Path) -> list[Path]:
    """Write `<algorithm>.schema.json` for every installed algorithm; returns the paths written.

    Example:
        >>> import tempfile
        >>> [p.name for p in write_json_schemas(tempfile.mkdtemp())]  # doctest: +SKIP
        ['dpo.schema.json', 'grpo.schema.json', 'sft.schema.json']
    """
    from nemo_rl import registry

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in registry.available("algorithms"):
        path = out / f"{name}.schema.json"
        path.write_text(json.dumps(config_json_schema(name), indent=2) + "\n", encoding="utf-8")
        written.append(path)
    return written


def dump_config(cfg: AlgorithmConfig, *, minimal: bool = False) -> str:
    """The config as YAML text that `load_config` reads back to an equal config.

    `minimal=True` keeps only the values that differ from the defaults of the config's class
    (and always `algorithm`), which makes short, readable recipe files.

    Example:
        >>> from nemo_rl.config import SFTConfig
        >>> "policy:" in dump_config(SFTConfig()), "policy:" in dump_config(SFTConfig(), minimal=True)
        (True, False)
    """
    data = cfg.model_dump(mode="json")
    if minimal:
        data = {"algorithm": data["algorithm"], **_differences(cfg, type(cfg)())}
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


def _differences(model: BaseModel, default: BaseModel) -> dict[str, Any]:
    """JSON-ready values of `model` that differ from `default`; sub-models are compared field by
    field, any other value (free-form mappings included) is kept whole so it loads back intact."""
    kept: dict[str, Any] = {}
    for name in type(model).model_fields:
        value, default_value = getattr(model, name), getattr(default, name)
        if isinstance(value, BaseModel) and type(value) is type(default_value):
            nested = _differences(value, default_value)
            if nested:
                kept[name] = nested
        elif value != default_value:
            kept[name] = model.model_dump(mode="json", include={name})[name]
    return kept


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as {dotted key: value}; lists and scalars are leaves.

    Example:
        >>> flatten({"a": {"b": 1, "c": [1, 2]}, "d": None})
        {'a.b': 1, 'a.c': [1, 2], 'd': None}
    """
    flat: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, dotted))
        else:
            flat[dotted] = value
    return flat


def diff_configs(
    a: AlgorithmConfig | Mapping[str, Any], b: AlgorithmConfig | Mapping[str, Any]
) -> list[tuple[str, Any, Any]]:
    """The dotted keys whose values differ, as (key, value in a, value in b), in a's key order.

    A key only one side has shows `ABSENT` on the other side.

    Example:
        >>> from nemo_rl.config import GRPOConfig
        >>> diff_configs(GRPOConfig(), GRPOConfig(policy={"optimizer": {"lr": 1e-6}}))
        [('policy.optimizer.lr', 5e-06, 1e-06)]
    """
    flat_a, flat_b = (
        flatten(x.model_dump(mode="json") if isinstance(x, AlgorithmConfig) else x) for x in (a, b)
    )
    keys = list(dict.fromkeys([*flat_a, *flat_b]))
    return [
        (key, flat_a.get(key, ABSENT), flat_b.get(key, ABSENT))
        for key in keys
        if flat_a.get(key, ABSENT) != flat_b.get(key, ABSENT)
    ]
