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
    result = migrate_legacy_config(_grpo({"default": {"env_name": "code_jaccard"}},
                                         env={"code_jaccard": {"num_workers": 4}}))
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


def test_reward_model_environment_carries_its_model_precision_batch_and_length(legacy_dir):
    result = migrate_legacy_config(legacy_dir / "grpo_rm_1B.yaml")
    assert result.config.environment == "reward_model"
    assert result.config.environment_options == {
        "model": "Skywork/Skywork-Reward-V2-Qwen3-0.6B",
        "dtype": "bfloat16",
        "batch_size": 4,  # ${policy.train_micro_batch_size}, resolved
        "max_length": 2048,
        "transform": "raw",  # NeMo RL scored with the raw (Bradley-Terry) output
        "device": "cuda",  # NeMo RL gave it a GPU (env.reward_model.resources)
    }
    assert result.mapping["env.reward_model.model_name"] == "environment_options.model"
    for key in ("dtensor_cfg.tensor_parallel_size", "resources.gpus_per_node", "tokenizer.name",
                "reward_model_cfg.reward_model_type", "checkpoint_path"):
        assert result.dropped[f"env.reward_model.{key}"], key  # each with its reason
    assert "'env.reward_model.model_name' is deprecated: use 'environment_options.model'" in result.warnings
    assert not any("is dropped" in w for w in result.warnings if "reward_model" in w)


def test_reward_model_settings_that_change_the_scores_warn():
    env = {"reward_model": {"model_name": "org/rm", "tokenizer": {"name": "org/other-tokenizer"},
                            "checkpoint_path": "/ckpts/rm/step_100"}}
    result = migrate_legacy_config(_grpo({"default": {"env_name": "reward_model"}}, env))
    assert result.config.environment_options == {"model": "org/rm", "transform": "raw"}
    warned = " ".join(w for w in result.warnings if "env.reward_model" in w)
    assert "'org/other-tokenizer'" in warned and "export the checkpoint to HF format" in warned


def test_reward_model_settings_are_unused_when_another_environment_trains():
    result = migrate_legacy_config(_grpo({"default": {"env_name": "math"}},
                                         {"reward_model": {"model_name": "org/rm", "batch_size": 4}}))
    assert result.config.environment == "math" and result.config.environment_options == {}
    assert "not 'reward_model'" in result.dropped["env.reward_model.model_name"]
