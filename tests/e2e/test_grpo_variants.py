"""Smoke tests of the GRPO variants through the whole trainer: each runs 1-2 steps with finite
metrics, plus one check that fails if the variant's switch were ignored.

On the first optimizer pass over a rollout the policy is the one that generated it, so every
importance ratio is 1 and the loss has a closed form in the rollout batch (seen through the
`on_rollout_end` callback): that is what most checks below compare against.
"""

from __future__ import annotations

import pytest
import torch
from nemo_rl import GRPOTrainer

ABS = 1e-4  # generation and training score tokens in different passes: float32 round-off


def _run(tiny_model, run_dir, settings, rows, reward, recorder, **overrides):
    trainer = GRPOTrainer.from_pretrained(tiny_model, **settings["grpo"](run_dir, **overrides))
    result = trainer.fit(dataset=rows, reward_fn=reward, callbacks=[recorder])
    return trainer, result


def _valid_mask(batch) -> torch.Tensor:
    return batch["token_mask"] * batch["sample_mask"].unsqueeze(-1)


def _token_level_pg(batch) -> float:
    """-sum(m A) / sum(m): the token-level GRPO loss at ratio 1."""
    m = _valid_mask(batch)
    return float(-(m * batch["advantages"].unsqueeze(-1)).sum() / m.sum())


def _sequence_level_pg(batch) -> float:
    """-sum_i s_i A_i / sum_i s_i: every sequence weighs the same whatever its length."""
    s = batch["sample_mask"]
    return float(-(s * batch["advantages"]).sum() / s.sum())


@pytest.fixture(scope="module")
def two_epoch_grpo(tiny_model, tmp_path_factory, settings, rewards, prompt_rows):
    """One step of plain token-level GRPO with two optimizer passes over the rollout; shared by
    the epochs_per_rollout and GSPO tests (same seed, so the same rollout)."""
    from nemo_rl.trainers import Callback

    class Keep(Callback):
        def on_rollout_end(self, trainer, rollout, metrics):
            self.rollout = rollout

    keep = Keep()
    trainer = GRPOTrainer.from_pretrained(
        tiny_model,
        **settings["grpo"](
            tmp_path_factory.mktemp("grpo-2-epochs"), max_num_steps=1, epochs_per_rollout=2
        ),
    )
    result = trainer.fit(dataset=prompt_rows, reward_fn=rewards["length"], callbacks=[keep])
    return result.history[0], keep.rollout


def test_plain_grpo_first_pass_is_on_policy(
    tiny_model, tmp_path, settings, rewards, prompt_rows, recorder, check_finite
):
    _, result = _run(
        tiny_model, tmp_path, settings, prompt_rows, rewards["length"], recorder, max_num_steps=1
    )
    check_finite(result.history)
    metrics, batch = result.history[0], recorder.rollouts[0]
    assert metrics["ratio_mean"] == pytest.approx(1.0, abs=ABS)
    assert metrics["clip_fraction"] == 0.0
    assert metrics["generation_logprob_error"] < ABS  # generation scored with the same weights
    assert metrics["pg_loss"] == pytest.approx(_token_level_pg(batch), abs=ABS)


def test_epochs_per_rollout_keeps_prev_logprobs_fixed(two_epoch_grpo, check_finite):
    metrics, _ = two_epoch_grpo
    check_finite([metrics])
    # The reported pass is the second: the policy moved after the first, and prev_logprobs must
    # still be the rollout policy's, so the ratios are no longer 1.
    assert abs(metrics["ratio_mean"] - 1.0) > 1e-3


def test_gspo_uses_one_ratio_per_sequence(
    tiny_model, tmp_path, settings, rewards, prompt_rows, recorder, two_epoch_grpo, check_finite
):
    _, result = _run(
        tiny_model,
        tmp_path,
        settings,
        prompt_rows,
        rewards["length"],
        recorder,
        max_num_steps=1,
        epochs_per_rollout=2,
        **{"loss.sequence_level_importance_ratios": True},
    )
    check_finite(result.history)
    grpo_metrics, grpo_rollout = two_epoch_grpo
    assert recorder.rollouts[0]["responses"] == grpo_rollout["responses"]  # same seed, same samples
    # At ratio 1 both losses have the same gradient, so both runs enter the second pass with the
    # same weights. There GSPO's sequence ratio exp(mean_t log r_t) is a geometric mean, below
    # the arithmetic mean of the token ratios that token-level GRPO reports (Jensen).
    assert result.history[0]["ratio_mean"] < grpo_metrics["ratio_mean"] - 1e-6


