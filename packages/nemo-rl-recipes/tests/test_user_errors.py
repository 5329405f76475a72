"""Common user mistakes give one clear error: from the CLI one line on stderr and exit code 2 (no
traceback); from the API one exception whose message names the cause and the fix.

Covered: a dataset path that does not exist, a missing column, a reward function that raises
(training goes on only with on_reward_error="zero") and a reward that returns NaN.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from pathlib import Path

import nemo_rl
import pytest
import yaml
from nemo_rl import registry
from nemo_rl.cli.main import main
from nemo_rl.data import ColumnError
from nemo_rl.data.sources import DatasetSourceError
from nemo_rl.environments.reward_errors import RewardFunctionError

PROGRESS_BAR = re.compile(r"\| *\d+/\d+ \[")
BAD_PROMPT = "0+1="  # row 1 of sum_rows; with shuffle off it is in the first step


def write_sft_config(tmp_path: Path, model: Path, dataset: str) -> Path:
    config = {
        "algorithm": "sft",
        "max_num_steps": 1,
        "batch_size": 2,
        "policy": {"model_name": str(model), "max_total_sequence_length": 32},
        "logger": {"backends": ["jsonl"], "log_dir": str(tmp_path / "run")},
        "checkpointing": {"checkpoint_dir": str(tmp_path / "ckpt")},
        "data": {"dataset": dataset},
    }
    path = tmp_path / "sft.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def cli_error(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run `nemo-rl ARGS`, check it failed the clear way, and return its one error line."""
    code = main(args)
    out = capsys.readouterr()
    assert code == 2
    lines = [line for line in out.err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, out.err
    # Besides it, stderr holds at most transformers' weight-loading progress bar.
    assert all(PROGRESS_BAR.search(line) for line in lines if line not in errors), out.err
    assert "Traceback" not in out.err + out.out
    return errors[0]


# ------------------------------------------------------------------ a dataset path that is wrong
def test_bad_dataset_path_from_the_cli(tmp_path, tiny_model, in_tmp_dir, capsys, restore_logging):
    config = write_sft_config(tmp_path, tiny_model, "data/trian.jsonl")
    line = cli_error(["train", str(config)], capsys)
    assert (
        line
        == f"error: dataset file 'data/trian.jsonl' not found (cwd: {in_tmp_dir}): check the path"
    )
    assert not (tmp_path / "ckpt").exists()


def test_bad_dataset_path_from_the_console_script(tmp_path, tiny_model):
    """The installed entry point, in a fresh process: exit code 2 and a single stderr line."""
    config = write_sft_config(tmp_path, tiny_model, str(tmp_path / "missing.jsonl"))
    done = subprocess.run(
        [sys.executable, "-m", "nemo_rl.cli.main", "train", str(config), "--dry-run"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 2
    assert [line for line in done.stderr.splitlines() if line.strip()] == [
        f"error: dataset file '{tmp_path / 'missing.jsonl'}' not found (cwd: {tmp_path}): check the path"
    ]


def test_bad_dataset_path_from_the_api(tiny_model, tmp_path, run_settings):
    with pytest.raises(
        DatasetSourceError, match=r"dataset file 'nope/train\.jsonl' not found .*check the path"
    ):
        nemo_rl.train("sft", tiny_model, "nope/train.jsonl", **run_settings(tmp_path, "sft"))


# ---------------------------------------------------------------------------- a missing column
def test_missing_column_from_the_cli(tmp_path, tiny_model, in_tmp_dir, capsys, restore_logging):
    data = tmp_path / "qa.jsonl"
    data.write_text(
        "".join(json.dumps({"question": f"{i}+1=", "answer": str(i + 1)}) + "\n" for i in range(8))
    )
    line = cli_error(
        ["train", str(write_sft_config(tmp_path, tiny_model, str(data))), "--dry-run"], capsys
    )
    assert line == (
        "error: column 'prompt' not found in 'qa.jsonl'; columns present: question, answer; "
        "set data.prompt_key=question"
    )


def test_missing_column_from_the_api(tiny_model, tmp_path, run_settings, preference_rows):
    rows = [
        {"prompt": r["prompt"], "better": r["chosen"], "rejected": r["rejected"]}
        for r in preference_rows
    ]
    with pytest.raises(ColumnError) as err:
        nemo_rl.train("dpo", tiny_model, rows, **run_settings(tmp_path, "dpo"))
    message = str(err.value)
    assert "'chosen' not found" in message
    assert "columns present: prompt, better, rejected" in message
    assert "set data.chosen_key" in message


# ------------------------------------------------------------------- a reward function that raises
def reward_failing_on_one_prompt(prompt, response, answer, **row):
    if prompt == BAD_PROMPT:
        raise KeyError("no parser for this prompt")
    return 1.0


def grpo_settings(tmp_path: Path, run_settings, **extra) -> dict:
    return {**run_settings(tmp_path, "grpo"), "data.shuffle": False, **extra}


def test_reward_that_raises_stops_training_and_names_the_sample(
    tiny_model, tmp_path, run_settings, sum_rows
):
    with pytest.raises(RewardFunctionError) as err:
        nemo_rl.train(
            "grpo",
            tiny_model,
            sum_rows,
            reward_fn=reward_failing_on_one_prompt,
            **grpo_settings(tmp_path, run_settings),
        )
    message = str(err.value)
    # Rows 0 and 1 times 2 generations: the bad prompt's first sample is sample 2 of the step.
    assert "reward function 'reward_failing_on_one_prompt' raised KeyError" in message
    assert f"sample 2 (prompt '{BAD_PROMPT}'" in message
    assert 'on_reward_error="zero"' in message
    assert err.value.sample_index == 2
    assert not (tmp_path / "ckpt").exists()  # stopped in step 1: nothing was saved


def test_reward_that_raises_scores_zero_and_training_goes_on_with_on_reward_error_zero(
    tiny_model, tmp_path, run_settings, sum_rows, caplog
):
    settings = grpo_settings(tmp_path, run_settings, on_reward_error="zero")
    with caplog.at_level(logging.WARNING, logger="nemo_rl.environments"):
        result = nemo_rl.train(
            "grpo", tiny_model, sum_rows, reward_fn=reward_failing_on_one_prompt, **settings
        )

    assert result.steps == 2 and result.checkpoint_path == tmp_path / "ckpt" / "step_2"
    first, second = result.history
    # Step 1: the bad prompt's 2 samples failed and scored 0, the other 2 scored 1.
    assert first["reward_errors"] == 2.0 and first["reward/mean"] == pytest.approx(0.5)
    assert second["reward_errors"] == 0.0 and second["reward/mean"] == pytest.approx(1.0)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(
        "2 reward call(s) failed" in w and f"sample 2 (prompt '{BAD_PROMPT}'" in w for w in warnings
    )


# ------------------------------------------------------------------------ a reward returning NaN
def reward_nan_on_one_prompt(prompt, response, answer, **row):
    return float("nan") if prompt == BAD_PROMPT else 1.0


def test_nan_reward_stops_training_and_names_the_sample(
    tiny_model, tmp_path, run_settings, sum_rows
):
    with pytest.raises(RewardFunctionError) as err:
        nemo_rl.train(
            "grpo",
            tiny_model,
            sum_rows,
            reward_fn=reward_nan_on_one_prompt,
            **grpo_settings(tmp_path, run_settings),
        )
    message = str(err.value)
    assert (
        f"reward function 'reward_nan_on_one_prompt' returned nan for sample 2 (prompt '{BAD_PROMPT}'"
        in message
    )
    assert "return a finite float" in message and 'on_reward_error="zero"' in message


def test_nan_reward_scores_zero_with_on_reward_error_zero(
    tiny_model, tmp_path, run_settings, sum_rows
):
    settings = grpo_settings(tmp_path, run_settings, on_reward_error="zero")
    result = nemo_rl.train(
        "grpo", tiny_model, sum_rows, reward_fn=reward_nan_on_one_prompt, **settings
    )
    assert result.steps == 2
    assert [m["reward_errors"] for m in result.history] == [2.0, 0.0]
    assert [m["reward/mean"] for m in result.history] == pytest.approx([0.5, 1.0])
    assert all(m["loss"] == m["loss"] for m in result.history)  # no NaN reached the loss


def test_nan_reward_from_the_cli(
    tmp_path, tiny_model, sum_rows, in_tmp_dir, capsys, restore_logging
):
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in sum_rows))
    registry.register("environments", "nan_on_one_prompt")(reward_nan_on_one_prompt)
    config = {
        "algorithm": "grpo",
        "max_num_steps": 1,
        "num_prompts_per_step": 2,
        "num_generations_per_prompt": 2,
        "environment": "nan_on_one_prompt",
        "policy": {"model_name": str(tiny_model), "max_total_sequence_length": 32},
        "generation": {"max_new_tokens": 4},
        "logger": {"backends": ["jsonl"]},
        "data": {"dataset": str(data), "shuffle": False},
    }
    path = tmp_path / "grpo.yaml"
    path.write_text(yaml.safe_dump(config))
    try:
        line = cli_error(["train", str(path)], capsys)
    finally:
        registry.unregister("environments", "nan_on_one_prompt")
    assert "returned nan for sample 2" in line and 'on_reward_error="zero"' in line


# ------------------------------------------------------------- fewer rows than one step needs
def test_dataset_smaller_than_one_step(tmp_path, tiny_model, in_tmp_dir, capsys, restore_logging):
    data = tmp_path / "one_row.jsonl"
    data.write_text(json.dumps({"prompt": "1+1=", "answer": "2"}) + "\n")
    config = write_sft_config(tmp_path, tiny_model, str(data))
    for extra in ([], ["--dry-run"]):
        error = cli_error(["train", str(config), *extra], capsys)
        assert "1 rows, fewer than one sft step consumes (2)" in error
        assert "batch_size" in error
    assert not (tmp_path / "run").exists()  # nothing written before the data check
