"""Advantage estimators chosen by config run through the whole GRPO trainer: the advantages in
the batch are the estimator's, a plugin estimator registered in-process is used by name and sees
the shaped rewards, and the loss at ratio 1 has the estimator's closed form."""

from __future__ import annotations

import torch
from nemo_rl import GRPOTrainer, registry
from nemo_rl.algorithms.grpo.estimators import AdvantageInputs, rloo_advantages
from nemo_rl.trainers import Callback


class Keep(Callback):
    def on_rollout_end(self, trainer, rollout, metrics):
        self.rollout = rollout


def _fit(tiny_model, tmp_path, settings, rows, reward, **overrides):
    keep = Keep()
    trainer = GRPOTrainer.from_pretrained(tiny_model, **settings["grpo"](tmp_path, max_num_steps=1, **overrides))
    result = trainer.fit(dataset=rows, reward_fn=reward, callbacks=[keep])
    trainer.close()
    return result, keep.rollout


def test_rloo_advantages_reach_the_batch(tiny_model, tmp_path, settings, rewards, prompt_rows):
    result, batch = _fit(tiny_model, tmp_path, settings, prompt_rows, rewards["length"],
                         advantage_estimator="rloo")
    expected = rloo_advantages(AdvantageInputs(
        rewards=batch["shaped_rewards"], group_ids=batch["group_ids"],
        valid=batch["sample_mask"] > 0, token_mask=batch["token_mask"], config=None))
    torch.testing.assert_close(batch["advantages"], expected)
    assert batch["advantages"].abs().sum() > 0 and torch.isfinite(torch.tensor(result.metrics["loss"]))


def test_reinforce_plus_plus_gives_token_level_whitened_advantages(
    tiny_model, tmp_path, settings, rewards, prompt_rows
):
    result, batch = _fit(tiny_model, tmp_path, settings, prompt_rows, rewards["length"],
                         advantage_estimator="reinforce_plus_plus")
    adv = batch["advantages"]
    m = batch["token_mask"] * batch["sample_mask"].unsqueeze(-1)
    assert adv.shape == m.shape
    assert abs(float((adv * m).sum() / m.sum())) < 1e-5  # mean 0 over valid tokens
    assert abs(float((adv**2 * m).sum() / m.sum()) - 1.0) < 1e-4  # variance 1
    # ratio 1 on the first pass: the token-level loss is -mean(A) over valid tokens = 0
    assert abs(result.metrics["loss"]) < 1e-4


def test_a_plugin_estimator_is_used_by_name_and_sees_shaped_rewards(
    tiny_model, tmp_path, settings, rewards, prompt_rows
):
    seen = {}

    @registry.register("advantage_estimators", "test_sign")
    def sign(inputs: AdvantageInputs) -> torch.Tensor:
        seen["rewards"] = inputs.rewards.clone()
        return torch.sign(inputs.rewards - inputs.rewards.mean())

    try:
        _, batch = _fit(tiny_model, tmp_path, settings, prompt_rows, rewards["length"],
                        advantage_estimator="test_sign")
    finally:
        registry.unregister("advantage_estimators", "test_sign")
    torch.testing.assert_close(seen["rewards"], batch["shaped_rewards"])
    torch.testing.assert_close(batch["advantages"], torch.sign(seen["rewards"] - seen["rewards"].mean()))
