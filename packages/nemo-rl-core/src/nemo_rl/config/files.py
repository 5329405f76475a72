"""Read one config file (YAML or JSON) into a mapping; every way it can fail is a `ConfigError`.

Stricter than `yaml.safe_load`, because a config file is read by people who edit it by hand:
a key written twice in one mapping is an error naming both lines (YAML would silently keep the
last), keys must be names (`yes:` or `1:` are not), `1e-6` is a float (YAML 1.1 reads a string),
and nesting is bounded. Text that is not UTF-8, bad syntax and values nested beyond the parser's
recursion limit all become errors naming the file and the fix, never a raw exception.

Example:
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "run.yaml"
    >>> _ = path.write_text("seed: 1\\nlr: 1e-6\\nseed: 2\\n")
    >>> try:
    ...     read_config_file(path)
    ... except ConfigError as err:
    ...     print(err.problems[0].split(": ", 1)[1])
    key 'seed' appears twice (lines 1 and 3): keep one of them
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from nemo_rl.config.errors import ConfigError

# Deeper than any real config (policy.backend_options.a.b is 4 levels); well below the depth at
# which the YAML parser, deepcopy or pydantic run out of stack.
MAX_DEPTH = 50

_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"


# libyaml's parser is ~10x faster and bounds nesting itself (1000 levels) instead of recursing.
_SafeLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _ConfigLoader(_SafeLoader):  # type: ignore[misc,valid-type]
    """SafeLoader that reads `1e-6` (no dot) as a float, as YAML 1.2 and users do."""


_ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d[\d_]*\.?[\d_]*|\.\d[\d_]*)[eE][-+]?\d+$"),
    list("-+0123456789."),
)


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The mapping stored in a YAML or JSON file; errors name the file (and line, if known).

    Example:
        >>> read_config_file("/no/such.yaml")
        Traceback (most recent call last):
        ...
        nemo_rl.config.errors.ConfigError: invalid config: config file '/no/such.yaml' does not exist: check the path
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file '{path}' does not exist: check the path")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        line = path.read_bytes()[: err.start].count(b"\n") + 1
        raise ConfigError(
            f"{path}, line {line}: not UTF-8 text (byte {err.object[err.start]:#04x}); save the "
            "file as UTF-8"
        ) from None
    except OSError as err:
        raise ConfigError(f"cannot read config file '{path}': {err.strerror}; check it") from None
    try:
        data = _parse_json(text, path) if path.suffix.lower() == ".json" else _parse_yaml(text, path)
    except RecursionError:
        data = _too_deep(path, "")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path} holds a {type(data).__name__}, not a mapping: write the config as keys with "
            "values, one per line (e.g. 'algorithm: grpo')"
        )
    check_depth(data, str(path))
    return data


def check_depth(data: Any, where: str) -> None:
    """Raise `ConfigError` when `data` nests mappings/lists deeper than `MAX_DEPTH` (or loops).

    Example:
        >>> check_depth({"a": {"b": [1, 2]}}, "run.yaml")  # fine: returns None
    """
    stack: list[tuple[Any, str, int]] = [(data, "", 0)]
    while stack:
        value, dotted, depth = stack.pop()
        if depth > MAX_DEPTH:
            _too_deep(where, dotted)
        if isinstance(value, dict):
            stack.extend((v, f"{dotted}.{k}" if dotted else str(k), depth + 1) for k, v in value.items())
        elif isinstance(value, (list, tuple)):
            stack.extend((v, f"{dotted}[{i}]", depth + 1) for i, v in enumerate(value))


def _too_deep(where: Any, dotted: str) -> Any:
    field = f" at '{_shorten(dotted)}'" if dotted else ""
    raise ConfigError(
        f"{where}: a value{field} is nested more than {MAX_DEPTH} levels deep (or refers to "
        "itself through a YAML alias); a config is a few levels of keys: flatten that value"
    )


def _shorten(dotted: str) -> str:
    return dotted if len(dotted) <= 60 else dotted[:40] + "..." + dotted[-17:]


def _parse_json(text: str, path: Path) -> Any:
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: set[str] = set()
        for key, _ in items:
            if key in seen:
                raise ConfigError(f"{path}: key '{key}' appears twice in one object; keep one")
            seen.add(key)
        return dict(items)

    try:
        return json.loads(text, object_pairs_hook=pairs)
    except json.JSONDecodeError as err:
        raise ConfigError(
            f"{path}, line {err.lineno}, column {err.colno}: invalid JSON ({err.msg}); fix the "
            "syntax there"
        ) from None


def _parse_yaml(text: str, path: Path) -> Any:
    loader = _ConfigLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_keys(node, path)
        return loader.construct_document(node)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err)
        raise ConfigError(f"{path}{where}: invalid YAML ({problem}); fix the syntax there") from None
    finally:
        loader.dispose()


def _check_keys(root: yaml.Node, path: Path) -> None:
    """Every mapping key is a plain string written once; walks the node graph without recursion
    (aliases may make it a graph with cycles, which `check_depth` reports after construction)."""
    stack: list[tuple[yaml.Node, str]] = [(root, "")]
    visited: set[int] = set()
    while stack:
        node, dotted = stack.pop()
        if id(node) in visited:
            continue
        visited.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            stack.extend((child, f"{dotted}[{i}]") for i, child in enumerate(node.value))
        if not isinstance(node, yaml.MappingNode):
            continue
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if key_node.tag == _MERGE_TAG:  # `<<: *anchor` merges keys; it is not a key itself
                stack.append((value_node, dotted))
                continue
            if key_node.tag != _STR_TAG or not isinstance(key_node.value, str):
                shown = key_node.value if isinstance(key_node, yaml.ScalarNode) else "a collection"
                raise ConfigError(
                    f"{path}, line {line}: key {shown!r}{_under(dotted)} is not a name (YAML reads "
                    f"it as {key_node.tag.rsplit(':', 1)[-1]}); quote it, e.g. '\"{shown}\": ...'"
                )
            key = key_node.value
            child = f"{dotted}.{key}" if dotted else key
            if key in first_line:
                raise ConfigError(
                    f"{path}: key '{_shorten(child)}' appears twice (lines {first_line[key]} and "
                    f"{line}): keep one of them"
                )
            first_line[key] = line
            stack.append((value_node, child))


def _under(dotted: str) -> str:
    return f" under '{_shorten(dotted)}'" if dotted else ""