def test_cispo_weights_logprobs_by_the_clipped_ratio(
    tiny_model, tmp_path, settings, rewards, prompt_rows, recorder, check_finite
):
    _, result = _run(
        tiny_model,
        tmp_path,
        settings,
        prompt_rows,
        rewards["length"],
        recorder,
        max_num_steps=1,
        **{"loss.use_cispo": True},
    )
    check_finite(result.history)
    batch, metrics = recorder.rollouts[0], result.history[0]
    m = _valid_mask(batch)
    # CISPO's surrogate is -A * sg(clip(r)) * log p; at r = 1 it is -A * log p per token.
    expected = float(
        -(m * batch["advantages"].unsqueeze(-1) * batch["generation_logprobs"]).sum() / m.sum()
    )
    assert metrics["pg_loss"] == pytest.approx(expected, abs=1e-3)
    assert abs(expected - _token_level_pg(batch)) > 0.05  # the plain surrogate would not match


def test_sequence_level_loss_weighs_sequences_equally(
    tiny_model, tmp_path, settings, tokenizer, rewards, prompt_rows, recorder, check_finite
):
    # Stopping at any digit gives responses of different lengths, which the two losses weigh
    # differently.
    _, result = _run(
        tiny_model,
        tmp_path,
        settings,
        prompt_rows,
        rewards["length"],
        recorder,
        max_num_steps=1,
        **{
            "loss.token_level_loss": False,
            "generation.stop_token_ids": tokenizer("0123456789")["input_ids"],
        },
    )
    check_finite(result.history)
    batch, metrics = recorder.rollouts[0], result.history[0]
    assert metrics["pg_loss"] == pytest.approx(_sequence_level_pg(batch), abs=ABS)
    assert len(set(batch["response_lengths"].tolist())) > 1
    assert abs(_sequence_level_pg(batch) - _token_level_pg(batch)) > 1e-3


def test_kl_penalty_measures_distance_to_the_initial_policy(
    tiny_model, tmp_path, settings, rewards, prompt_rows, recorder, check_finite
):
    _, result = _run(
        tiny_model,
        tmp_path,
        settings,
        prompt_rows,
        rewards["length"],
        recorder,
        max_num_steps=2,
        **{"loss.kl_penalty": 0.05},
    )
    check_finite(result.history)
    first, second = result.history
    assert first["kl"] == pytest.approx(0.0, abs=1e-6)  # step 1: the policy is the reference
    assert second["kl"] > 1e-4  # step 2: one update away from the frozen reference
    assert second["kl_loss"] == pytest.approx(0.05 * second["kl"], rel=1e-4)


def test_dapo_dynamic_sampling_clip_higher_and_overlong_shaping(
    tiny_model, tmp_path, settings, rewards, prompt_rows, recorder, check_finite
):
    trainer, result = _run(
        tiny_model,
        tmp_path,
        settings,
        prompt_rows,
        rewards["parity"],
        recorder,
        max_num_steps=2,
        num_prompts_per_step=4,
        num_generations_per_prompt=2,
        use_dynamic_sampling=True,
        overlong_filtering=True,
        **{
            "loss.ratio_clip_max": 0.28,
            "reward_shaping.enabled": True,
            "reward_shaping.overlong_buffer_length": 4,
        },
    )
    check_finite(result.history)
    assert trainer.loss_fn.config.ratio_clip_max == 0.28
    for batch, metrics in zip(recorder.rollouts, recorder.rollout_metrics, strict=True):
        assert batch.size == 8
        # Dynamic sampling: no kept group has all-equal rewards (those carry no signal).
        per_group = batch["rewards"].view(4, 2)
        assert bool((per_group[:, 0] != per_group[:, 1]).all()), per_group
        # Overlong filtering: exactly the truncated responses are masked out.
        assert torch.equal(batch["sample_mask"], (~batch["truncated"]).float())
        # Overlong shaping over the last 4 of the 8 allowed tokens: -(L - 4) / 4 from L = 4 on.
        lengths = batch["response_lengths"].float()
        expected = -((lengths - 4).clamp(min=0) / 4).clamp(max=1.0)
        assert metrics["reward/overlong_penalty"] == pytest.approx(float(expected.mean()), abs=1e-6)
        assert metrics["reward/overlong_penalty"] < 0


