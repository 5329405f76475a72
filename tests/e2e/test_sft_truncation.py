"""SFT rows that truncation leaves without an answer token are counted every step and warned
about once, and the other rows still train."""

from __future__ import annotations

import logging
import math

from nemo_rl import SFTTrainer


def test_rows_cut_before_their_answer_are_counted_and_warned_once(
    tiny_model, tmp_path, settings, caplog
):
    short = [{"prompt": f"echo {w}", "answer": w} for w in ("ab", "cd", "ef", "gh")] * 2
    long = [{"prompt": "echo " + "x" * 60, "answer": "xx"}] * 8
    trainer = SFTTrainer.from_pretrained(
        tiny_model, **settings["sft"](tmp_path, max_num_steps=3, batch_size=16, **{"data.shuffle": False})
    )
    with caplog.at_level(logging.WARNING, logger="nemo_rl"):
        result = trainer.fit(dataset=short + long)
    trainer.close()
    assert [m["data/rows_without_answer"] for m in result.history] == [8.0, 8.0, 8.0]
    assert all(m["data/truncated_rows"] == 8.0 for m in result.history)
    warnings = [r.getMessage() for r in caplog.records if "no answer token" in r.getMessage()]
    assert len(warnings) == 1 and "8 of 16 rows" in warnings[0], warnings
    assert "policy.max_total_sequence_length=32" in warnings[0]
    assert all(math.isfinite(m["loss"]) and m["nonfinite/skipped_updates"] == 0 for m in result.history)
