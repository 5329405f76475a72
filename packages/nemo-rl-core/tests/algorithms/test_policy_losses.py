"""The policy-loss registry: the shipped loss by name, the config's `options`, the dry run's check."""

from __future__ import annotations

import pytest
from nemo_rl import registry
from nemo_rl.algorithms.grpo import ClippedPGLoss, GRPOLossConfig, build_policy_loss
from nemo_rl.config import ConfigError, load_config
from nemo_rl.trainers.preflight import check_plugin, preflight, required_plugins


def test_clipped_pg_is_the_default_and_is_built_with_the_loss_section():
    assert registry.resolve("policy_losses", "clipped_pg") is ClippedPGLoss
    loss = build_policy_loss(GRPOLossConfig(ratio_clip_max=0.28, use_cispo=True))
    assert isinstance(loss, ClippedPGLoss) and loss.config.ratio_clip_max == 0.28


def test_an_unknown_name_is_a_config_error_naming_the_field_and_the_close_name():
    with pytest.raises(ConfigError, match=r"loss.name='clipped_p'.*did you mean 'clipped_pg'"):
        build_policy_loss(GRPOLossConfig(name="clipped_p"))


def test_the_dry_run_checks_the_loss_name():
    config = load_config({"algorithm": "grpo", "loss": {"name": "clipped_p"}})
    assert ("policy_losses", "clipped_p", "loss.name") in required_plugins(config)
    assert "did you mean 'clipped_pg'" in check_plugin("policy_losses", "clipped_p", "loss.name")
    report = preflight(config, check_sources=False, load_plugins=False)
    with pytest.raises(ConfigError, match="policy loss 'clipped_p' is not registered"):
        report.raise_if_problems()


def test_options_go_to_a_plugin_loss_and_are_refused_by_clipped_pg():
    seen = {}

    @registry.register("policy_losses", "test_opts")
    def factory(config):
        seen.update(config.options)
        return ClippedPGLoss()

    try:
        build_policy_loss(GRPOLossConfig(name="test_opts", options={"beta": 0.5}))
    finally:
        registry.unregister("policy_losses", "test_opts")
    assert seen == {"beta": 0.5}
    with pytest.raises(ConfigError, match=r"loss.options \['beta'\] are not read by the clipped_pg"):
        load_config({"algorithm": "grpo", "loss": {"options": {"beta": 0.5}}})