def test_multi_turn_guess_number_masks_only_generated_tokens(
    tiny_model, tmp_path, settings, tokenizer, recorder, check_finite
):
    from nemo_rl_envs import GuessNumberEnvironment

    rows = [{"prompt": "Guess my number, 0 to 9.", "target": t} for t in range(10)] * 2
    # A random model rarely ends a turn; letting it stop at any digit or letter gives guesses
    # ("...7") and non-answers, so conversations go on for several turns.
    stops = tokenizer("0123456789abcdefghijklmnopqrstuvwxyz")["input_ids"]
    _, result = _run(
        tiny_model,
        tmp_path,
        settings,
        rows,
        GuessNumberEnvironment(max_turns=3),
        recorder,
        max_num_steps=1,
        max_rollout_turns=3,
        **{"generation.stop_token_ids": stops, "policy.max_total_sequence_length": 256},
    )
    check_finite(result.history)
    batch = recorder.rollouts[0]
    assert int(batch["num_turns"].max()) == 3 and result.history[0]["turns/mean"] > 1.5
    for i in range(batch.size):
        n = int(batch["input_lengths"][i])
        ids, mask = batch["input_ids"][i, :n], batch["token_mask"][i, :n]
        runs = _runs_of_ones(mask)
        assistant = [m["content"] for m in batch["messages"][i] if m["role"] == "assistant"]
        observations = [m["content"] for m in batch["messages"][i][2:] if m["role"] == "user"]
        # One masked-in run per turn, holding exactly that turn's generated tokens.
        assert len(runs) == int(batch["num_turns"][i]) == len(assistant)
        for (start, end), text in zip(runs, assistant, strict=True):
            assert tokenizer.decode(ids[start:end], skip_special_tokens=True) == text
        assert runs[0][0] > 0  # the prompt is never trained on
        # Everything else (prompt, observations, chat markers) is masked out and carries no
        # generation log-prob.
        context = tokenizer.decode(ids[mask == 0])
        assert all(obs in context for obs in observations)
        assert bool((batch["generation_logprobs"][i, :n][mask == 0] == 0).all())
        assert int(mask.sum()) == int(batch["response_lengths"][i])


def _runs_of_ones(mask: torch.Tensor) -> list[tuple[int, int]]:
    """[(start, end)] of the maximal runs of 1 in a 0/1 vector."""
    runs, start = [], None
    for t, value in enumerate(mask.tolist() + [0.0]):
        if value and start is None:
            start = t
        elif not value and start is not None:
            runs.append((start, t))
            start = None
    return runs


def test_weighted_reward_components_are_combined_and_logged(
    tiny_model, tmp_path, settings, rewards, prompt_rows, recorder
):
    def length(prompt, response, **_):
        return rewards["length"](prompt, response)

    def parity(prompt, response, **_):
        return rewards["parity"](prompt, response)

    trainer = GRPOTrainer.from_pretrained(tiny_model, **settings["grpo"](tmp_path, max_num_steps=1))
    trainer.fit(
        dataset=prompt_rows,
        reward_fn={"length": (length, 2.0), "parity": (parity, 0.5)},
        callbacks=[recorder],
    )
    batch, metrics = recorder.rollouts[0], recorder.rollout_metrics[0]
    expected = torch.tensor(
        [
            2.0 * length(m[-2]["content"], m[-1]["content"])
            + 0.5 * parity(m[-2]["content"], m[-1]["content"])
            for m in batch["messages"]
        ]
    )
    assert torch.allclose(batch["rewards"], expected)
    # Each component is logged unweighted, beside the weighted total.
    assert metrics["reward/length"] == pytest.approx(
        float(
            expected.new_tensor(
                [length(m[-2]["content"], m[-1]["content"]) for m in batch["messages"]]
            ).mean()
        )
    )
    assert metrics["reward/mean"] == pytest.approx(float(expected.mean()))


def test_dynamic_sampling_gives_up_with_a_clear_error(tiny_model, tmp_path, settings, prompt_rows):
    def constant(prompt, response, **_):  # every group ties: nothing for dynamic sampling to keep
        return 1.0

    trainer = GRPOTrainer.from_pretrained(
        tiny_model,
        **settings["grpo"](
            tmp_path, max_num_steps=1, use_dynamic_sampling=True, dynamic_sampling_max_gen_batches=2
        ),
    )
    with pytest.raises(RuntimeError, match=r"found only 0 of \d+ prompt groups .* after 2 extra"):
        trainer.fit(dataset=prompt_rows, reward_fn=constant)


@pytest.mark.parametrize("score", [0.0, 1.0])
def test_validation_reports_greedy_pass_at_1(tiny_model, tmp_path, settings, prompt_rows, score):
    def reward(prompt, response, **_):
        return score

    trainer = GRPOTrainer.from_pretrained(
        tiny_model, **settings["grpo"](tmp_path, max_num_steps=1, val_at_end=True)
    )
    result = trainer.fit(dataset=prompt_rows, reward_fn=reward, val_dataset=prompt_rows[:4])
    assert result.metrics["val/accuracy"] == score
    assert result.metrics["val/reward/mean"] == score
