"""NeMo RL's advantage estimator setting: grpo and reinforce_plus_plus carry over by name."""

from __future__ import annotations

from nemo_rl.compat import migrate_legacy_config


def test_prorlv2_keeps_reinforce_plus_plus_with_its_baseline(legacy_dir):
    result = migrate_legacy_config(legacy_dir / "prorlv2.v2.yaml")
    assert result.config.advantage_estimator == "reinforce_plus_plus"
    assert result.config.minus_baseline is True
    assert not any("advantage estimator" in w for w in result.warnings)


def test_grpo_math_1b_keeps_grpo(legacy_dir):
    assert migrate_legacy_config(legacy_dir / "grpo_math_1B.yaml").config.advantage_estimator == "grpo"
