"""GRPO's environment: NeMo RL's `data.*.env_name` / `env.<name>` become nemo-rl's `environment`."""

from __future__ import annotations

from nemo_rl.compat import migrate_legacy_config
from nemo_rl.compat.rules_environment import environment_for_legacy, legacy_environment_name


def _grpo(data: dict | None = None, env: dict | None = None) -> dict:
    legacy: dict = {"grpo": {"num_prompts_per_step": 2}}
    if data is not None:
        legacy["data"] = data
    if env is not None:
        legacy["env"] = env
    return legacy


def test_math_example_config_gets_the_math_environment(legacy_dir):
    result = migrate_legacy_config(legacy_dir / "grpo_math_1B.yaml")
    assert result.config.environment == "math"
    assert result.mapping["data.default.env_name"] == "environment"
    # The math env's worker count and verifier have no nemo-rl counterpart: dropped, reported.
    assert "do not carry over" in result.dropped["env.math.num_workers"]


def test_math_default_is_renamed_and_a_datasets_own_env_name_wins():
    result = migrate_legacy_config(_grpo(
        {"default": {"env_name": "math_default"}, "train": {"env_name": "code"}}))
    assert result.config.environment == "code"
    assert "superseded by 'data.train.env_name'" in result.dropped["data.default.env_name"]
    assert migrate_legacy_config(_grpo({"default": {"env_name": "math_default"}})).config.environment == "math"


def test_lone_env_section_names_the_environment_when_no_env_name_is_given():
    assert migrate_legacy_config(_grpo(env={"math": {"num_workers": 8}})).config.environment == "math"
    several = _grpo(env={"math": {"num_workers": 8}, "code": {"num_workers": 2}})
    assert migrate_legacy_config(several).config.environment is None
    assert legacy_environment_name({"env.math.num_workers": 8, "env.code.num_workers": 2}) is None


def test_environment_nemo_rl_lacks_is_dropped_with_a_warning_and_the_fix():
    result = migrate_legacy_config(_grpo({"default": {"env_name": "reward_model"}},
                                         env={"reward_model": {"batch_size": 4}}))
    assert result.config.environment is None
    warning = next(w for w in result.warnings if "data.default.env_name" in w)
    assert "no nemo-rl equivalent" in warning and "++data.default.env_name=" in warning
    assert environment_for_legacy({"data.default.env_name": "vlm"}) is None


def test_names_unknown_to_nemo_rl_pass_through_for_plugins():
    result = migrate_legacy_config(_grpo({"default": {"env_name": "exact_match"}}))
    assert result.config.environment == "exact_match"


def test_validation_env_name_warns_only_when_it_differs_from_training():
    same = migrate_legacy_config(_grpo({"train": {"env_name": "math"},
                                        "validation": {"env_name": "math"}}))
    assert not any("data.validation.env_name" in w for w in same.warnings)
    other = migrate_legacy_config(_grpo({"train": {"env_name": "math"},
                                         "validation": {"env_name": "code"}}))
    assert any("data.validation.env_name" in w and "'math'" in w for w in other.warnings)


def test_code_workers_map_only_when_the_environment_is_code():
    code = migrate_legacy_config(_grpo({"default": {"env_name": "code"}}, {"code": {"num_workers": 6}}))
    assert code.config.environment_options == {"max_workers": 6}
    math = migrate_legacy_config(_grpo({"default": {"env_name": "math"}},
                                       {"math": {"num_workers": 8}, "code": {"num_workers": 6}}))
    assert math.config.environment_options == {}
    assert "not 'code'" in math.dropped["env.code.num_workers"]


def test_sft_drops_env_name():
    result = migrate_legacy_config({"sft": {}, "data": {"default": {"env_name": "math"}}})
    assert result.dropped["data.default.env_name"] == "only GRPO uses an environment"
