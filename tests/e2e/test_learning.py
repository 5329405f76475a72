"""Each algorithm improves its own objective on a toy task with a random tiny model (CPU, fixed
seeds): GRPO raises the mean reward, SFT lowers the held-out loss, DPO raises held-out
preference accuracy from chance."""

from __future__ import annotations

from nemo_rl import DPOTrainer, GRPOTrainer, SFTTrainer


def test_grpo_raises_mean_reward(
    tiny_model, tmp_path, settings, rewards, prompt_rows, check_finite
):
    trainer = GRPOTrainer.from_pretrained(
        tiny_model, **settings["grpo"](tmp_path, max_num_steps=12)
    )
    result = trainer.fit(dataset=prompt_rows, reward_fn=rewards["length"])

    history = result.history
    check_finite(history)
    assert result.steps == 12 and len(history) == 12
    curve = [m["reward/mean"] for m in history]
    first, last = sum(curve[:2]) / 2, sum(curve[-2:]) / 2
    # The random model writes ~8 characters (reward ~ -0.55); it learns to stop near 3 (seeds 0-3
    # all gain more than 0.25 by step 12).
    assert last > first + 0.15, f"mean reward did not rise: {curve}"
    lengths = [m["response_length/mean"] for m in history]
    assert sum(lengths[-2:]) < sum(lengths[:2]), f"responses did not get shorter: {lengths}"


def test_sft_lowers_held_out_loss(tiny_model, tmp_path, settings, copy_task, check_finite):
    train, val = copy_task
    trainer = SFTTrainer.from_pretrained(
        tiny_model, **settings["sft"](tmp_path, val_at_start=True, val_at_end=True)
    )
    result = trainer.fit(dataset=train, val_dataset=val)

    check_finite(result.history)
    start = _first_logged(tmp_path, "val/loss")
    end = result.metrics["val/loss"]
    # A random model over 262 tokens starts near ln(262) = 5.6 nats per token.
    assert 4.5 < start < 7.0
    assert end < 0.7 * start, f"held-out loss {start:.3f} -> {end:.3f}"
    train_losses = [m["loss"] for m in result.history]
    assert train_losses[-1] < train_losses[0]


def test_dpo_raises_held_out_preference_accuracy(
    tiny_model, tmp_path, settings, preference_task, check_finite
):
    train, val = preference_task
    trainer = DPOTrainer.from_pretrained(
        tiny_model, **settings["dpo"](tmp_path, val_at_start=True, val_at_end=True)
    )
    result = trainer.fit(dataset=train, val_dataset=val)

    check_finite(result.history)
    start = _first_logged(tmp_path, "val/accuracy")
    end = result.metrics["val/accuracy"]
    # At the start the policy is its own reference: no implicit reward margin, no accuracy.
    assert start <= 0.5
    assert end >= 0.9, f"held-out preference accuracy {start:.2f} -> {end:.2f}"
    assert result.metrics["val/loss"] < _first_logged(tmp_path, "val/loss")


def _first_logged(run_dir, key: str) -> float:
    """The first value of `key` in the run's metrics.jsonl (the val_at_start record)."""
    from nemo_rl.infra import read_metrics

    values = [r[key] for r in read_metrics(run_dir / "metrics.jsonl") if key in r]
    assert values, f"{key} was never logged in {run_dir}"
    return float(values[0])
