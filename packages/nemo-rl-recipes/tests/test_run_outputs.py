"""One place for a run's outputs: started from an empty working directory, a run writes nothing
outside `runs/<name>/` (config, metrics, curves, result, every logger's files, checkpoints), names
that directory in its first lines and lists what it left there in its last."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
import yaml
from nemo_rl import GRPOTrainer
from nemo_rl.cli.main import main

# A logger backend runs here only when its package is installed (they are optional extras).
LOGGERS = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow"}


def _installed(name: str) -> bool:
    return importlib.util.find_spec(LOGGERS[name]) is not None


def _only_the_run_dir_is_new(cwd: Path, before: set[str]) -> Path:
    """The one new entry of `cwd` is `runs/`, holding one run directory; returns it."""
    assert {p.name for p in cwd.iterdir()} - before == {"runs"}, sorted(cwd.iterdir())
    runs = list((cwd / "runs").iterdir())
    assert len(runs) == 1 and runs[0].is_dir(), runs
    return runs[0]


@pytest.mark.parametrize("extra", [None, *LOGGERS])
def test_nemo_rl_train_writes_only_into_its_run_directory(
    extra, in_tmp_dir, tiny_model, sum_rows, capsys, restore_logging, monkeypatch
):
    if extra is not None and not _installed(extra):
        pytest.skip(f"{extra} is not installed (nemo-rl-core[{extra}])")
    monkeypatch.setenv("WANDB_MODE", "offline")  # wandb, if it runs: no account, no network
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (in_tmp_dir / "train.jsonl").write_text(
        "".join(f'{{"prompt": "{r["prompt"]}", "answer": "{r["answer"]}"}}\n' for r in sum_rows)
    )
    (in_tmp_dir / "sft.yaml").write_text(yaml.safe_dump({
        "algorithm": "sft",
        "policy": {"model_name": str(tiny_model), "max_total_sequence_length": 32},
        "max_num_steps": 2,
        "batch_size": 4,
        "logger": {"backends": ["console", "jsonl", *([extra] if extra else [])]},
        "checkpointing": {"save_period": 1},
        "data": {"dataset": "train.jsonl"},
    }))
    before = {p.name for p in in_tmp_dir.iterdir()}

    assert main(["train", "sft.yaml"]) == 0

    run_dir = _only_the_run_dir_is_new(in_tmp_dir, before)
    name = f"runs/{run_dir.name}"
    inside = {p.name for p in run_dir.iterdir()}
    assert {"config.yaml", "metrics.jsonl", "curves.png", "result.json", "checkpoints"} <= inside
    assert {p.name for p in (run_dir / "checkpoints").iterdir()} == {"step_1", "step_2"}
    if extra is not None:  # each logger's own files are in the run directory too
        assert {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow.db"}[extra] in inside
    out = capsys.readouterr().out
    assert re.search(rf"^.*run directory: {name}$", out, re.M), out  # at start
    last = re.search(rf"outputs in {name}: (.+); last checkpoint: {name}/checkpoints/step_2$", out, re.M)
    assert last, out  # at the end
    assert "config.yaml, metrics.jsonl, curves.png, result.json" in last.group(1)


def test_a_grpo_script_writes_only_into_its_run_directory(in_tmp_dir, quick_stop_model, capsys):
    before = {p.name for p in in_tmp_dir.iterdir()}
    rows = [{"prompt": f"{i}+1=", "answer": str(i + 1)} for i in range(8)]
    trainer = GRPOTrainer.from_pretrained(
        quick_stop_model, num_prompts_per_step=2, num_generations_per_prompt=2, max_num_steps=1,
        **{"logger.backends": ["jsonl"], "policy.max_total_sequence_length": 32},
    )
    result = trainer.fit(dataset=rows, reward_fn=lambda prompt, response, **row: 0.0)

    run_dir = _only_the_run_dir_is_new(in_tmp_dir, before)
    assert result.run_dir == Path("runs", run_dir.name)
    assert result.checkpoint_path == result.run_dir / "checkpoints" / "step_1"
    err = capsys.readouterr().err
    assert f"run directory: {result.run_dir}" in err
    assert f"outputs in {result.run_dir}: config.yaml, metrics.jsonl" in err
