"""Policy losses chosen by `loss.name` run through the whole GRPO trainer: a loss registered in
the test is built from the `loss` section (its `options` included), is the one the backend
differentiates, and trains other weights than the built-in `clipped_pg`; an unknown name stops
the run before the model loads with a ConfigError that suggests the close name."""

from __future__ import annotations

import pytest
import torch
from nemo_rl import GRPOTrainer, registry
from nemo_rl.config import ConfigError


class ScaledNLL:
    """-scale x mean log-prob of the sampled response tokens (ignores the advantages)."""

    instances: list[ScaledNLL] = []

    def __init__(self, config):
        self.scale = config.options["scale"]
        self.max_gap = 0.0  # largest |logprobs - prev_logprobs| seen: 0 on the first update
        self.calls = 0
        ScaledNLL.instances.append(self)

    def __call__(self, logprobs, batch, global_valid_tokens, global_valid_seqs):
        mask = batch["token_mask"] * batch["sample_mask"].unsqueeze(-1)
        self.calls += 1
        self.max_gap = max(self.max_gap, float(((logprobs.detach() - batch["prev_logprobs"]) * mask).abs().max()))
        loss = -(self.scale * logprobs * mask).sum() / global_valid_tokens
        return loss, {"nll": float(-(logprobs.detach() * mask).sum() / global_valid_tokens)}


def _train(tiny_model, tmp_path, settings, rows, reward, **overrides):
    trainer = GRPOTrainer.from_pretrained(
        tiny_model, **settings["grpo"](tmp_path, max_num_steps=1, **overrides)
    )
    try:
        result = trainer.fit(dataset=rows, reward_fn=reward)
        weights = {name: t.detach().clone() for name, t in trainer.policy.export_weights()}
    finally:
        trainer.close()
    return result, weights


def test_a_registered_loss_is_built_from_the_config_and_trains(
    tiny_model, tmp_path, settings, rewards, prompt_rows
):
    registry.register("policy_losses", "test_scaled_nll")(ScaledNLL)
    ScaledNLL.instances.clear()
    try:
        result, weights = _train(
            tiny_model, tmp_path / "plugin", settings, prompt_rows, rewards["length"],
            **{"loss.name": "test_scaled_nll", "loss.options": {"scale": 2.0}},
        )
    finally:
        registry.unregister("policy_losses", "test_scaled_nll")
    (loss,) = ScaledNLL.instances
    assert loss.scale == 2.0 and loss.calls >= 1
    assert loss.max_gap < 1e-5  # the backend's log-probs, before any update
    # One micro-batch of 32 sequences (train_micro_batch_size 16 -> 2 micro-batches; summed).
    assert result.metrics["nll"] * 2.0 == pytest.approx(result.metrics["loss"], rel=1e-5)
    assert result.metrics["loss"] > 0  # -2 x mean log-prob of sampled tokens
    assert "clip_fraction" not in result.metrics  # the clipped loss never ran

    _, default_weights = _train(
        tiny_model, tmp_path / "default", settings, prompt_rows, rewards["length"]
    )
    changed = [n for n in weights if not torch.equal(weights[n], default_weights[n])]
    assert changed, "the registered loss trained the same weights as clipped_pg"


def test_an_unknown_loss_name_is_a_config_error_with_a_suggestion(
    tiny_model, tmp_path, settings, rewards, prompt_rows
):
    trainer = GRPOTrainer.from_pretrained(
        tiny_model, **settings["grpo"](tmp_path, **{"loss.name": "clipped_p"})
    )
    with pytest.raises(ConfigError, match="policy loss 'clipped_p' is not registered; did you mean 'clipped_pg'"):
        trainer.fit(dataset=prompt_rows, reward_fn=rewards["length"])
    trainer.close()
