"""load_config: files, `defaults:` chains, dotted overrides, and dump/diff/schema round trips."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from nemo_rl.algorithms.dpo.config import DPOConfig
from nemo_rl.algorithms.grpo.config import GRPOConfig
from nemo_rl.algorithms.sft.config import SFTConfig
from nemo_rl.config import (
    ConfigError,
    config_json_schema,
    diff_configs,
    dump_config,
    load_config,
    write_json_schemas,
)
from nemo_rl.config.loader import deep_merge, parse_override_value, parse_overrides
from nemo_rl.config.schema import ABSENT


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_dict_source_picks_the_class_by_algorithm():
    cfg = load_config({"algorithm": "dpo", "beta": 0.05})
    assert type(cfg) is DPOConfig
    assert cfg.beta == 0.05


def test_config_object_is_revalidated_with_overrides_and_left_unchanged():
    original = SFTConfig(batch_size=8)
    cfg = load_config(original, ["policy.optimizer.lr=2e-5"])
    assert type(cfg) is SFTConfig
    assert (cfg.batch_size, cfg.policy.optimizer.lr) == (8, 2e-5)
    assert original.policy.optimizer.lr == 5e-6
    with pytest.raises(ConfigError, match="batch_size = 0"):
        load_config(original, {"batch_size": 0})


def test_yaml_and_json_files_load_the_same_config(tmp_path):
    raw = {"algorithm": "grpo", "num_prompts_per_step": 4, "policy": {"optimizer": {"lr": 1e-6}}}
    from_yaml = load_config(write(tmp_path / "a.yaml", yaml.safe_dump(raw)))
    from_json = load_config(str(write(tmp_path / "a.json", json.dumps(raw))))
    assert from_yaml == from_json
    assert from_yaml.num_prompts_per_step == 4


def test_three_file_defaults_chain_merges_deeply_relative_to_each_file(tmp_path, monkeypatch):
    write(
        tmp_path / "recipes/base.yaml",
        """
algorithm: grpo
seed: 1
num_prompts_per_step: 8
policy:
  model_name: base-model
  optimizer: {lr: 1.0e-5, weight_decay: 0.5}
logger: {backends: [console, jsonl, tensorboard]}
""",
    )
    write(
        tmp_path / "recipes/mid.yaml",
        """
defaults: base.yaml
seed: 2
policy:
  optimizer: {lr: 2.0e-5}
logger: {backends: [console]}
""",
    )
    top = write(
        tmp_path / "runs/top.yaml",
        """
