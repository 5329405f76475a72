"""Trainer state that a checkpoint must carry for an exact resume: step, data position, RNG.

Example:
    >>> s = TrainerState(step=3)
    >>> TrainerState.from_dict(s.to_dict()).step
    3
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Any

import torch


@dataclass
class TrainerState:
    """Everything besides model/optimizer weights that decides what the next step does."""

    step: int = 0
    consumed_rows: int = 0
    sampler: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainerState:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def seed_everything(seed: int) -> None:
    """Seed python, torch (CPU and CUDA) and numpy if present."""
    random.seed(seed)
    torch.manual_seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % 2**32)
    except ImportError:  # numpy is optional in core
        pass


def capture_rng_state() -> dict[str, Any]:
    """The driver's RNG states (python, torch CPU and CUDA), for a checkpoint."""
    state = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    random.setstate(_as_tuple(state["python"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuple(value: Any) -> Any:
    # random.getstate() nests tuples; a round trip through torch.save keeps them, but be lenient.
    if isinstance(value, list):
        return tuple(_as_tuple(v) for v in value)
    return value
