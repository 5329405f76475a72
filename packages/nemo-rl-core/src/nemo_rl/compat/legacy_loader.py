"""Read a legacy NeMo RL config exactly as NeMo RL reads it: `defaults:` chains, `_override_`
sections, Hydra-style overrides and OmegaConf interpolations with NeMo RL's resolvers.

OmegaConf is an optional dependency (`pip install nemo-rl-core[compat]`), imported only here.

Example:
    >>> from nemo_rl.compat.legacy_loader import load_legacy_config
    >>> raw = {"policy": {"max_total_sequence_length": 512,
    ...        "generation": {"max_new_tokens": "${policy.max_total_sequence_length}"}}}
    >>> load_legacy_config(raw, ["policy.max_total_sequence_length=1024"])["policy"]["generation"]
    {'max_new_tokens': 1024}
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from nemo_rl.config.defaults import defaults_list, parent_path
from nemo_rl.config.errors import ConfigError
from nemo_rl.config.files import read_config_file

# NeMo RL's resolvers (nemo_rl/utils/config.py): plain binary arithmetic on resolved values; `div`
# is true division, as in Python. `oc.env` is built into OmegaConf.
_RESOLVERS = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "max": lambda a, b: max(a, b),
}

LegacyOverrides = Sequence[str] | Mapping[str, Any] | None


class LegacyConfigError(ConfigError):
    """A legacy NeMo RL config that cannot be read or migrated; the message names the key and fix."""


def _omegaconf() -> Any:
    try:
        import omegaconf
    except ModuleNotFoundError:
        raise LegacyConfigError(
            "reading a legacy NeMo RL config needs OmegaConf: pip install nemo-rl-core[compat]"
        ) from None
    oc = omegaconf.OmegaConf
    for name, fn in _RESOLVERS.items():
        if not oc.has_resolver(name):
            # omegaconf 2.4 renamed register_new_resolver; support both.
            register = getattr(oc, "register_resolver", None) or oc.register_new_resolver
            register(name, fn)
    return omegaconf


def _merge_with_override(omegaconf: Any, base: Any, child: Any) -> Any:
    """NeMo RL's merge: a child section marked `_override_: true` replaces the parent's section."""
    for key in list(child.keys()):
        section = child[key]
        if isinstance(section, omegaconf.DictConfig) and section.get("_override_", False):
            section.pop("_override_")
            if key in base:
                base.pop(key)
    return omegaconf.OmegaConf.merge(base, child)


def _load_with_defaults(omegaconf: Any, node: Any, base_dir: Path, chain: list[Path]) -> Any:
    if "defaults" not in node:
        return node
    where = chain[-1] if len(chain) > 1 else None  # the top file is named by the caller
    parents = node.pop("defaults")
    if isinstance(parents, omegaconf.ListConfig):
        parents = omegaconf.OmegaConf.to_container(parents)
    parents = defaults_list(parents, where)
    merged = omegaconf.OmegaConf.create({})
    for parent in parents:
        path = parent_path(parent, base_dir, chain)
        parent_node = _load_file(omegaconf, path)
        parent_node = _load_with_defaults(omegaconf, parent_node, path.parent, [*chain, path])
        merged = _merge_with_override(omegaconf, merged, parent_node)
    return _merge_with_override(omegaconf, merged, node)


def _load_file(omegaconf: Any, path: Path) -> Any:
    """A legacy YAML file as a DictConfig, read by nemo-rl's strict reader (so encoding, syntax,
    duplicate keys and depth fail as ConfigErrors naming the file) instead of OmegaConf.load."""
    return omegaconf.OmegaConf.create(read_config_file(path))


def _apply_overrides(omegaconf: Any, cfg: Any, overrides: LegacyOverrides) -> None:
    oc = omegaconf.OmegaConf
    if not overrides:
        return
    items: list[tuple[str, str, Any]] = []
    if isinstance(overrides, Mapping):
        items = [("=", str(key), value) for key, value in overrides.items()]
    else:
        for override in overrides:
            if override.startswith("~"):
                items.append(("~", override[1:].split("=", 1)[0], None))
                continue
            if "=" not in override:
                raise LegacyConfigError(
                    f"override '{override}' has no '=': write key=value (or +key=value to add a "
                    "key, ++key=value to add or replace, ~key to delete)"
                )
            key, text = override.split("=", 1)
            op = "++" if key.startswith("++") else "+" if key.startswith("+") else "="
            # Parsed as YAML the way OmegaConf does (1e-6 is a float), interpolations kept.
            parsed = oc.to_container(oc.create(f"v: {text}"))["v"] if text.strip() else ""
            items.append((op, key.lstrip("+"), parsed))
    for op, key, value in items:
        exists = oc.select(cfg, key, default=_MISSING, throw_on_missing=False) is not _MISSING
        if op == "~":
            if not exists:
                raise LegacyConfigError(f"override '~{key}': no key '{key}' to delete")
            parent, _, leaf = key.rpartition(".")
            (oc.select(cfg, parent) if parent else cfg).pop(leaf)
        elif op == "=" and not exists:
            raise LegacyConfigError(
                f"override '{key}=...': the legacy config has no key '{key}'; check the spelling, "
                f"or write '+{key}=...' to add it"
            )
        elif op == "+" and exists:
            raise LegacyConfigError(
                f"override '+{key}=...': '{key}' already exists; write '{key}=...' to replace it"
            )
        else:
            oc.update(cfg, key, value, merge=False, force_add=True)


_MISSING = object()


def load_legacy_config(
    source: str | os.PathLike | Mapping[str, Any], overrides: LegacyOverrides = None
) -> dict[str, Any]:
    """The legacy config as plain, fully resolved Python data (dicts, lists, scalars).

    `source` is a YAML path (its `defaults:` resolve relative to the file) or a dict (its
    `defaults:` resolve relative to the working directory). `overrides` are Hydra-style strings
    (`a.b=1`, `+a.new=2`, `++a.any=3`, `~a.gone`) or a {dotted key: value} dict; they apply before
    interpolations resolve, as in NeMo RL, so `${policy.model_name}` follows an overridden model.
    """
    omegaconf = _omegaconf()
    oc = omegaconf.OmegaConf
    try:
        if isinstance(source, Mapping):
            node, base_dir, chain = oc.create(dict(source)), Path.cwd(), []
        else:
            path = Path(source)
            if not path.is_file():
                raise LegacyConfigError(f"legacy config file '{path}' does not exist: check the path")
            node, base_dir, chain = _load_file(omegaconf, path), path.parent, [path.resolve()]
        if not isinstance(node, omegaconf.DictConfig):
            raise LegacyConfigError(f"{source} is not a mapping of keys to values")
        node = _load_with_defaults(omegaconf, node, base_dir, chain)
        _apply_overrides(omegaconf, node, overrides)
        return oc.to_container(node, resolve=True)
    except omegaconf.errors.OmegaConfBaseException as err:
        raise LegacyConfigError(
            f"cannot resolve the legacy config {source}: {type(err).__name__}: {err}; check the "
            "interpolation or override it names"
        ) from None
    except yaml.YAMLError as err:  # an override value OmegaConf cannot parse
        raise LegacyConfigError(
            f"an override of the legacy config {source} is not valid YAML ({err}); fix its value"
        ) from None
    except LegacyConfigError:
        raise
    except ConfigError as err:  # from the shared file and defaults checks
        raise LegacyConfigError(err.problems, source=err.source) from None
