"""Shared pieces of the end-to-end trainer tests: one tiny offline model, toy tasks, settings.

Everything runs on CPU in float32 with fixed seeds. The model is a 1-layer, 64-wide Qwen2 with
the character tokenizer of `nemo_rl_dtensor.testing` (one token per character), built once per
session; each test trains its own copy through `Trainer.from_pretrained(path, **settings)`.

Test modules run under `--import-mode=importlib`, so they cannot import each other or a helper
module: what they share is offered here as fixtures.
"""

from __future__ import annotations

import math
import random
import string
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from nemo_rl.trainers import Callback

TARGET_LENGTH = 3  # characters the GRPO toy task rewards
MAX_NEW_TOKENS = 8


# ------------------------------------------------------------------------------- the model
@pytest.fixture(scope="session", autouse=True)
def one_cpu_thread():
    """Run torch on one thread: these models are tiny, and on a shared 2-core machine two
    spinning intra-op threads made a forward pass ~100x slower than one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 1-layer Qwen2 (hidden 64, 2 heads) and its char tokenizer, saved once."""
    from nemo_rl_dtensor.testing import build_tiny_model

    return build_tiny_model(
        tmp_path_factory.mktemp("tiny-qwen2"),
        arch="qwen2",
        hidden_size=64,
        layers=1,
        heads=2,
        seed=0,
    )


@pytest.fixture(scope="session")
def tokenizer(tiny_model: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


# ------------------------------------------------------------------------------- toy tasks
def length_reward(prompt: str, response: str, **_: Any) -> float:
    """GRPO toy reward: 0 for a response of TARGET_LENGTH characters, less the further away.

    A random model almost never emits its end-of-turn token, so it writes MAX_NEW_TOKENS
    characters; learning to stop early is the one thing it has to find, and it finds it in a few
    steps.
    """
    return -abs(len(response) - TARGET_LENGTH) / MAX_NEW_TOKENS


def parity_reward(prompt: str, response: str, **_: Any) -> float:
    """1 when the response's first character has an even code point: about half of a random
    model's samples, so groups of two often tie (all 0 or all 1), which dynamic sampling drops."""
    return float(bool(response) and ord(response[0]) % 2 == 0)


@pytest.fixture(scope="session")
def rewards() -> dict[str, Callable[..., float]]:
    """The toy rewards by name: `length` (learnable) and `parity` (coin flips, for DAPO)."""
    return {"length": length_reward, "parity": parity_reward}


def _word(rng: random.Random, alphabet: str, low: int = 3, high: int = 5) -> str:
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(low, high)))


@pytest.fixture(scope="session")
def prompt_rows() -> list[dict[str, str]]:
    """64 short distinct GRPO prompts."""
    rng = random.Random(0)
    return [{"prompt": f"say {_word(rng, string.ascii_lowercase)}"} for _ in range(64)]


@pytest.fixture(scope="session")
def copy_task() -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """SFT (train, validation): echo a lowercase word; validation words are never trained on."""
    rng = random.Random(1)
    words = sorted({_word(rng, string.ascii_lowercase) for _ in range(200)})
    rng.shuffle(words)
    rows = [{"prompt": f"echo {w}", "answer": w} for w in words]
    return rows[32:], rows[:32]


@pytest.fixture(scope="session")
def preference_task() -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """DPO (train, validation): prefer a lowercase word over a digit string, fresh strings in
    validation, so accuracy there measures a learned preference, not memorised pairs."""
    rng = random.Random(2)

    def pair(i: int) -> dict[str, str]:
        return {
            "prompt": f"word {i}",
            "chosen": _word(rng, string.ascii_lowercase),
            "rejected": _word(rng, string.digits),
        }

    rows = [pair(i) for i in range(160)]
    return rows[32:], rows[:32]


# ------------------------------------------------------------------------------- settings
def _common(run_dir: Path, seed: int) -> dict[str, Any]:
    return {
        "seed": seed,
        "run_dir": run_dir,
        "max_num_epochs": 100,
        "val_at_end": False,
        "logger.log_dir": str(run_dir),
        "logger.backends": ["jsonl"],
        "checkpointing.enabled": False,
        "checkpointing.checkpoint_dir": str(run_dir / "checkpoints"),
        "policy.precision": "float32",
        "policy.optimizer.weight_decay": 0.0,
    }