defaults: ../recipes/mid.yaml
seed: 3
policy: {precision: float32}
""",
    )
    monkeypatch.chdir(tmp_path / "recipes")  # paths resolve from the files, not the cwd
    cfg = load_config(top)
    assert cfg.seed == 3
    assert cfg.num_prompts_per_step == 8
    assert cfg.policy.model_name == "base-model"
    assert cfg.policy.precision == "float32"
    assert (cfg.policy.optimizer.lr, cfg.policy.optimizer.weight_decay) == (2e-5, 0.5)
    assert cfg.logger.backends == ["console"]  # lists are replaced, not merged


def test_later_defaults_win_over_earlier_ones(tmp_path):
    write(tmp_path / "a.yaml", "algorithm: sft\nbatch_size: 4\nseed: 10\n")
    write(tmp_path / "b.yaml", "batch_size: 8\n")
    cfg = load_config(write(tmp_path / "c.yaml", "defaults: [a.yaml, b.yaml]\n"))
    assert (cfg.batch_size, cfg.seed) == (8, 10)


def test_defaults_cycle_is_an_error_showing_the_chain(tmp_path):
    write(tmp_path / "a.yaml", "defaults: b.yaml\nalgorithm: sft\n")
    write(tmp_path / "b.yaml", "defaults: a.yaml\n")
    with pytest.raises(ConfigError, match=r"cycle \(a.yaml -> b.yaml -> a.yaml\)"):
        load_config(tmp_path / "a.yaml")


def test_missing_default_file_names_the_file_that_names_it(tmp_path):
    top = write(tmp_path / "top.yaml", "defaults: nowhere.yaml\nalgorithm: sft\n")
    with pytest.raises(ConfigError) as info:
        load_config(top)
    message = str(info.value)
    assert f"in {top}" in message and "names default 'nowhere.yaml'" in message


def test_invalid_defaults_value_is_rejected(tmp_path):
    with pytest.raises(ConfigError, match="defaults = 3: expected a path or a list of paths"):
        load_config({"algorithm": "sft", "defaults": 3})


def test_validation_errors_name_the_file(tmp_path):
    top = write(tmp_path / "bad.yaml", "algorithm: sft\npolicy:\n  optimizer: {learning_rate: 1}\n")
    with pytest.raises(ConfigError) as info:
        load_config(top)
    assert str(info.value) == (
        f"invalid config in {top}: unknown key 'policy.optimizer.learning_rate'; did you mean 'lr'?"
    )


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    bad = write(tmp_path / "broken.yaml", "algorithm: sft\nseed: [1, 2\nbatch_size: 3\n")
    with pytest.raises(ConfigError, match=r"broken.yaml, line \d+, column \d+: invalid YAML"):
        load_config(bad)


def test_json_syntax_error_names_file_and_line(tmp_path):
    bad = write(tmp_path / "broken.json", '{\n  "algorithm": "sft",\n  "seed": \n}\n')
    with pytest.raises(ConfigError, match=r"broken.json, line 4, column 1: invalid JSON"):
        load_config(bad)


def test_missing_file_and_non_mapping_file_are_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match="holds a list, not a mapping"):
        load_config(write(tmp_path / "list.yaml", "- 1\n- 2\n"))


def test_missing_algorithm_lists_the_installed_algorithms():
    with pytest.raises(ConfigError) as info:
        load_config({"seed": 1})
    assert "missing required key 'algorithm'" in str(info.value)
    assert "dpo, grpo, sft" in str(info.value)


def test_unknown_algorithm_suggests_a_close_one():
    with pytest.raises(ConfigError, match="algorithm = 'grop'.*did you mean 'grpo'"):
        load_config({"algorithm": "grop"})


def test_string_overrides_parse_values_as_yaml():
    cfg = load_config(
        {"algorithm": "grpo", "max_val_samples": 10},
        [
            "policy.optimizer.lr=1e-6",
            "val_at_start=true",
            "policy.optimizer.betas=[0.9,0.95]",
            "max_val_samples=null",
            "policy.model_name=my/model",
        ],
    )
    assert cfg.policy.optimizer.lr == 1e-6
    assert cfg.val_at_start is True
    assert cfg.policy.optimizer.betas == (0.9, 0.95)
    assert cfg.max_val_samples is None
    assert cfg.policy.model_name == "my/model"


def test_dict_overrides_take_values_as_given():
    cfg = load_config({"algorithm": "sft"}, {"data.dataset": "1e-6", "policy.optimizer.lr": 3e-6})
    assert cfg.data.dataset == "1e-6"  # a dict value is never re-parsed
    assert cfg.policy.optimizer.lr == 3e-6


def test_override_of_a_misspelled_key_suggests_the_field():
    with pytest.raises(ConfigError) as info:
        load_config({"algorithm": "grpo"}, ["policy.optimizer.learning_rate=1e-6"])
    assert "unknown key 'policy.optimizer.learning_rate'; did you mean 'lr'?" in str(info.value)


def test_override_can_choose_the_algorithm():
    assert type(load_config({"algorithm": "grpo"}, ["algorithm=sft"])) is SFTConfig


def test_tilde_deletes_a_key_so_the_default_returns():
    cfg = load_config(
        {"algorithm": "sft", "seed": 7, "policy": {"precision": "float32"}},
        ["~seed", "~policy.precision"],
    )
    assert (cfg.seed, cfg.policy.precision) == (42, "auto")
    with pytest.raises(ConfigError, match="'~sed': 'sed' is not set.*did you mean 'seed'"):
        load_config({"algorithm": "sft", "seed": 7}, ["~sed"])


def test_plus_adds_a_key_and_refuses_an_existing_one():
    cfg = load_config({"algorithm": "sft"}, ["+policy.backend_options.tp_size=2"])
    assert cfg.policy.backend_options == {"tp_size": 2}
    with pytest.raises(ConfigError, match="'seed' is already set; write 'seed=...'"):
        load_config({"algorithm": "sft", "seed": 1}, ["+seed=2"])


def test_malformed_overrides_are_rejected():
    with pytest.raises(ConfigError, match="has no '='"):
        load_config({"algorithm": "sft"}, ["seed"])
    with pytest.raises(ConfigError, match="not one string"):
        load_config({"algorithm": "sft"}, "seed=1")
    with pytest.raises(ConfigError, match="not a dotted key"):
        load_config({"algorithm": "sft"}, ["policy..lr=1"])
    with pytest.raises(ConfigError, match="'seed' = 1 is not a mapping"):
        load_config({"algorithm": "sft", "seed": 1}, ["+seed.x=1"])


def test_parse_override_value_and_parse_overrides():
    assert parse_override_value("1e-6") == 1e-6
    assert parse_override_value("-2.5E3") == -2500.0
    assert parse_override_value("3") == 3
    assert parse_override_value("{a: 1}") == {"a": 1}
    assert parse_override_value("") == ""
    assert parse_overrides({"+a": 1, "~b": 2}) == [("add", "a", 1), ("delete", "b", None)]


def test_deep_merge_does_not_mutate_its_inputs():
    base = {"a": {"x": 1}}
    merged = deep_merge(base, {"a": {"y": 2}})
    assert merged == {"a": {"x": 1, "y": 2}}
    assert base == {"a": {"x": 1}}


def test_dump_config_round_trips_full_and_minimal(tmp_path):
    cfg = load_config({"algorithm": "grpo", "policy": {"optimizer": {"lr": 1e-6}}, "seed": 3})
    assert load_config(yaml.safe_load(dump_config(cfg))) == cfg
    minimal = yaml.safe_load(dump_config(cfg, minimal=True))
    assert minimal == {"algorithm": "grpo", "seed": 3, "policy": {"optimizer": {"lr": 1e-6}}}
    assert load_config(minimal) == cfg
    assert yaml.safe_load(dump_config(GRPOConfig(), minimal=True)) == {"algorithm": "grpo"}


def test_diff_configs_lists_changed_dotted_keys_in_order():
    a = load_config({"algorithm": "sft", "seed": 1})
    b = load_config({"algorithm": "sft", "seed": 2, "policy": {"optimizer": {"lr": 1e-6}}})
    assert diff_configs(a, b) == [("seed", 1, 2), ("policy.optimizer.lr", 5e-6, 1e-6)]
    assert diff_configs(a, a) == []
    across = dict((k, (x, y)) for k, x, y in diff_configs(SFTConfig(), DPOConfig()))
    assert across["algorithm"] == ("sft", "dpo")
    assert across["beta"] == (ABSENT, 0.1)


def test_json_schema_describes_the_config_and_admits_defaults(tmp_path):
    schema = config_json_schema("grpo")
    assert schema["properties"]["algorithm"]["const"] == "grpo"
    assert schema["additionalProperties"] is False
    assert "defaults" in schema["properties"]
    assert "num_generations_per_prompt" in schema["properties"]
    written = write_json_schemas(tmp_path / "schemas")
    names = sorted(p.name for p in written)
    assert {"grpo.schema.json", "sft.schema.json", "dpo.schema.json"} <= set(names)
    sft = json.loads((tmp_path / "schemas/sft.schema.json").read_text())
    assert sft["properties"]["algorithm"]["const"] == "sft"
    with pytest.raises(ConfigError, match="algorithm = 'nope'"):
        config_json_schema("nope")


def test_path_like_sources_are_accepted(tmp_path):
    path = write(tmp_path / "x.yml", "algorithm: sft\n")
    assert load_config(os.fspath(path)) == load_config(path)
