"""`nemo-rl train` starts a fresh run directory per run, resumes only with --resume (saying so),
and its dry run prints the resolved cluster and refuses an impossible resource plan."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from nemo_rl.cli.main import main


@pytest.fixture
def sft_config(in_tmp_dir, tiny_model, sum_rows) -> Path:
    """A one-step SFT config that names no directory (every run chooses its own)."""
    data = in_tmp_dir / "train.jsonl"
    data.write_text(
        "".join(f'{{"prompt": "{r["prompt"]}", "answer": "{r["answer"]}"}}\n' for r in sum_rows)
    )
    config = {
        "algorithm": "sft",
        "policy": {"model_name": str(tiny_model), "max_total_sequence_length": 32},
        "max_num_steps": 1,
        "batch_size": 4,
        "logger": {"backends": ["jsonl"]},
        "data": {"dataset": str(data)},
    }
    path = in_tmp_dir / "sft.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _run_dir(out: str) -> str:
    return re.search(r"run directory: (\S+)", out).group(1)


def test_train_twice_trains_twice_and_resume_says_so(sft_config, capsys, restore_logging):
    assert main(["train", str(sft_config)]) == 0
    first = capsys.readouterr().out
    assert main(["train", str(sft_config)]) == 0
    second = capsys.readouterr().out
    assert "finished after 1 steps" in first and "finished after 1 steps" in second
    assert _run_dir(first) != _run_dir(second)
    assert _run_dir(second).startswith("runs/sft-")

    # --resume RUN_DIR continues that run: here there is nothing left, and it says where it is.
    assert main(["train", str(sft_config), "max_num_steps=2", "--resume", _run_dir(first)]) == 0
    resumed = capsys.readouterr().out
    assert f"resuming {_run_dir(first)} from step 1" in resumed
    assert "finished after 2 steps" in resumed
    saved = yaml.safe_load((Path(_run_dir(first)) / "config.yaml").read_text())
    assert saved["run_dir"] == _run_dir(first)  # the config it saved names its own directory


def test_dry_run_prints_the_resolved_cluster_and_the_run_directory(
    sft_config, capsys, restore_logging
):
    assert main(["train", str(sft_config), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"cluster: 1 node\(s\) x \d+ GPU\(s\) \(.*auto-detected\)", out), out
    assert "world size 1" in out and "run directory: runs/sft-" in out
    assert not Path("runs").exists()  # a dry run writes nothing


def test_dry_run_refuses_separate_generation_gpus_on_a_cpu_cluster(
    in_tmp_dir, tiny_model, capsys, restore_logging
):
    config = in_tmp_dir / "grpo.yaml"
    config.write_text(yaml.safe_dump({
        "algorithm": "grpo",
        "policy": {"model_name": str(tiny_model)},
        "environment": "exact_match",
        "data": {"dataset": "unused.jsonl"},  # the plan is checked before any data is read
    }))
    argv = ["train", str(config), "cluster.gpus_per_node=0", "generation.colocated=false",
            "generation.num_gpus=3", "--dry-run"]
    assert main(argv) != 0
    err = capsys.readouterr().err
    assert "generation.num_gpus=3" in err and "cluster.gpus_per_node=0" in err
    assert "generation.num_gpus=0" in err  # the fix
