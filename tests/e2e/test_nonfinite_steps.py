"""Steps whose loss is not finite: skipped with one warning each, counted, and the run stops after
`max_nonfinite_steps` of them in a row with an error that says what to try."""

from __future__ import annotations

import logging

import pytest
import torch
from nemo_rl import SFTTrainer
from nemo_rl.algorithms.sft import NLLLoss
from nemo_rl.trainers.callbacks import Callback
from nemo_rl.trainers.nonfinite import NonFiniteTrainingError


class NaNLoss(NLLLoss):
    def __call__(self, logprobs, batch, global_valid_tokens, global_valid_seqs):
        loss, metrics = super().__call__(logprobs, batch, global_valid_tokens, global_valid_seqs)
        return loss * float("nan"), metrics


class PoisonSteps(Callback):
    """Swaps in a NaN loss for the given (0-based) steps."""

    def __init__(self, steps: set[int]) -> None:
        self.steps = steps

    def on_step_start(self, trainer, step: int) -> None:
        trainer.loss_fn = NaNLoss() if step in self.steps else NLLLoss()


def test_an_isolated_nonfinite_step_is_skipped_warned_and_counted(
    tiny_model, tmp_path, settings, copy_task, caplog
):
    trainer = SFTTrainer.from_pretrained(tiny_model, **settings["sft"](tmp_path, max_num_steps=4))
    with caplog.at_level(logging.WARNING, logger="nemo_rl"):
        result = trainer.fit(dataset=copy_task[0], callbacks=[PoisonSteps({1})])
    assert result.steps == 4
    skipped = [m["nonfinite/skipped_updates"] for m in result.history]
    assert skipped == [0.0, 1.0, 0.0, 0.0]
    assert result.metrics["nonfinite/skipped_steps"] == 1.0
    warnings = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].startswith("step 2: 1 optimizer update skipped")
    assert torch.isfinite(torch.tensor(result.metrics["loss"]))
    trainer.close()


def test_three_nonfinite_steps_in_a_row_stop_the_run(tiny_model, tmp_path, settings, copy_task):
    trainer = SFTTrainer.from_pretrained(tiny_model, **settings["sft"](tmp_path, max_num_steps=10))
    with pytest.raises(NonFiniteTrainingError, match=r"3 steps in a row \(the last: step 4\)"):
        trainer.fit(dataset=copy_task[0], callbacks=[PoisonSteps({1, 2, 3})])
    assert trainer.state.step == 4
    trainer.close()
