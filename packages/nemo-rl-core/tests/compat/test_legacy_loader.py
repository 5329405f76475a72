"""Legacy loading follows NeMo RL: defaults chains, _override_, resolvers, Hydra overrides."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml
from nemo_rl.compat import LegacyConfigError, load_legacy_config


def _write(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data))
    return path


def test_defaults_resolve_relative_to_each_file_and_child_wins(tmp_path):
    _write(tmp_path / "base" / "grand.yaml", {"a": 1, "b": {"x": 1, "y": 2}})
    _write(tmp_path / "base" / "parent.yaml", {"defaults": "grand.yaml", "b": {"y": 3}})
    child = _write(tmp_path / "child.yaml", {"defaults": ["base/parent.yaml"], "a": 5})
    assert load_legacy_config(child) == {"a": 5, "b": {"x": 1, "y": 3}}


def test_override_marker_replaces_the_parent_section(tmp_path):
    _write(tmp_path / "p.yaml", {"data": {"train": "a", "shuffle": True}})
    child = _write(tmp_path / "c.yaml", {"defaults": "p.yaml",
                                          "data": {"_override_": True, "train": "b"}})
    assert load_legacy_config(child) == {"data": {"train": "b"}}


def test_nemo_rl_resolvers_and_env(monkeypatch):
    monkeypatch.setenv("HF_HOME", "/cache/hf")
    raw = {"n": 6, "m": 4, "mul": "${mul:${n},${m}}", "add": "${add:${n},${m}}",
           "sub": "${sub:${n},${m}}", "div": "${div:${n},${m}}", "max": "${max:${n},${m}}",
           "home": "${oc.env:HF_HOME}", "rel": {"t": 0.7, "v": "${.t}"}}
    out = load_legacy_config(raw)
    assert (out["mul"], out["add"], out["sub"], out["div"], out["max"]) == (24, 10, 2, 1.5, 6)
    assert out["home"] == "/cache/hf" and out["rel"]["v"] == 0.7


def test_overrides_apply_before_interpolation():
    raw = {"policy": {"len": 512, "gen": {"max_new_tokens": "${policy.len}"}}, "gone": 1}
    out = load_legacy_config(raw, ["policy.len=1024", "+policy.new=1e-6", "++policy.len2=[1,2]",
                                   "~gone"])
    assert out == {"policy": {"len": 1024, "gen": {"max_new_tokens": 1024}, "new": 1e-6,
                              "len2": [1, 2]}}
    assert load_legacy_config(raw, {"policy.len": 8})["policy"]["gen"]["max_new_tokens"] == 8


@pytest.mark.parametrize(
    ("override", "message"),
    [("policy.typo=1", "no key 'policy.typo'"), ("+policy.len=1", "already exists"),
     ("~nothere", "no key 'nothere' to delete"), ("policy.len", "has no '='")],
)
def test_bad_overrides_name_the_key_and_fix(override, message):
    with pytest.raises(LegacyConfigError, match=message):
        load_legacy_config({"policy": {"len": 1}}, [override])


def test_missing_parent_names_the_file(tmp_path):
    child = _write(tmp_path / "c.yaml", {"defaults": "nowhere.yaml"})
    with pytest.raises(LegacyConfigError, match="nowhere.yaml"):
        load_legacy_config(child)


def test_unresolvable_interpolation_is_one_clear_error():
    with pytest.raises(LegacyConfigError, match="cannot resolve"):
        load_legacy_config({"a": "${policy.missing}"})


def test_missing_omegaconf_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "omegaconf", None)
    with pytest.raises(LegacyConfigError, match=r"pip install nemo-rl-core\[compat\]"):
        load_legacy_config({"a": 1})
