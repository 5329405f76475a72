"""Ctrl-C, for real: a SIGINT sent to a running `nemo-rl train` or `nemo-rl quickstart` process.

The run must exit 130 without a traceback, name its last usable checkpoint (which must load as an
HF model) and, for `train`, the exact command that resumes it (which must resume it); the
quickstart interrupted during GRPO must name its finished SFT model (which must load).
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

CLI = [sys.executable, "-m", "nemo_rl.cli.main"]


def _interrupt_when(process: subprocess.Popen, ready, what: str, timeout_s: float = 240.0):
    """Send SIGINT once `ready()` holds; return (exit code, the run's output)."""
    deadline = time.monotonic() + timeout_s
    while not ready():
        if process.poll() is not None:
            pytest.fail(f"the run ended (exit {process.returncode}) before {what}:\n{_output(process)}")
        if time.monotonic() > deadline:
            process.kill()
            process.wait()
            pytest.fail(f"no {what} after {timeout_s:.0f} s:\n{_output(process)}")
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    process.wait(timeout=120)
    return process.returncode, _output(process)


def _start(args: list[str], cwd: Path) -> subprocess.Popen:
    # Output goes to a file, not a pipe: a pipe nobody reads fills up during a long run and
    # blocks the run's next print (the test then waits for a step that never comes).
    env = {**os.environ, "NEMO_RL_PROGRESS_INTERVAL": "1"}
    log_path = cwd / "run-output.txt"
    with open(log_path, "w") as log:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen([*CLI, *args], cwd=cwd, env=env, text=True, stdout=log,
                                   stderr=subprocess.STDOUT)
    process.log_path = log_path  # type: ignore[attr-defined]
    return process


def _output(process: subprocess.Popen) -> str:
    return process.log_path.read_text()  # type: ignore[attr-defined]


def _latest_step(cwd: Path) -> int:
    """The highest complete checkpoint step of the run in `cwd` (keep_top_k prunes older ones,
    so a given step may come and go between two polls)."""
    steps = [int(p.name.split("_")[1]) for p in cwd.glob("runs/sft-*/checkpoints/step_*")
             if p.name.split("_")[1].isdigit()]
    return max(steps, default=0)


def _assert_loads(model_dir: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    assert sum(p.numel() for p in model.parameters()) > 0
    assert AutoTokenizer.from_pretrained(model_dir)("1+2=")["input_ids"]


def test_ctrl_c_names_the_last_checkpoint_and_the_command_that_resumes(
    tmp_path, tiny_model, sum_rows
):
    data = tmp_path / "train.jsonl"
    data.write_text("".join(f'{{"prompt": "{r["prompt"]}", "answer": "{r["answer"]}"}}\n'
                            for r in sum_rows))
    (tmp_path / "sft.yaml").write_text(yaml.safe_dump({
        "algorithm": "sft",
        "policy": {"model_name": str(tiny_model), "max_total_sequence_length": 32},
        "max_num_steps": 100000,  # runs until interrupted
        "max_num_epochs": 100000,
        "batch_size": 4,
        "logger": {"backends": ["jsonl"]},
        "checkpointing": {"save_period": 2, "keep_top_k": 1},
        "data": {"dataset": str(data)},
    }))
    process = _start(["train", "sft.yaml", "seed=3"], tmp_path)
    code, output = _interrupt_when(
        process, lambda: _latest_step(tmp_path) >= 4, "a checkpoint at step 4 or later"
    )

    assert code == 130, output
    assert "Traceback" not in output, output
    found = re.search(
        r"interrupted during step (\d+) of 100000; last usable checkpoint: (\S+) \(step (\d+), "
        r"an HF model directory\); resume with (.+)$", output, re.M,
    )
    assert found, output
    at, checkpoint, step = int(found.group(1)), Path(found.group(2)), int(found.group(3))
    assert 4 <= step < at and checkpoint.name == f"step_{step}"
    run_dir = checkpoint.parent.parent
    assert found.group(4) == f"nemo-rl train sft.yaml seed=3 --resume {run_dir}"
    _assert_loads(tmp_path / checkpoint)
    result = yaml.safe_load((tmp_path / run_dir / "result.json").read_text())
    assert result["stop_reason"] == "interrupted" and result["checkpoint_path"] == str(checkpoint)

    # The printed command resumes that run (told to stop one step later).
    command = shlex.split(found.group(4))
    assert command[0] == "nemo-rl"
    done = subprocess.run([*CLI, *command[1:], f"max_num_steps={step + 1}"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"resuming {run_dir} from step {step}" in done.stdout
    assert f"finished after {step + 1} steps" in done.stdout


def test_quickstart_interrupted_during_grpo_keeps_its_sft_model(tmp_path):
    process = _start(["quickstart", "--workdir", "qs", "--sft-steps", "3", "--grpo-steps", "1000"],
                     tmp_path)
    # config.yaml is written when the GRPO run has set up; its first step follows.
    code, output = _interrupt_when(
        process, lambda: (tmp_path / "qs/grpo/config.yaml").is_file(), "the GRPO phase"
    )

    assert code == 130, output
    assert "Traceback" not in output, output
    assert "error: interrupted" not in output  # the lines above said what happened
    found = re.search(r"the SFT model is complete and usable in (\S+) ", output)
    assert found, output
    assert found.group(1) == "qs/sft/checkpoints/step_3"
    _assert_loads(tmp_path / found.group(1))
