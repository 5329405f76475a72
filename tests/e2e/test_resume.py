"""Checkpoint at step 2, resume with a new trainer object, and steps 3-4 match an uninterrupted
run to 1e-5 (float32): weights, optimizer, data position, reference policy and sampling noise are
all restored."""

from __future__ import annotations

import math

from nemo_rl import GRPOTrainer, SFTTrainer

TOLERANCE = 1e-5


def _compared(metrics: dict[str, float]) -> dict[str, float]:
    """The metrics a resumed step must reproduce: all but wall-clock timings."""
    return {k: v for k, v in metrics.items() if not k.startswith("time/")}


def _assert_same_steps(uninterrupted: list[dict], resumed: list[dict]) -> None:
    assert len(uninterrupted) == len(resumed) == 2
    for step, (a, b) in enumerate(zip(uninterrupted, resumed, strict=True), start=3):
        a, b = _compared(a), _compared(b)
        assert a.keys() == b.keys(), f"step {step}: metric names differ"
        diff = {
            k: (a[k], b[k]) for k in a if not math.isclose(a[k], b[k], rel_tol=0, abs_tol=TOLERANCE)
        }
        assert not diff, f"step {step}: resumed run differs from the uninterrupted one: {diff}"


def _run_and_resume(trainer_cls, model, make_settings, run_dir, **fit) -> tuple[list, object]:
    """(history of steps 3-4 of an uninterrupted run, result of a run resumed at step 2)."""
    checkpointing = {"checkpointing.enabled": True, "checkpointing.save_period": 2}

    def trainer(name: str, steps: int, **kwargs):
        return trainer_cls.from_pretrained(
            model, **make_settings(run_dir / name, max_num_steps=steps, **checkpointing), **kwargs
        )

    full = trainer("a", 4).fit(**fit)
    assert full.steps == 4
    assert trainer("b", 2).fit(**fit).checkpoint_path.name == "step_2"
    # A new object on the same run, as after a crash, asked to resume: it must pick up step_2.
    resumed = trainer("b", 4, resume=True).fit(**fit)
    return full.history[2:], resumed


def test_grpo_resume_matches_uninterrupted_run(
    tiny_model, tmp_path, settings, rewards, prompt_rows
):
    # kl_penalty > 0: the resumed trainer must keep the ORIGINAL model as its reference.
    def make(run_dir, **extra):
        return settings["grpo"](run_dir, **{"loss.kl_penalty": 0.05, **extra})

    expected, result = _run_and_resume(
        GRPOTrainer, tiny_model, make, tmp_path, dataset=prompt_rows, reward_fn=rewards["length"]
    )
    got = result.history

    assert result.steps == 4 and result.checkpoint_path.name == "step_4"
    _assert_same_steps(expected, got)
    # Not vacuous: the policy moved away from the reference and sampling changed between steps.
    assert got[-1]["kl"] > 1e-6
    assert expected[0]["reward/mean"] != expected[1]["reward/mean"]


def test_sft_resume_matches_uninterrupted_run(tiny_model, tmp_path, settings, copy_task):
    train, _ = copy_task
    expected, result = _run_and_resume(
        SFTTrainer, tiny_model, settings["sft"], tmp_path, dataset=train
    )
    got = result.history

    assert result.steps == 4
    _assert_same_steps(expected, got)
    assert got[0]["loss"] != got[1]["loss"]


def test_metrics_file_holds_each_step_once_after_a_crash_and_resume(
    tiny_model, tmp_path, settings, copy_task
):
    from nemo_rl.infra import read_metrics
    from nemo_rl.trainers import Callback

    class CrashAfterStep3(Callback):
        def on_step_end(self, trainer, metrics):
            if trainer.state.step == 3:  # logged, not yet checkpointed
                raise KeyboardInterrupt

    def trainer(**kwargs):
        return SFTTrainer.from_pretrained(tiny_model, **settings["sft"](
            tmp_path / "run", max_num_steps=4, **{"checkpointing.enabled": True,
                                                  "checkpointing.save_period": 2}), **kwargs)

    crashed = trainer()
    try:
        crashed.fit(dataset=copy_task[0], callbacks=[CrashAfterStep3()])
    except KeyboardInterrupt:
        pass
    crashed.close()
    assert [r["step"] for r in read_metrics(tmp_path / "run")] == [1, 2, 3]
    result = trainer(resume=True).fit(dataset=copy_task[0])  # steps 3 and 4 run again
    assert result.steps == 4
    assert [r["step"] for r in read_metrics(tmp_path / "run")] == [1, 2, 3, 4]
