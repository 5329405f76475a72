"""`nemo-rl train CONFIG [overrides] [--debug]`: trains from a file, applies the overrides, and
with --debug logs every phase of a step with its timing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from nemo_rl.cli.main import main

PHASE_DONE = r"{}: done in \d+\.\d{{3}} s"


def write_config(path: Path, algorithm: str, model: Path, settings: dict) -> Path:
    """A config file for `algorithm` from dotted `settings` (nested the way users write YAML)."""
    config: dict = {"algorithm": algorithm, "policy": {"model_name": str(model)}}
    for dotted, value in settings.items():
        *parents, leaf = dotted.split(".")
        node = config
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def grpo_config(tmp_path, tiny_model, run_settings, sum_rows) -> Path:
    """A one-step GRPO config with a registered environment (a CLI run has no reward_fn)."""
    data = tmp_path / "train.jsonl"
    data.write_text(
        "".join(f'{{"prompt": "{r["prompt"]}", "answer": "{r["answer"]}"}}\n' for r in sum_rows)
    )
    settings = {**run_settings(tmp_path, "grpo"), "max_num_steps": 1, "environment": "exact_match"}
    settings["data.dataset"] = str(data)
    return write_config(tmp_path / "grpo.yaml", "grpo", tiny_model, settings)


@pytest.mark.parametrize("argv", [["train", "{cfg}", "--debug"], ["--debug", "train", "{cfg}"]])
def test_debug_logs_every_phase_with_its_timing(argv, grpo_config, capsys, restore_logging):
    code = main([a.format(cfg=grpo_config) for a in argv])
    out = capsys.readouterr().out
    assert code == 0
    for phase in (
        "setup: tokenizer",
        "setup: policy",
        "rollout",
        "logprobs",
        "train",
        "checkpoint",
    ):
        assert re.search(PHASE_DONE.format(re.escape(phase)), out), (
            f"no timing for {phase!r}:\n{out}"
        )
    assert "2 prompts/step x 2 generations/prompt = 4 sequences/step" in out
    assert "finished after 1 steps" in out


def test_train_applies_overrides_and_logs_no_phases_without_debug(
    tmp_path, tiny_model, run_settings, sum_rows, capsys, restore_logging
):
    from transformers import AutoModelForCausalLM

    data = tmp_path / "train.jsonl"
    data.write_text(
        "".join(f'{{"prompt": "{r["prompt"]}", "answer": "{r["answer"]}"}}\n' for r in sum_rows)
    )
    settings = {**run_settings(tmp_path, "sft"), "max_num_steps": 5, "data.dataset": str(data)}
    config = write_config(tmp_path / "sft.yaml", "sft", tiny_model, settings)

    code = main(["train", str(config), "max_num_steps=2", "batch_size=8"])
    out = capsys.readouterr().out
    assert code == 0
    assert "done in" not in out  # phase timings are --debug only
    assert "optimizer batch: all sequences; micro-batch: 4 sequences" in out
    assert "finished after 2 steps (finished)" in out  # the override beat the file's 5 steps
    checkpoint = tmp_path / "ckpt" / "step_2"
    assert f"last checkpoint: {checkpoint}" in out
    assert AutoModelForCausalLM.from_pretrained(checkpoint).config.model_type == "qwen2"
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert (saved["max_num_steps"], saved["batch_size"]) == (2, 8)
