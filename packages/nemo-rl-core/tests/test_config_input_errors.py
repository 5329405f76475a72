"""Issue #14: each bad config input the issue lists is one ConfigError naming the file or field and
the fix (the property test in nemo-rl-recipes covers the general case)."""

from __future__ import annotations

import pytest
from nemo_rl.config import ConfigError, load_config


def _write(path, text: str | bytes):
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def test_duplicate_key_names_both_lines(tmp_path):
    run = _write(tmp_path / "run.yaml", "algorithm: grpo\nmax_num_steps: 300\nseed: 1\nmax_num_steps: 601\n")
    with pytest.raises(ConfigError, match=r"run.yaml: key 'max_num_steps' appears twice \(lines 2 and 4\)"):
        load_config(run)


def test_nested_duplicate_key_names_dotted_field(tmp_path):
    run = _write(tmp_path / "run.yaml", "algorithm: sft\npolicy:\n  optimizer:\n    lr: 1\n    lr: 2\n")
    with pytest.raises(ConfigError, match=r"'policy.optimizer.lr' appears twice \(lines 4 and 5\)"):
        load_config(run)


def test_yaml_merge_keys_are_not_duplicates(tmp_path):
    run = _write(tmp_path / "run.yaml", "algorithm: sft\npolicy:\n  optimizer: {<<: {lr: 1.0}, lr: 2.0}\n")
    assert load_config(run).policy.optimizer.lr == 2.0


@pytest.mark.parametrize("parent", [False, True])
def test_non_utf8_file_names_the_file(tmp_path, parent):
    bad = _write(tmp_path / "latin.yaml", "algorithm: sft\npolicy:\n  model_name: caf\xe9\n".encode("latin-1"))
    run = _write(tmp_path / "run.yaml", "defaults: latin.yaml\n") if parent else bad
    with pytest.raises(ConfigError, match=r"latin.yaml, line 3: not UTF-8 text \(byte 0xe9\); save the file as UTF-8"):
        load_config(run)


def test_defaults_cycle_without_algorithm_key(tmp_path):
    _write(tmp_path / "a.yaml", "defaults: b.yaml\npolicy: {}\n")
    _write(tmp_path / "b.yaml", "defaults: a.yaml\n")
    with pytest.raises(ConfigError, match=r"defaults form a cycle \(.*\): remove one of these links"):
        load_config(tmp_path / "a.yaml")


def test_legacy_defaults_cycle(tmp_path):
    _write(tmp_path / "a.yaml", "defaults: b.yaml\ngrpo: {max_num_steps: 2}\n")
    _write(tmp_path / "b.yaml", "defaults: a.yaml\n")
    with pytest.raises(ConfigError, match=r"cycle \(a.yaml -> b.yaml -> a.yaml\)"):
        load_config(tmp_path / "a.yaml")


def test_bad_yaml_in_a_parent_names_the_parent(tmp_path):
    _write(tmp_path / "bad.yaml", "policy: [\n")
    run = _write(tmp_path / "run.yaml", "defaults: bad.yaml\n")
    with pytest.raises(ConfigError, match=r"bad.yaml, line 2, column 1: invalid YAML .*fix the syntax"):
        load_config(run)


def test_defaults_must_be_paths(tmp_path):
    run = _write(tmp_path / "run.yaml", "defaults: 5\n")
    with pytest.raises(ConfigError, match=r"run.yaml: defaults = 5: expected a path or a list of paths"):
        load_config(run)


def test_deep_nesting_is_an_error(tmp_path):
    run = _write(tmp_path / "run.yaml", "algorithm: grpo\nenvironment_options: " + "[" * 1000 + "]" * 1000)
    with pytest.raises(ConfigError, match=r"run.yaml.*(nesting depth|nested more than 50 levels)"):
        load_config(run)
    with pytest.raises(ConfigError, match=r"'environment_options\.k\.k.*' is nested more than 50"):
        deep: dict = {}
        node = deep
        for _ in range(60):
            node["k"] = node = {}
        load_config({"algorithm": "grpo", "environment_options": deep})


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("policy.optimizer.lr=.inf", "policy.optimizer.lr = inf: Input should be a finite number; expected float > 0"),
        ("policy.optimizer.eps=.inf", "policy.optimizer.eps = inf"),
        ("loss.kl_penalty=.inf", "loss.kl_penalty = inf"),
        ("generation.temperature=.inf", "generation.temperature = inf"),
        ("reward_scaling.target_min=.nan", "reward_scaling.target_min = nan"),
        ("policy.optimizer.betas=[.nan, .nan]", "policy.optimizer.betas[0] = nan"),
        ("policy.optimizer.betas=[1.5, -3]", "policy.optimizer.betas[0] = 1.5: Input should be less than 1; expected float >= 0, < 1"),
        ("seed=100000000000000000000", "seed = 100000000000000000000: Input should be less than or equal to"),
        ("policy.optimizer.lr=true", "policy.optimizer.lr = True: Input should be a valid number; expected float > 0; true/false is not a number"),
        ("num_prompts_per_step=true", "num_prompts_per_step = True: Input should be a valid integer; expected int > 0; true/false"),
    ],
)
def test_strict_numbers(override, message):
    with pytest.raises(ConfigError) as info:
        load_config({"algorithm": "grpo"}, [override])
    assert message in str(info.value)


def test_dpo_beta_must_be_finite():
    with pytest.raises(ConfigError, match=r"beta = inf: Input should be a finite number"):
        load_config({"algorithm": "dpo", "beta": float("inf")})


def test_numbers_still_accept_ints_and_exponents(tmp_path):
    run = _write(tmp_path / "run.yaml", "algorithm: grpo\npolicy:\n  optimizer:\n    lr: 1e-6\n    eps: 1\n")
    cfg = load_config(run)
    assert cfg.policy.optimizer.lr == 1e-6 and cfg.policy.optimizer.eps == 1.0


def test_quoted_number_gets_a_hint():
    with pytest.raises(ConfigError, match=r"write the number without quotes"):
        load_config({"algorithm": "sft", "batch_size": "8"})


def test_keys_must_be_names(tmp_path):
    run = _write(tmp_path / "run.yaml", "algorithm: sft\nyes: 1\n")
    with pytest.raises(ConfigError, match=r"run.yaml, line 2: key 'yes' is not a name .*quote it"):
        load_config(run)
