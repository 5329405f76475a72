"""Migration rules on small hand-written legacy configs: conversions, drops, errors, detection."""

from __future__ import annotations

import warnings

import pytest
from nemo_rl.compat import LegacyConfigError, is_legacy_config, migrate_legacy_config
from nemo_rl.config import load_config


def test_cosine_scheduler_is_converted_by_hand_computed_values():
    legacy = {"sft": {}, "policy": {
        "optimizer": {"name": "torch.optim.AdamW", "kwargs": {"lr": 2.0e-5, "betas": [0.9, 0.95]}},
        "scheduler": [
            {"name": "torch.optim.lr_scheduler.LinearLR",
             "kwargs": {"start_factor": 0.0, "end_factor": 1.0, "total_iters": 10}},
            {"name": "torch.optim.lr_scheduler.CosineAnnealingLR",
             "kwargs": {"T_max": 90, "eta_min": 2.0e-6}},
            {"milestones": [10]}]}}
    cfg = migrate_legacy_config(legacy).config.policy
    assert (cfg.scheduler.name, cfg.scheduler.warmup_steps, cfg.scheduler.total_steps) == (
        "cosine", 10, 100)
    assert cfg.scheduler.min_lr_ratio == pytest.approx(0.1)
    assert cfg.optimizer.betas == (0.9, 0.95) and cfg.optimizer.lr == 2.0e-5


def test_unmappable_scheduler_and_optimizer_are_dropped_with_warnings():
    legacy = {"sft": {}, "policy": {
        "optimizer": {"name": "torch.optim.RMSprop", "kwargs": {"lr": 1e-5, "alpha": 0.9}},
        "scheduler": [{"name": "torch.optim.lr_scheduler.StepLR", "kwargs": {"step_size": 3}}]}}
    result = migrate_legacy_config(legacy)
    assert result.config.policy.optimizer.name == "adamw"
    assert "RMSprop" in result.dropped["policy.optimizer.name"]
    assert "'alpha'" in result.dropped["policy.optimizer.kwargs.alpha"]
    assert "StepLR" in result.dropped["policy.scheduler"]
    assert sum("is dropped" in w for w in result.warnings) == 3


def test_negative_val_period_disables_validation_and_feature_flags_warn():
    result = migrate_legacy_config({"grpo": {"val_period": -1, "batch_multiplier": 1.5,
                                             "advantage_clip_low": None}})
    assert result.config.val_period == 0
    assert "batch multiplier" in result.dropped["grpo.batch_multiplier"]
    assert any("grpo.batch_multiplier" in w for w in result.warnings)
    assert not any("advantage_clip_low" in w for w in result.warnings)  # off: nothing changes


def test_dedicated_generation_gpus_and_launcher():
    legacy = {"grpo": {}, "cluster": {"num_nodes": 2, "gpus_per_node": 8},
              "policy": {"generation": {"backend": "vllm", "colocated": {
                  "enabled": False, "resources": {"gpus_per_node": 4, "num_nodes": 1}}}}}
    cfg = migrate_legacy_config(legacy).config
    assert (cfg.generation.colocated, cfg.generation.num_gpus, cfg.cluster.launcher) == (
        False, 4, "ray")


def test_invalid_value_names_the_legacy_key():
    with pytest.raises(LegacyConfigError, match=r"grpo\.num_prompts_per_step=0"):
        migrate_legacy_config({"grpo": {"num_prompts_per_step": 0}})


def test_config_without_algorithm_section_is_one_clear_error():
    with pytest.raises(LegacyConfigError, match="grpo, sft or dpo"):
        migrate_legacy_config({"policy": {"dtensor_cfg": {"enabled": True}}})


@pytest.mark.parametrize(
    ("raw", "legacy"),
    [({"grpo": {}}, True), ({"loss_fn": {}}, True),
     ({"policy": {"dtensor_cfg": {"enabled": True}}}, True),
     ({"policy": {"optimizer": {"name": "torch.optim.AdamW", "kwargs": {}}}}, True),
     ({"logger": {"wandb_enabled": True}}, True),
     ({"algorithm": "grpo", "grpo": {}}, False),
     ({"policy": {"model_name": "m"}}, False), ({}, False)],
)
def test_is_legacy_config(raw, legacy):
    assert is_legacy_config(raw) is legacy


def test_is_legacy_config_follows_defaults_with_a_base_dir(tmp_path):
    (tmp_path / "base.yaml").write_text("grpo: {num_prompts_per_step: 4}\n")
    assert is_legacy_config({"defaults": "base.yaml"}, tmp_path)
    assert not is_legacy_config({"defaults": "base.yaml"})


def test_load_config_migrates_with_deprecation_warnings(legacy_dir):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cfg = load_config(legacy_dir / "grpo_math_1B.yaml", ["grpo.num_prompts_per_step=64"])
    assert cfg.algorithm == "grpo" and cfg.num_prompts_per_step == 64
    messages = [str(w.message) for w in caught if w.category is DeprecationWarning]
    assert "'loss_fn.reference_policy_kl_penalty' is deprecated: use 'loss.kl_penalty'" in messages
    assert "'policy.dtensor_cfg.enabled' is deprecated: use 'policy.backend'" in messages


def test_cross_field_error_is_reported_in_one_line():
    legacy = {"grpo": {"num_prompts_per_step": 2, "num_generations_per_prompt": 2},
              "policy": {"train_global_batch_size": 8, "train_micro_batch_size": 1}}
    with pytest.raises(LegacyConfigError, match="must divide the sequences per step"):
        migrate_legacy_config(legacy)
