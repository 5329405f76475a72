"""GRPO with two weighted rewards, each finite, whose weighted sum overflows float32 on one sample
(1e30 * weight 1e10): `on_reward_error` decides, as for a failing reward function, and no inf or
NaN reaches the advantages."""

from __future__ import annotations

import itertools
import math

import pytest
from nemo_rl import GRPOTrainer
from nemo_rl.environments import RewardFunctionError


def spike_once():
    """A reward of 1e30 for the first sample it scores and 0.0 after: one overflowing sample."""
    calls = itertools.count()

    def spike(prompt, response, **_):
        return 1e30 if next(calls) == 0 else 0.0

    return spike


def test_zero_mode_scores_the_overflowing_sample_zero_and_the_step_trains(
    tiny_model, tmp_path, settings, prompt_rows, rewards, recorder
):
    trainer = GRPOTrainer.from_pretrained(
        tiny_model, **settings["grpo"](tmp_path, max_num_steps=1, on_reward_error="zero")
    )
    try:
        result = trainer.fit(
            dataset=prompt_rows[:4],
            reward_fn={"length": rewards["length"], "spike": (spike_once(), 1e10)},
            callbacks=[recorder],
        )
    finally:
        trainer.close()
    (metrics,) = result.history
    assert metrics["reward_errors"] == 1.0  # the one sample, and only it
    assert metrics["reward/spike"] == 0.0  # zeroed in every component, not 1e30
    assert math.isfinite(metrics["loss"]) and metrics["loss"] != 0.0
    (batch,) = recorder.rollouts
    assert batch["rewards"].isfinite().all() and batch["advantages"].isfinite().all()
    assert (batch["rewards"] < 0).sum() >= 16  # the length reward still scored the others


def test_raise_mode_stops_naming_the_sample_values_and_weights(
    tiny_model, tmp_path, settings, prompt_rows, rewards
):
    trainer = GRPOTrainer.from_pretrained(tiny_model, **settings["grpo"](tmp_path, max_num_steps=1))
    try:
        with pytest.raises(RewardFunctionError) as info:
            trainer.fit(
                dataset=prompt_rows[:4],
                reward_fn={"length": rewards["length"], "spike": (spike_once(), 1e10)},
            )
    finally:
        trainer.close()
    message = str(info.value)
    assert info.value.function_name == "weighted sum" and info.value.sample_index is not None
    assert f"the weighted reward sum of sample {info.value.sample_index} (prompt '" in message
    assert any(f"'{row['prompt']}'" in message for row in prompt_rows[:4])
    assert "spike 1e+30 * weight 1e+10" in message and "not finite in float32" in message
    assert "scale the weights or the rewards down" in message


def test_a_weight_that_is_not_finite_fails_before_any_model_loads(tiny_model, tmp_path, settings, rewards):
    trainer = GRPOTrainer.from_pretrained(tiny_model, **settings["grpo"](tmp_path, max_num_steps=1))
    try:
        with pytest.raises(ValueError, match=r"reward_fn\['length'\]\[1\] is nan; a reward weight"):
            trainer.fit(dataset=[{"prompt": "x"}], reward_fn={"length": (rewards["length"], math.nan)})
        assert trainer.policy is None  # refused in fit's first line: no model was loaded
    finally:
        trainer.close()
