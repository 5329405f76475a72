"""Property test of config loading (issue #14): bad input gets one clear error, never a raw exception.

Hypothesis writes configs to files (mutated shipped templates, configs generated from the schema,
`defaults:` chains, broken YAML text, other encodings, deep nesting, overrides) and loads them.
Every outcome must be either
- a config that is really usable: numbers finite, the seed accepted by torch, the optimizer
  accepted by torch (betas, eps, lr), no boolean taken as a number, no duplicate key resolved
  silently; or
- a `ConfigError` naming the file, the dotted field that was changed (when one was), and a fix.
Any other exception fails the test. The run is derandomized with a fixed number of examples per
test (10,400 in all), so it is reproducible and bounded (about a minute on 2 busy cores).
"""

from __future__ import annotations

import copy
import functools
import itertools
import json
import math
import re
import typing
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nemo_rl import registry
from nemo_rl.config import AlgorithmConfig, ConfigError, load_config
from nemo_rl.config.errors import _model_class, _strip
from nemo_rl.config.schema import flatten
from nemo_rl_recipes.templates import list_templates

TEMPLATES = {info.name: info.path.read_text(encoding="utf-8") for info in list_templates()}
TEMPLATE_DICTS = {name: yaml.safe_load(text) for name, text in TEMPLATES.items()}
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml: ~10x faster to write cases
CONFIG_CLASSES = {name: registry.resolve("algorithms", name) for name in ("grpo", "sft", "dpo")}
# Each problem line must tell the user what to do; these are the words the messages use for that.
FIX = re.compile(
    r"expected|did you mean|remove|fix|set |add |use |write|quote|save|keep|check|must|flatten|"
    r"swap|install|pass |rename|should be|not available|the valid keys|choose",
    re.IGNORECASE,
)


def _examples(n: int) -> Any:
    return settings(
        max_examples=n,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def _schema_fields(model: type, prefix: str = "") -> dict[str, Any]:
    """Every leaf field of a config class as {dotted key: annotation}."""
    fields: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        dotted = f"{prefix}.{name}" if prefix else name
        sub = _model_class(info.annotation)
        if sub is not None:
            fields.update(_schema_fields(sub, dotted))
        else:
            fields[dotted] = info.annotation
    return fields


SCHEMA = {name: _schema_fields(cls) for name, cls in CONFIG_CLASSES.items()}
ALL_FIELDS = sorted({key for fields in SCHEMA.values() for key in fields})


def _is_numeric(annotation: Any) -> bool:
    """Whether a field takes numbers and not booleans (int, float, their optional forms)."""
    members = typing.get_args(_strip(annotation)) or (_strip(annotation),)
    members = [_strip(m) for m in members]
    return any(m in (int, float) for m in members) and bool not in members


NUMERIC = {key for fields in SCHEMA.values() for key, ann in fields.items() if _is_numeric(ann)}


@pytest.fixture(scope="module", autouse=True)
def _fast_registry():
    # The registry scans installed entry points on every lookup (~8 ms per load); the plugins
    # cannot change during this test, so caching the scan keeps 10,000 loads within a minute.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(registry, "_entry_points", functools.lru_cache(None)(registry._entry_points))
        yield


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


_counter = itertools.count()

# ---------------------------------------------------------------- value strategies

FLOATS = st.sampled_from(
    [math.inf, -math.inf, math.nan, 0.0, -0.0, 1e308, 5e-324, -1.0, 0.5, 1.0, 1.5, 1e-6, 3.0]
)
INTS = st.sampled_from([0, -1, 1, 2, 3, 7, 8, 64, 2**31, 2**63, 2**64, 10**20, -(10**20)])
TEXTS = st.sampled_from(
    ["", "1e-6", "3", "true", "nan", ".inf", "auto", "grpo", "dtensor", "~", "a.b", "café", "\x00"]
)
SCALARS = st.one_of(st.booleans(), st.none(), FLOATS, INTS, TEXTS, st.floats(), st.integers())
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(["a", "lr", "x"]), inner, max_size=2)
    ),
    max_leaves=6,
)


