"""A run on the chat data users already have: SFT on `{"messages": [...]}` rows with no column
settings trains on the assistant turns, records the detected setting in its config.yaml, and a
prompt setting that contradicts the rows fails up front naming `data.messages_key`."""

from __future__ import annotations

import pytest
import yaml
from nemo_rl import SFTTrainer
from nemo_rl.data import ColumnError


def _as_messages(rows):
    return [
        {"messages": [{"role": "user", "content": r["prompt"]},
                      {"role": "assistant", "content": r["answer"]}]}
        for r in rows
    ]


def test_sft_on_messages_rows_without_column_settings(tiny_model, tmp_path, settings, copy_task,
                                                      check_finite):
    train, val = (_as_messages(rows) for rows in copy_task)
    trainer = SFTTrainer.from_pretrained(
        tiny_model, **settings["sft"](tmp_path, max_num_steps=4, val_at_start=True, val_at_end=True)
    )
    result = trainer.fit(dataset=train, val_dataset=val)

    check_finite(result.history)
    assert result.steps == 4
    assert trainer.config.data.messages_key == "messages"
    written = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert written["data"]["messages_key"] == "messages"
    losses = [m["loss"] for m in result.history]
    assert losses[-1] < losses[0], f"training loss did not fall: {losses}"


def test_a_prompt_setting_on_messages_rows_names_messages_key(tiny_model, tmp_path, settings,
                                                              copy_task):
    train = _as_messages(copy_task[0])
    trainer = SFTTrainer.from_pretrained(
        tiny_model, **settings["sft"](tmp_path, **{"data.prompt_key": "question"})
    )
    with pytest.raises(ColumnError, match=r"set data\.messages_key=messages"):
        trainer.fit(dataset=train)
    assert not (tmp_path / "config.yaml").exists()  # failed before the run wrote anything
