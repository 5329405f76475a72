"""`reuse_training_logprobs` through the whole GRPO trainer: with one update per rollout, `auto`
skips the prev_logprobs pass (only the reference pass of the KL penalty is left) and trains
exactly as the run that computes prev_logprobs does.

The two runs share the seed, so they sample the same rollouts; the only difference is where
prev_logprobs come from: a separate no-grad pass, or the training forward itself (detached). Both
score the same weights, in passes batched differently, so they agree up to float32 round-off.
"""

from __future__ import annotations

import pytest
from nemo_rl import GRPOTrainer, registry
from nemo_rl.config import ConfigError
from nemo_rl.trainers import Callback

COMPARED = (
    "loss", "pg_loss", "kl_loss", "kl", "grad_norm", "ratio_mean", "clip_fraction",
    "generation_logprob_error", "importance_weight_mean",
)
OVERRIDES = {"loss.kl_penalty": 0.05, "loss.use_importance_sampling_correction": True}


class CountLogprobPasses(Callback):
    """Records the `reference` flag of every `policy.get_logprobs` call (the real method runs)."""

    def __init__(self) -> None:
        self.calls: list[bool] = []
        self.rollouts: list = []

    def on_fit_start(self, trainer) -> None:
        real = trainer.policy.get_logprobs

        def counted(batch, reference=False):
            self.calls.append(reference)
            return real(batch, reference=reference)

        trainer.policy.get_logprobs = counted

    def on_rollout_end(self, trainer, rollout, metrics) -> None:
        self.rollouts.append(rollout)


def _train(tiny_model, run_dir, settings, rows, reward, setting):
    counter = CountLogprobPasses()
    trainer = GRPOTrainer.from_pretrained(
        tiny_model,
        **settings["grpo"](run_dir, max_num_steps=2, reuse_training_logprobs=setting, **OVERRIDES),
    )
    try:
        result = trainer.fit(dataset=rows, reward_fn=reward, callbacks=[counter])
    finally:
        trainer.close()
    return trainer, result, counter


@pytest.fixture(scope="module")
def runs(tiny_model, tmp_path_factory, settings, rewards, prompt_rows):
    return {
        setting: _train(
            tiny_model, tmp_path_factory.mktemp(f"reuse-{setting}"), settings, prompt_rows,
            rewards["length"], setting,
        )
        for setting in ("auto", False)
    }


def test_auto_skips_the_prev_logprobs_pass(runs):
    reused, _, counter = runs["auto"]
    assert reused.reuse_training_logprobs is True
    assert counter.calls == [True, True]  # one reference pass per step, for the KL penalty
    explicit, _, counter = runs[False]
    assert explicit.reuse_training_logprobs is False
    assert counter.calls == [False, True, False, True]


def test_auto_trains_as_the_explicit_pass_does(runs, check_finite):
    (_, reused, reused_counter), (_, explicit, explicit_counter) = runs["auto"], runs[False]
    check_finite(reused.history)
    for step, (a, b) in enumerate(zip(reused_counter.rollouts, explicit_counter.rollouts,
                                      strict=True), start=1):
        assert a["responses"] == b["responses"], f"step {step}: the runs sampled differently"
    for step, (got, want) in enumerate(zip(reused.history, explicit.history, strict=True), start=1):
        for name in COMPARED:
            assert got[name] == pytest.approx(want[name], rel=1e-4, abs=1e-5), (step, name)
    # Step 2 runs on weights that step 1 moved: the same, so both updates were the same.
    assert reused.history[1]["kl"] > 1e-6
    assert reused.history[0]["ratio_mean"] == 1.0  # exactly: the ratio is exp(lp - detach(lp))


def test_true_with_a_loss_that_needs_prev_logprobs_stops_the_run(
    tiny_model, tmp_path, settings, rewards, prompt_rows
):
    class NeedsPrev:
        def __init__(self, config):
            self.config = config

        def __call__(self, logprobs, batch, global_valid_tokens, global_valid_seqs):
            raise AssertionError("never called: the run stops at setup")

    registry.register("policy_losses", "test_needs_prev")(NeedsPrev)
    try:
        trainer = GRPOTrainer.from_pretrained(
            tiny_model,
            **settings["grpo"](tmp_path, max_num_steps=1, reuse_training_logprobs=True,
                               **{"loss.name": "test_needs_prev"}),
        )
        with pytest.raises(ConfigError, match="'test_needs_prev' does not declare"):
            trainer.fit(dataset=prompt_rows, reward_fn=rewards["length"])
        trainer.close()
    finally:
        registry.unregister("policy_losses", "test_needs_prev")
