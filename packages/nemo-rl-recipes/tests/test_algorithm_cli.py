"""`nemo-rl sft|grpo|dpo --model M --dataset D ...` (issue #18, item 7): each trains a couple of
steps on the tiny offline model with no config file, prints a config `nemo-rl train` reads back to
the same config, and refuses bad input with one line naming the flag."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from nemo_rl.cli.main import main
from nemo_rl.config import load_config

COMMON = ["--steps", "2", "--lr", "1e-3", "logger.backends=[jsonl]", "policy.max_total_sequence_length=32",
          "checkpointing.save_period=1"]


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _assert_trained(out: str, run_dir: Path, steps: int = 2) -> list[dict]:
    assert f"finished after {steps} steps" in out, out
    assert f"run directory: {run_dir}" in out
    assert (run_dir / "checkpoints" / f"step_{steps}" / "model.safetensors").is_file()
    return [r for r in _metrics(run_dir) if "loss" in r]


@pytest.mark.parametrize(("algorithm", "rows_fixture"), [("sft", "sum_rows"), ("dpo", "preference_rows")])
def test_sft_and_dpo_train_from_one_line(
    algorithm, rows_fixture, in_tmp_dir, tiny_model, request, capsys, restore_logging
):
    data = _jsonl(in_tmp_dir / "rows.jsonl", request.getfixturevalue(rows_fixture))
    argv = [algorithm, "--model", str(tiny_model), "--dataset", str(data), "--batch-size", "4",
            "--output-dir", "out", *COMMON]
    assert main(argv) == 0
    records = _assert_trained(capsys.readouterr().out, Path("out"))
    assert [r["step"] for r in records] == [1, 2]
    saved = yaml.safe_load((Path("out") / "config.yaml").read_text())
    assert (saved["algorithm"], saved["policy"]["optimizer"]["lr"], saved["batch_size"]) == (algorithm, 1e-3, 4)


def test_grpo_trains_with_a_reward_module_from_the_working_directory(
    in_tmp_dir, quick_stop_model, sum_rows, capsys, restore_logging
):
    data = _jsonl(in_tmp_dir / "sums.jsonl", sum_rows)
    # TRL's form: batched, called by keyword, a dataset column by name
    (in_tmp_dir / "my_rewards.py").write_text(
        "def right_sum(completions, answer, **kwargs):\n"
        "    return [float(a in c) + 0.5 for c, a in zip(completions, answer)]\n"
    )
    argv = ["grpo", "--model", str(quick_stop_model), "--dataset", str(data),
            "--reward", "my_rewards:right_sum", "--prompts-per-step", "2", "--num-generations", "2",
            "--output-dir", "out", "generation.max_new_tokens=4", *COMMON]
    assert main(argv) == 0
    records = _assert_trained(capsys.readouterr().out, Path("out"))
    # every response is the end-of-turn token (no digits): each scores exactly the 0.5 floor
    assert [r["reward/right_sum"] for r in records] == [0.5, 0.5]


def test_print_config_is_a_file_train_reads_back_to_the_same_config(in_tmp_dir, capsys):
    argv = ["grpo", "--model", "some/model", "--dataset", "rows.jsonl", "--reward", "math",
            "--steps", "7", "--lr", "2e-6", "--num-generations", "4", "--output-dir", "out",
            "seed=3", "--print-config"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert yaml.safe_load(printed) == {
        "algorithm": "grpo", "seed": 3, "run_dir": "out", "max_num_steps": 7,
        "policy": {"model_name": "some/model", "optimizer": {"lr": 2e-6}},
        "data": {"dataset": "rows.jsonl"}, "num_generations_per_prompt": 4, "environment": "math",
    }
    Path("run.yaml").write_text(printed)
    expected = load_config({"algorithm": "grpo"}, [
        "policy.model_name=some/model", "data.dataset=rows.jsonl", "environment=math",
        "max_num_steps=7", "policy.optimizer.lr=2e-6", "num_generations_per_prompt=4",
        "run_dir=out", "seed=3"])
    assert load_config("run.yaml") == expected


def test_a_template_is_the_starting_point_when_named(in_tmp_dir, capsys):
    assert main(["grpo", "--template", "grpo-math-1gpu", "--model", "m", "--print-config"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    template = load_config(Path(__import__("nemo_rl_recipes.templates", fromlist=["x"])
                                .template_path("grpo-math-1gpu")), ["policy.model_name=m"])
    assert load_config(printed) == template


def test_dry_run_checks_and_trains_nothing(in_tmp_dir, tiny_model, sum_rows, capsys, restore_logging):
    data = _jsonl(in_tmp_dir / "sums.jsonl", sum_rows)
    assert main(["sft", "--model", str(tiny_model), "--dataset", str(data), "--dry-run"]) == 0
    assert "dry run: OK (nothing was trained)" in capsys.readouterr().out
    assert not Path("runs").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["grpo", "--model", "m", "--dataset", "d.jsonl"], "nemo-rl grpo needs a reward: --reward"),
        (["sft", "--model", "m"], "nemo-rl sft needs training rows: --dataset"),
        (["sft", "--model", "m", "--dataset", "d.jsonl", "--steps", "0"],
         "max_num_steps = 0: Input should be greater than 0; expected int > 0 (set by --steps)"),
        (["dpo", "--model", "m", "--dataset", "d.jsonl", "--lr", "1e-5", "policy.optimizer.lr=2e-5"],
         "policy.optimizer.lr is set twice, by --lr 1e-05 and by the override "
         "'policy.optimizer.lr=2e-5'; keep one"),
        (["sft", "--model", "m", "--dataset", "d.jsonl", "learning_rate=1e-5"],
         "unknown key 'learning_rate': TRL's name for 'policy.optimizer.lr'"),
        (["sft", "--template", "grpo-math-1gpu"], "template 'grpo-math-1gpu' is a grpo template; run "
         "`nemo-rl grpo --template grpo-math-1gpu`"),
        (["sft", "--template", "sft-chatt"], "did you mean"),
        (["grpo", "--model", "m", "--dataset", "d.jsonl", "--num_generations", "4"],
         "--num_generations is TRL's name for 'num_generations_per_prompt': write "
         "num_generations_per_prompt=VALUE"),
    ],
)
def test_bad_input_is_one_line_naming_the_fix(in_tmp_dir, argv, message, capsys):
    assert main(argv) == 2  # each fails before any data, model or directory is touched
    err = capsys.readouterr().err
    assert message in " ".join(err.split()), err


def test_a_reward_nemo_rl_cannot_call_fails_before_the_model_loads(in_tmp_dir, capsys, restore_logging):
    (in_tmp_dir / "trl_rewards.py").write_text(
        "def needs_ids(completions, completion_ids, **kwargs):\n    return [0.0] * len(completions)\n")
    _jsonl(in_tmp_dir / "d.jsonl", [{"prompt": "1+1=", "answer": "2"}])
    argv = ["grpo", "--model", str(in_tmp_dir / "no-such-model"), "--dataset", "d.jsonl",
            "--reward", "trl_rewards:needs_ids"]
    assert main(argv) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "environment: trl_rewards:needs_ids: reward function 'needs_ids' requires TRL's completion_ids" in err
    assert not Path("runs").exists()


def test_a_reward_module_that_is_not_there_is_named(in_tmp_dir, capsys):
    _jsonl(in_tmp_dir / "d.jsonl", [{"prompt": "1+1=", "answer": "2"}])
    argv = ["grpo", "--model", "m", "--dataset", "d.jsonl", "--reward", "rewards.py:score"]
    assert main(argv) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "environment 'rewards.py:score': cannot import module 'rewards.py'" in err
    assert "write the module's name, rewards:score, not its file name" in err
