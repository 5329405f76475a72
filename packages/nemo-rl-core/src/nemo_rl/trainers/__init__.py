"""The shared training loop (`BaseTrainer`), callbacks and run results.

Names load on first use, so the light helpers here (`nemo_rl.trainers.preflight`) can be used
before torch is imported.

Example:
    >>> from nemo_rl.trainers import FitResult
    >>> FitResult.__name__
    'FitResult'
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "BaseTrainer": "base",
    "Callback": "callbacks",
    "CallbackList": "callbacks",
    "FitResult": "result",
    "TrainerState": "state",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = ["BaseTrainer", "Callback", "CallbackList", "FitResult", "TrainerState"]
