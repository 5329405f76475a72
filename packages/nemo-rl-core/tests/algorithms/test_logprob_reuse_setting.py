"""`reuse_training_logprobs`: when GRPO skips the prev_logprobs pass, and the errors of `true`
where skipping would be wrong."""

from __future__ import annotations

import pytest
from nemo_rl.algorithms.grpo import GRPOConfig, GRPOLossConfig, build_policy_loss
from nemo_rl.algorithms.grpo.policy_losses import reuses_training_logprobs
from nemo_rl.config import ConfigError
from pydantic import ValidationError

STEP = {"num_prompts_per_step": 4, "num_generations_per_prompt": 8}  # 32 sequences per step


class PlainLoss:
    """A loss that does not declare it can train without prev_logprobs."""

    def __init__(self, config: GRPOLossConfig) -> None:
        self.config = config

    def __call__(self, logprobs, batch, global_valid_tokens, global_valid_seqs):
        raise AssertionError("not called here")


def _config(setting, epochs=1, gbs=None) -> GRPOConfig:
    return GRPOConfig(
        **STEP,
        reuse_training_logprobs=setting,
        epochs_per_rollout=epochs,
        policy={"train_global_batch_size": gbs, "train_micro_batch_size": 4},
    )


@pytest.mark.parametrize(
    ("epochs", "gbs", "updates"), [(1, None, 1), (1, 32, 1), (1, 8, 4), (3, None, 3), (2, 16, 4)]
)
def test_updates_per_rollout(epochs, gbs, updates):
    assert _config("auto", epochs, gbs).updates_per_rollout == updates


@pytest.mark.parametrize(("epochs", "gbs", "expected"), [(1, None, True), (1, 32, True),
                                                         (1, 16, False), (2, None, False)])
def test_auto_is_on_exactly_with_one_update(epochs, gbs, expected):
    cfg = _config("auto", epochs, gbs)
    assert reuses_training_logprobs(cfg, build_policy_loss(cfg.loss)) is expected


def test_false_always_runs_the_pass_and_true_skips_it():
    cfg = _config(False)
    assert reuses_training_logprobs(cfg, build_policy_loss(cfg.loss)) is False
    cfg = _config(True, 1, 32)
    assert reuses_training_logprobs(cfg, build_policy_loss(cfg.loss)) is True


def test_the_default_is_auto():
    assert GRPOConfig().reuse_training_logprobs == "auto"


@pytest.mark.parametrize(("epochs", "gbs", "shown"), [(2, None, "null"), (1, 8, "8")])
def test_true_with_more_than_one_update_is_a_config_error(epochs, gbs, shown):
    with pytest.raises(ValidationError) as info:
        _config(True, epochs, gbs)
    message = str(info.value)
    assert "reuse_training_logprobs is true" in message
    assert f"epochs_per_rollout ({epochs})" in message
    assert f"policy.train_global_batch_size ({shown})" in message
    assert "optimizer updates per rollout" in message and "Set reuse_training_logprobs" in message


def test_true_cannot_be_set_later_on_a_multi_update_config():
    cfg = _config("auto", epochs=2)
    with pytest.raises(ValidationError, match="reuse_training_logprobs is true"):
        cfg.reuse_training_logprobs = True


def test_a_loss_without_support_keeps_prev_logprobs():
    cfg = _config("auto")
    assert reuses_training_logprobs(cfg, PlainLoss(cfg.loss)) is False
    cfg = _config(True)
    with pytest.raises(ConfigError, match="policy loss 'clipped_pg' does not declare"):
        reuses_training_logprobs(cfg, PlainLoss(cfg.loss))


def test_a_string_other_than_auto_is_refused():
    with pytest.raises(ValidationError, match="reuse_training_logprobs"):
        GRPOConfig(reuse_training_logprobs="sometimes")