def _nested(depth: int, leaf: Any, as_list: bool) -> Any:
    for _ in range(depth):
        leaf = [leaf] if as_list else {"k": leaf}
    return leaf


# ---------------------------------------------------------------- the invariant


def _write(workdir: Path, files: dict[str, bytes]) -> Path:
    case = workdir / f"case{next(_counter)}"
    case.mkdir()
    for name, data in files.items():
        (case / name).write_bytes(data)
    return case


def load_outcome(
    case: Path, top: str, *, field: str | tuple[str, ...] | None = None, overrides: Any = None
) -> AlgorithmConfig | ConfigError:
    """Load `case/top`; check the invariant; return the config or the error. `field` is the
    dotted key that was changed (or the keys an error may name instead)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            config = load_config(case / top, overrides)
        except ConfigError as err:
            _check_error(err, case, field)
            return err
    _check_usable(config)
    return config


def _check_error(err: ConfigError, case: Path, field: str | tuple[str, ...] | None) -> None:
    message = str(err)
    names = [p.name for p in case.iterdir()]
    assert any(name in message for name in names), f"no file named in: {message}"
    assert err.problems and all(FIX.search(p) for p in err.problems), f"no fix in: {message}"
    if field is not None and not _file_level(message):
        # The field itself, or (for checks across fields) a field of the same section.
        fields = (field,) if isinstance(field, str) else field
        named = [f for f in fields if f in message or f.rpartition(".")[0] + "." in message
                 or any(f"unknown key '{p}'" in message for p in _prefixes(f))]
        assert named, (field, message)


def _prefixes(dotted: str) -> list[str]:
    """'a.b.c' -> ['a', 'a.b']: an unknown section is reported at the section."""
    parts = dotted.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _file_level(message: str) -> bool:
    """Errors about the file as a whole (syntax, encoding, parents) name no field."""
    return bool(re.search(r"invalid YAML|invalid JSON|not UTF-8|nested more than|defaults|"
                          r"not a mapping|holds a|not a name|appears twice", message))


def _check_usable(config: AlgorithmConfig) -> None:
    assert isinstance(config, AlgorithmConfig)
    for key, value in flatten(config.model_dump()).items():
        # *_options mappings are free-form here; their backend or environment validates them.
        if isinstance(value, float) and "_options." not in key:
            assert math.isfinite(value), f"{key} = {value} accepted"
    torch.Generator().manual_seed(config.seed + config.max_num_epochs)
    opt = config.policy.optimizer
    # torch.optim.AdamW's own argument checks (building one costs seconds on first use).
    assert 0.0 <= opt.lr and 0.0 <= opt.eps and 0.0 <= opt.weight_decay, opt
    assert all(0.0 <= beta < 1.0 for beta in opt.betas), opt


def _template_dict(name: str) -> dict[str, Any]:
    return copy.deepcopy(TEMPLATE_DICTS[name])


def _set(tree: dict[str, Any], dotted: str, value: Any) -> None:
    node = tree
    for part in dotted.split(".")[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[dotted.split(".")[-1]] = value


def _dump(tree: Any, as_json: bool) -> bytes:
    if as_json:
        return json.dumps(tree, allow_nan=True).encode()
    return yaml.dump(tree, Dumper=_Dumper, sort_keys=False, allow_unicode=True).encode()


# ---------------------------------------------------------------- tests

TEMPLATE_NAMES = st.sampled_from(sorted(TEMPLATES))


@_examples(2000)
@given(name=TEMPLATE_NAMES, field=st.sampled_from(ALL_FIELDS), value=VALUES, as_json=st.booleans())
def test_template_with_one_value_changed(workdir, name, field, value, as_json):
    tree = _template_dict(name)
    _set(tree, field, value)
    top = "run.json" if as_json else "run.yaml"
    outcome = load_outcome(_write(workdir, {top: _dump(tree, as_json)}), top, field=field)
    if isinstance(value, bool) and field in NUMERIC:
        assert isinstance(outcome, ConfigError), f"{field}: {value} accepted as a number"


@_examples(1200)
@given(name=TEMPLATE_NAMES, field=st.sampled_from(ALL_FIELDS), value=st.booleans() | INTS | FLOATS)
def test_template_with_one_override(workdir, name, field, value):
    case = _write(workdir, {"run.yaml": TEMPLATES[name].encode()})
    text = yaml.safe_dump(value).splitlines()[0]  # as a user would type it: true, .inf, 1.0e-06
    outcome = load_outcome(case, "run.yaml", field=field, overrides=[f"{field}={text}"])
    if isinstance(value, bool) and field in NUMERIC:
        assert isinstance(outcome, ConfigError)


@_examples(1200)
@given(name=TEMPLATE_NAMES, data=st.data())
def test_template_keys_renamed_deleted_or_nested(workdir, name, data):
    tree = _template_dict(name)
    paths = list(flatten(tree)) + [k for k in tree if isinstance(tree[k], dict)]
    path = data.draw(st.sampled_from(paths))
    parent = tree
    for part in path.split(".")[:-1]:
        parent = parent[part]
    leaf = path.split(".")[-1]
    action = data.draw(st.sampled_from(["rename", "delete", "nest", "list"]))
    field: Any = path
    if action == "rename":
        new = data.draw(st.sampled_from([leaf[1:], leaf + "s", leaf.upper(), leaf.replace("_", "-"), "x"]))
        if new and new not in parent:
            parent[new] = parent.pop(leaf)
            # The error names the new (unknown) key, or the old one when it is required.
            field = (".".join([*path.split(".")[:-1], new]), path)
    elif action == "delete":
        del parent[leaf]
        field = None
    else:
        depth = data.draw(st.sampled_from([1, 2, 5, 49, 51, 120, 400, 1200]))
        if depth <= 120:
            parent[leaf] = _nested(depth, parent[leaf], action == "list")
        else:  # written as text: the YAML writer itself recurses too deep for these
            parent[leaf] = "__NEST__"
    text = _dump(tree, False)
    if b"__NEST__" in text:
        opening, closing = ("[", "]") if action == "list" else ("{k: ", "}")
        text = text.replace(b"__NEST__", (opening * depth + "1" + closing * depth).encode())
    load_outcome(_write(workdir, {"run.yaml": text}), "run.yaml", field=field)


@_examples(1600)
@given(name=TEMPLATE_NAMES, data=st.data())
def test_template_text_damaged(workdir, name, data):
    text = TEMPLATES[name]
    lines = text.splitlines(keepends=True)
    action = data.draw(st.sampled_from(["insert", "delete", "truncate", "indent", "duplicate"]))
    index = data.draw(st.integers(0, len(lines) - 1))
    if action == "insert":
        position = data.draw(st.integers(0, len(text)))
        noise = data.draw(st.sampled_from([":", "- ", "{", "[", "'", '"', "\t", "&a", "*a", "!!x",
                                           "%", "@", "\n  x: 1\n", ": :", "<<: 1\n", "? "]))
        text = text[:position] + noise + text[position:]
    elif action == "delete":
        start = data.draw(st.integers(0, len(text)))
        text = text[:start] + text[start + data.draw(st.integers(1, 20)):]
    elif action == "truncate":
        text = text[: data.draw(st.integers(0, len(text)))]
    elif action == "indent":
        lines[index] = " " * data.draw(st.integers(1, 5)) + lines[index]
        text = "".join(lines)
    else:
        line = lines[index]
        lines.insert(index + 1, line)
        text = "".join(lines)
    outcome = load_outcome(_write(workdir, {"run.yaml": text.encode()}), "run.yaml")
    key_line = re.match(r"^\s*([A-Za-z_]\w*):", lines[index]) if action == "duplicate" else None
    if key_line:
        assert isinstance(outcome, ConfigError) and "appears twice" in str(outcome), (
            f"duplicate key '{key_line.group(1)}' (line {index + 1}) accepted"
        )
        assert f"lines {index + 1} and {index + 2}" in str(outcome)


@_examples(1000)
@given(name=TEMPLATE_NAMES, data=st.data())
def test_template_in_other_encodings(workdir, name, data):
    text = TEMPLATES[name]
    text = text.replace("algorithm:", data.draw(st.sampled_from(["algorithm:", "# café\nalgorithm:",
                                                                 "# 日本\nalgorithm:"])), 1)
    encoding = data.draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "latin-1", "cp1252"]))
    raw = text.encode(encoding, errors="replace")
    if data.draw(st.booleans()):
        position = data.draw(st.integers(0, len(raw)))
        raw = raw[:position] + data.draw(st.binary(min_size=1, max_size=4)) + raw[position:]
    load_outcome(_write(workdir, {"run.yaml": raw}), "run.yaml")


PARENT_VALUES = st.one_of(
    st.sampled_from(["p0.yaml", "p1.yaml", "p2.yaml", "run.yaml", "missing.yaml", "", "."]),
    st.lists(st.sampled_from(["p0.yaml", "p1.yaml", "p2.yaml", "run.yaml", "missing.yaml"]), max_size=3),
    st.sampled_from([5, None, True, 1.5, {"a": "b"}, [1], [None], [["p0.yaml"]]]),
)


@_examples(1600)
@given(data=st.data(), name=TEMPLATE_NAMES)
def test_defaults_chains(workdir, data, name):
    files: dict[str, bytes] = {}
    for file in ["run.yaml", "p0.yaml", "p1.yaml", "p2.yaml"]:
        kind = data.draw(st.sampled_from(["template", "legacy", "empty", "partial", "broken", "only"]))
        tree: Any = {
            "template": _template_dict(name),
            "legacy": {"policy": {"dtensor_cfg": {"enabled": True}}, "grpo": {"max_num_steps": 3}},
            "empty": {},
            "partial": {"policy": {"optimizer": {"lr": 1e-6}}},
            "broken": None,
            "only": {},
        }[kind]
        if kind == "broken":
            files[file] = b"policy: [\n"
            continue
        if data.draw(st.booleans()):
            tree["defaults"] = data.draw(PARENT_VALUES)
        files[file] = _dump(tree, False)
    outcome = load_outcome(_write(workdir, files), "run.yaml")
    if isinstance(outcome, AlgorithmConfig):
        assert b"policy: [" not in files["run.yaml"]


@_examples(1800)
@given(
    algorithm=st.sampled_from(["grpo", "sft", "dpo", None, "ppo", 5]),
    fields=st.dictionaries(st.sampled_from(ALL_FIELDS), VALUES, max_size=6),
    as_json=st.booleans(),
)
def test_generated_configs(workdir, algorithm, fields, as_json):
    tree: dict[str, Any] = {} if algorithm is None else {"algorithm": algorithm}
    for key, value in fields.items():
        _set(tree, key, value)
    top = "gen.json" if as_json else "gen.yaml"
    field = next(iter(fields), None) if len(fields) == 1 else None
    if algorithm not in CONFIG_CLASSES:
        field = "algorithm"
    outcome = load_outcome(_write(workdir, {top: _dump(tree, as_json)}), top, field=field)
    bool_numbers = [k for k, v in fields.items() if isinstance(v, bool) and k in NUMERIC]
    if bool_numbers and isinstance(outcome, AlgorithmConfig):
        assert not any(k in SCHEMA[outcome.algorithm] for k in bool_numbers), bool_numbers
