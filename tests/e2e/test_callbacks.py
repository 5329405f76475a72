"""Callbacks see every lifecycle event, in order, and can stop a run early."""

from __future__ import annotations

import pytest
from nemo_rl import GRPOTrainer, SFTTrainer
from nemo_rl.trainers import Callback


def test_grpo_events_arrive_in_order(
    tiny_model, tmp_path, settings, rewards, prompt_rows, recorder
):
    trainer = GRPOTrainer.from_pretrained(
        tiny_model,
        **settings["grpo"](
            tmp_path,
            max_num_steps=3,
            val_at_start=True,
            val_period=2,
            val_at_end=True,
            val_batch_size=4,
            **{"checkpointing.enabled": True, "checkpointing.save_period": 2},
        ),
    )
    result = trainer.fit(
        dataset=prompt_rows[4:],
        reward_fn=rewards["length"],
        val_dataset=prompt_rows[:4],
        callbacks=[recorder],
    )

    # (event, trainer.state.step when it fired; the checkpoint's directory name)
    assert recorder.events == [
        ("fit_start", 0),
        ("validation_end", 0),  # val_at_start
        ("step_start", 0),
        ("rollout_end", 0),
        ("step_end", 1),
        ("step_start", 1),
        ("rollout_end", 1),
        ("validation_end", 2),
        ("step_end", 2),
        ("checkpoint", "step_2"),  # save_period
        ("step_start", 2),
        ("rollout_end", 2),
        ("validation_end", 3),
        ("step_end", 3),
        ("checkpoint", "step_3"),  # the last step is always saved
        ("fit_end", 3),
    ]
    assert result.stop_reason == "finished"
    # The rollout callback gets the batch the policy trains on, with its advantages.
    assert all("advantages" in batch and batch.size == 32 for batch in recorder.rollouts)
    assert all("reward/mean" in m for m in recorder.rollout_metrics)


class StopAfter(Callback):
    """Requests a stop once `steps` steps are done."""

    def __init__(self, steps: int) -> None:
        self.steps = steps

    def on_step_end(self, trainer, metrics) -> None:
        if trainer.state.step >= self.steps:
            trainer.request_stop(f"stopped after {self.steps} steps")


def test_request_stop_ends_the_run_early(tiny_model, tmp_path, settings, copy_task, recorder):
    train, _ = copy_task
    trainer = SFTTrainer.from_pretrained(
        tiny_model,
        **settings["sft"](
            tmp_path,
            max_num_steps=10,
            **{"checkpointing.enabled": True, "checkpointing.save_period": 5},
        ),
    )
    result = trainer.fit(dataset=train, callbacks=[StopAfter(2), recorder])

    assert result.steps == 2 and len(result.history) == 2
    assert result.stop_reason == "stopped after 2 steps"
    assert [e for e in recorder.events if e[0] == "step_start"] == [
        ("step_start", 0),
        ("step_start", 1),
    ]
    assert recorder.events[-1] == ("fit_end", 2)
    assert "rollout_end" not in {name for name, _ in recorder.events}  # SFT has no rollouts
    # Stopping early is not a crash: no checkpoint was due, so none was written.
    assert result.checkpoint_path is None and ("checkpoint", "step_2") not in recorder.events
    assert trainer.state.consumed_rows == 2 * 16


def test_a_non_callback_is_refused_with_a_clear_error(tiny_model, tmp_path, settings, copy_task):
    train, _ = copy_task
    trainer = SFTTrainer.from_pretrained(tiny_model, **settings["sft"](tmp_path))
    with pytest.raises(TypeError, match="subclass nemo_rl.trainers.Callback"):
        trainer.fit(dataset=train, callbacks=[lambda *args: None])
