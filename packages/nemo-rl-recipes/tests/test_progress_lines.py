"""Issue #18 item 1: with output going to a pipe (CI logs, `| tee`, nohup), `nemo-rl train` and
the trainers the quickstart uses print step, rate and ETA lines instead of nothing; the dry run
takes overrides after its option."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from nemo_rl import SFTTrainer


def write_config(tmp_path: Path, model: Path, rows: list[dict[str, str]]) -> Path:
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    config = tmp_path / "run.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "algorithm": "sft",
                "policy": {"model_name": str(model), "max_total_sequence_length": 32},
                "data": {"dataset": str(data)},
                "batch_size": 4,
                "max_num_steps": 20,
                "cluster": {"gpus_per_node": 0, "launcher": "inline"},
                "logger": {"backends": ["jsonl"]},
                "checkpointing": {"enabled": False},
            }
        )
    )
    return config


def run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NEMO_RL_PROGRESS_INTERVAL": "0"}
    return subprocess.run(
        [sys.executable, "-m", "nemo_rl.cli.main", *args],
        capture_output=True, text=True, timeout=600, env=env, cwd=cwd,
    )


def test_train_into_a_pipe_prints_step_rate_and_eta(tmp_path, tiny_model, sum_rows):
    config = write_config(tmp_path, tiny_model, sum_rows)
    done = run_cli(["train", str(config), "max_num_steps=3"], tmp_path)
    assert done.returncode == 0, done.stderr
    steps = [line for line in done.stdout.splitlines() if " step " in f" {line}" and "s/step" in line]
    assert [line.split(" | ")[0].split("INFO")[-1].strip() for line in steps] == [
        "step 1/3 (33%)", "step 2/3 (66%)", "step 3/3 (100%)"
    ]
    assert all("ETA " in line and "loss=" in line for line in steps)
    assert "\r" not in done.stdout + done.stderr  # no carriage-return bars in a log


def test_dry_run_takes_overrides_after_the_option(tmp_path, tiny_model, sum_rows):
    config = write_config(tmp_path, tiny_model, sum_rows)
    done = run_cli(["train", str(config), "--dry-run", "max_num_steps=3"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "steps: 3 (max_num_steps 3," in done.stdout
    assert f"policy.model_name: {tiny_model} (local directory, 1 weight file(s))" in done.stdout
    assert not (tmp_path / "runs").exists()  # a dry run writes nothing


def test_the_trainer_api_prints_progress_lines_without_a_terminal(
    tmp_path, tiny_model, sum_rows, capfd, monkeypatch
):
    # The quickstart trains through this API, so it gets the same lines.
    monkeypatch.setenv("NEMO_RL_PROGRESS_INTERVAL", "0")
    trainer = SFTTrainer.from_pretrained(
        tiny_model, run_dir=tmp_path / "run", batch_size=4, max_num_steps=2,
        **{"policy.max_total_sequence_length": 32, "logger.backends": ["jsonl"],
           "cluster.gpus_per_node": 0, "checkpointing.enabled": False},
    )
    trainer.fit(dataset=sum_rows)
    captured = capfd.readouterr()
    text = captured.out + captured.err
    assert "step 1/2 (50%) | " in text and "step 2/2 (100%) | " in text
    assert "ETA" in text