def grpo_settings(run_dir: Path, seed: int = 0, **overrides: Any) -> dict[str, Any]:
    """4 prompts x 8 samples of at most MAX_NEW_TOKENS tokens per step, one update per step."""
    return {
        **_common(run_dir, seed),
        "num_prompts_per_step": 4,
        "num_generations_per_prompt": 8,
        "max_num_steps": 2,
        "loss.kl_penalty": 0.0,
        "policy.optimizer.lr": 1e-2,
        "policy.train_micro_batch_size": 16,
        "policy.max_total_sequence_length": 64,
        "generation.max_new_tokens": MAX_NEW_TOKENS,
        **overrides,
    }


def sft_settings(run_dir: Path, seed: int = 0, **overrides: Any) -> dict[str, Any]:
    return {
        **_common(run_dir, seed),
        "batch_size": 16,
        "max_num_steps": 20,
        "policy.optimizer.lr": 1e-2,
        "policy.train_micro_batch_size": 16,
        "policy.max_total_sequence_length": 32,
        **overrides,
    }


def dpo_settings(run_dir: Path, seed: int = 0, **overrides: Any) -> dict[str, Any]:
    return {
        **_common(run_dir, seed),
        "batch_size": 16,
        "max_num_steps": 12,
        "beta": 0.1,
        "policy.optimizer.lr": 3e-3,
        "policy.train_micro_batch_size": 32,
        "policy.max_total_sequence_length": 32,
        **overrides,
    }


@pytest.fixture(scope="session")
def settings() -> dict[str, Callable[..., dict[str, Any]]]:
    """Settings builders `settings[algo](run_dir, seed=0, **dotted_overrides)` for
    `Trainer.from_pretrained(model, **...)`; checkpointing is off unless a test turns it on."""
    return {"grpo": grpo_settings, "sft": sft_settings, "dpo": dpo_settings}


# ------------------------------------------------------------------------------- callbacks
class EventRecorder(Callback):
    """Records every lifecycle event as (name, detail) and keeps the rollout batches."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self.rollouts: list[Any] = []
        self.rollout_metrics: list[dict[str, float]] = []

    def on_fit_start(self, trainer: Any) -> None:
        self.events.append(("fit_start", trainer.state.step))

    def on_fit_end(self, trainer: Any, result: Any) -> None:
        self.events.append(("fit_end", result.steps))

    def on_step_start(self, trainer: Any, step: int) -> None:
        self.events.append(("step_start", step))

    def on_rollout_end(self, trainer: Any, rollout: Any, metrics: dict[str, float]) -> None:
        self.events.append(("rollout_end", trainer.state.step))
        self.rollouts.append(rollout)
        self.rollout_metrics.append(dict(metrics))

    def on_step_end(self, trainer: Any, metrics: dict[str, float]) -> None:
        self.events.append(("step_end", trainer.state.step))

    def on_validation_end(self, trainer: Any, metrics: dict[str, float]) -> None:
        self.events.append(("validation_end", trainer.state.step))

    def on_checkpoint(self, trainer: Any, path: Path) -> None:
        self.events.append(("checkpoint", Path(path).name))


@pytest.fixture
def recorder() -> EventRecorder:
    """A fresh `EventRecorder` callback."""
    return EventRecorder()


# ------------------------------------------------------------------------------- checks
def assert_finite(history: list[dict[str, float]]) -> None:
    """Every logged value of every step is a finite number."""
    assert history, "the run logged no step"
    for step, metrics in enumerate(history, start=1):
        bad = {k: v for k, v in metrics.items() if not math.isfinite(float(v))}
        assert not bad, f"step {step}: non-finite metrics {bad}"


@pytest.fixture(scope="session")
def check_finite() -> Callable[[list[dict[str, float]]], None]:
    return assert_finite
