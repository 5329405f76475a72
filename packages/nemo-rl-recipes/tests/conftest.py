"""Shared fixtures of the acceptance tests: tiny offline models, toy rows, small run settings.

Every run here is real (real trainers, backends, tokenizers and checkpoints) and kept tiny so
the whole set stays within a few minutes on a 2-core CPU.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import torch
from nemo_rl_dtensor.testing import build_tiny_model


def build_quick_stop_model(path: Path) -> Path:
    """A tiny Llama whose every response is the end-of-turn token, as a model would answer that
    has learned to stop: rollouts are one token long, so GRPO runs with the default
    `generation.max_new_tokens` (512) take seconds on a CPU instead of minutes.

    How: the attention and MLP outputs are zeroed, so the last hidden state is the token's
    embedding; embedding dim 0 is a constant 1 for every token, and only the EOS row of the
    output head reads dim 0, with a weight large enough that EOS wins by hundreds of logits.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    build_tiny_model(path, arch="llama", hidden_size=64, layers=1, heads=2)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    eos = AutoTokenizer.from_pretrained(path).eos_token_id
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        model.model.embed_tokens.weight[:, 0] = 1.0
        model.lm_head.weight[:, 0] = 0.0
        model.lm_head.weight[eos, 0] = 50.0
    model.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 1-layer Qwen2 (hidden 64) with the char tokenizer, saved once per session."""
    return build_tiny_model(
        tmp_path_factory.mktemp("tiny-qwen2"), arch="qwen2", hidden_size=64, layers=1, heads=2
    )


@pytest.fixture(scope="session")
def quick_stop_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`build_quick_stop_model` saved once per session."""
    return build_quick_stop_model(tmp_path_factory.mktemp("quick-stop"))


def make_sum_rows(n: int = 100) -> list[dict[str, str]]:
    """`n` prompt/answer rows "a+b=" -> "a+b" (a, b digits), in a fixed order."""
    return [{"prompt": f"{i // 10}+{i % 10}=", "answer": str(i // 10 + i % 10)} for i in range(n)]


def make_run_settings(run_root: Path, algorithm: str) -> dict[str, Any]:
    """Dotted overrides keeping a run tiny (short sequences, 2 steps) and its files under
    `run_root` (run directory `run_root/run`, checkpoints `run_root/ckpt`)."""
    settings: dict[str, Any] = {
        "max_num_steps": 2,
        "logger.backends": ["jsonl"],
        "logger.log_dir": str(run_root / "run"),
        "checkpointing.checkpoint_dir": str(run_root / "ckpt"),
        "policy.max_total_sequence_length": 32,
        "policy.optimizer.lr": 1e-3,
    }
    if algorithm == "grpo":
        settings.update(
            {
                "num_prompts_per_step": 2,
                "num_generations_per_prompt": 2,
                "generation.max_new_tokens": 4,
            }
        )
    else:
        settings["batch_size"] = 4
    return settings


@pytest.fixture
def sum_rows() -> list[dict[str, str]]:
    """100 prompt/answer rows "a+b=" -> "a+b" (a, b digits), in a fixed order."""
    return make_sum_rows()


@pytest.fixture
def preference_rows() -> list[dict[str, str]]:
    """100 DPO rows: the right sum is chosen, the sum plus one rejected."""
    return [
        {**row, "chosen": row["answer"], "rejected": str(int(row["answer"]) + 1)}
        for row in make_sum_rows()
    ]


@pytest.fixture
def run_settings():
    """`make_run_settings(run_root, algorithm)`: tiny-run overrides writing under `run_root`."""
    return make_run_settings


@pytest.fixture
def in_tmp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the test from an empty temporary directory (runs write relative paths there)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def restore_logging():
    """`nemo-rl train` reconfigures the root logger (force=True); put it back after the test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
