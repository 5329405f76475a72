"""Runs start fresh unless asked to resume: a fresh directory per run, `resume=True` continuing
the newest one (with a visible line), a finished run resumed returning its final metrics, and an
explicit run directory with old checkpoints trained from step 0 unless told otherwise."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from nemo_rl import SFTTrainer
from nemo_rl.config import SFTConfig


@pytest.fixture
def in_tmp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _tiny(**extra) -> dict:
    """Two SFT steps with a checkpoint at the end; no paths: the run chooses its directory."""
    return {
        "max_num_steps": 2,
        "batch_size": 16,
        "val_at_end": False,
        "logger.backends": ["jsonl"],
        "policy.precision": "float32",
        "policy.train_micro_batch_size": 16,
        "policy.max_total_sequence_length": 32,
        **extra,
    }


def test_each_run_gets_its_own_directory_and_resume_continues_the_newest(
    tiny_model, copy_task, in_tmp_dir, capsys
):
    train, _ = copy_task
    first = SFTTrainer.from_pretrained(tiny_model, **_tiny()).fit(dataset=train)
    second = SFTTrainer.from_pretrained(tiny_model, **_tiny()).fit(dataset=train)
    assert first.steps == second.steps == 2 and len(second.history) == 2  # trained twice
    assert first.run_dir != second.run_dir
    assert {first.run_dir.parent, second.run_dir.parent} == {Path("runs")}
    assert first.checkpoint_path == first.run_dir / "checkpoints" / "step_2"
    assert "resuming" not in capsys.readouterr().err

    # Asked to resume, a finished run has nothing left: it returns that run's final metrics.
    again = SFTTrainer.from_pretrained(tiny_model, resume=True, **_tiny()).fit(dataset=train)
    assert again.run_dir == second.run_dir and again.steps == 2 and again.history == []
    assert again.metrics and math.isclose(again.metrics["loss"], second.metrics["loss"])
    assert f"resuming {second.run_dir} from step 2" in capsys.readouterr().err

    # ... and one with steps left continues from its checkpoint.
    more = SFTTrainer.from_pretrained(tiny_model, resume=True, **_tiny(max_num_steps=3))
    result = more.fit(dataset=train)
    assert result.run_dir == second.run_dir and result.steps == 3 and len(result.history) == 1


def test_an_explicit_run_dir_is_not_resumed_unless_asked(tiny_model, copy_task, tmp_path, capsys):
    train, _ = copy_task
    settings = _tiny(run_dir=tmp_path / "run")
    SFTTrainer.from_pretrained(tiny_model, **settings).fit(dataset=train)
    again = SFTTrainer.from_pretrained(tiny_model, **settings).fit(dataset=train)
    assert len(again.history) == 2  # started at step 0 again
    assert "already holds checkpoints" in capsys.readouterr().err


def test_a_config_object_is_not_changed_by_the_run(tiny_model, copy_task, in_tmp_dir):
    train, _ = copy_task
    config = SFTConfig(**{"policy": {"model_name": str(tiny_model)}})
    config = SFTConfig.model_validate(
        {**config.model_dump(), "max_num_steps": 1, "batch_size": 16, "val_at_end": False}
    )
    a = SFTTrainer(config).fit(dataset=train)
    b = SFTTrainer(config).fit(dataset=train)
    assert config.run_dir is None and config.checkpointing.checkpoint_dir is None
    assert a.run_dir != b.run_dir
