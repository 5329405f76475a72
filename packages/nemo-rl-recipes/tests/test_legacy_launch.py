"""End to end: NeMo RL's launch command lines (`--config OLD.yaml` + Hydra-style overrides) train
with nemo-rl through `python -m nemo_rl.compat.run_sft` / `run_grpo`, in a subprocess, on CPU.

The legacy files are unchanged copies of NeMo RL's examples; the overrides (legacy keys) point
them at a tiny offline model, a local JSONL and a temporary directory.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

LEGACY_DIR = Path(__file__).resolve().parents[2] / "nemo-rl-core" / "tests" / "data" / "legacy_configs"
TIMEOUT_S = 240


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    from nemo_rl_dtensor.testing import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("model"), arch="qwen2", hidden_size=32,
                            layers=1, heads=2)


def _launch(script: str, config: Path, overrides: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run(
        [sys.executable, "-m", f"nemo_rl.compat.{script}", "--config", str(config), *overrides],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S,
    )


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _run_overrides(tmp_path: Path, model: Path) -> list[str]:
    """Legacy-key overrides every run shares: tiny model, CPU, short sequences, dirs under tmp."""
    return [
        f"policy.model_name={model}",
        "policy.precision=float32",
        "policy.max_total_sequence_length=64",
        "cluster.gpus_per_node=0",
        f"checkpointing.checkpoint_dir={tmp_path / 'run'}",  # becomes the run's one folder
        "checkpointing.save_period=1",
        f"logger.log_dir={tmp_path / 'logs'}",  # NeMo RL's parent of exp_N folders: dropped
        "logger.wandb_enabled=false",
        "logger.tensorboard_enabled=false",
    ]


def _assert_trained(result: subprocess.CompletedProcess, tmp_path: Path, steps: int) -> list[dict]:
    assert result.returncode == 0, result.stderr[-3000:]
    assert "DEPRECATED: python -m nemo_rl.compat.run_" in result.stderr
    assert "nemo-rl train" in result.stderr and "nemo-rl config migrate" in result.stderr
    assert "legacy keys renamed" in result.stderr
    checkpoint = tmp_path / "run" / "checkpoints" / f"step_{steps}"
    assert (checkpoint / "model.safetensors").is_file(), sorted(tmp_path.rglob("*"))
    assert f"last checkpoint: {checkpoint}" in result.stdout
    assert not (tmp_path / "logs").exists()  # everything the run wrote is in its one folder
    metrics = tmp_path / "run" / "metrics.jsonl"
    return [json.loads(line) for line in metrics.read_text().splitlines()]


def test_run_sft_trains_a_legacy_sft_config(tmp_path, tiny_model):
    config = shutil.copy(LEGACY_DIR / "sft.yaml", tmp_path / "sft.yaml")
    data = _write_jsonl(tmp_path / "train.jsonl",
                        [{"prompt": f"{i}+1=", "answer": str(i + 1)} for i in range(8)])
    result = _launch("run_sft", config, [
        *_run_overrides(tmp_path, tiny_model),
        f"data.train.dataset_name={data}",
        "~data.validation",  # Hydra-style delete, as NeMo RL's scripts took it
        "sft.max_num_steps=2",
        "sft.val_at_start=false",
        "policy.train_global_batch_size=4",
        "policy.train_micro_batch_size=2",
    ], tmp_path)
    records = _assert_trained(result, tmp_path, steps=2)
    assert [r["step"] for r in records if "loss" in r] == [1, 2]


def test_run_grpo_trains_a_legacy_math_config_with_its_math_environment(tmp_path, tiny_model):
    config = shutil.copy(LEGACY_DIR / "grpo_math_1B.yaml", tmp_path / "grpo_math_1B.yaml")
    data = _write_jsonl(tmp_path / "math.jsonl", [
        {"problem": f"What is {i} + 1?", "expected_answer": str(i + 1)} for i in range(8)])
    result = _launch("run_grpo", config, [
        *_run_overrides(tmp_path, tiny_model),
        f"data.train.dataset_name={data}",
        "+data.train.input_key=problem",
        "+data.train.output_key=expected_answer",
        "grpo.max_num_steps=1",
        "grpo.num_prompts_per_step=2",
        "grpo.num_generations_per_prompt=2",
        "grpo.val_period=0",
        "policy.train_global_batch_size=4",
        "policy.train_micro_batch_size=4",
        "policy.generation.backend=hf",  # vLLM needs a GPU
        "policy.generation.max_new_tokens=8",
    ], tmp_path)
    records = _assert_trained(result, tmp_path, steps=1)
    # data.default.env_name: math became `environment: math`: its reward component was logged.
    assert any("reward/math_reward" in r for r in records)


def test_the_wrong_script_fails_with_the_right_one_named(tmp_path):
    config = shutil.copy(LEGACY_DIR / "sft.yaml", tmp_path / "sft.yaml")
    result = _launch("run_dpo", config, ["sft.max_num_steps=1"], tmp_path)
    assert result.returncode == 2
    assert "error: run_dpo got a sft config; use run_sft" in result.stderr
    assert not (tmp_path / "results").exists()  # nothing was trained or written


def _squad_copy(root: Path, n: int = 8) -> Path:
    """A local copy of SQuAD in its own row format, one JSONL file per split."""
    root.mkdir()
    for split in ("train", "validation"):
        _write_jsonl(root / f"{split}.jsonl", [
            {"id": f"{split}{i}", "title": "sums", "context": f"{i} plus one is {i + 1}.",
             "question": f"What is {i} plus one?",
             "answers": {"text": [str(i + 1)], "answer_start": [len(f"{i} plus one is ")]}}
            for i in range(n)])
    return root


def test_run_sft_trains_the_shipped_sft_yaml_with_only_a_local_copy_of_squad(tmp_path, tiny_model):
    """NeMo RL's sft.yaml names squad for both splits: a data path is the one data override (the
    others make the run tiny and CPU-only)."""
    config = shutil.copy(LEGACY_DIR / "sft.yaml", tmp_path / "sft.yaml")
    squad = _squad_copy(tmp_path / "squad")
    result = _launch("run_sft", config, [
        *_run_overrides(tmp_path, tiny_model),
        f"+data.train.data_path={squad}",
        "sft.max_num_steps=2",
        "policy.train_global_batch_size=4",
        "policy.train_micro_batch_size=2",
    ], tmp_path)
    records = _assert_trained(result, tmp_path, steps=2)
    assert [r["step"] for r in records if "loss" in r] == [1, 2]
    assert any("val/loss" in r for r in records)  # validation read the same copy's validation split
