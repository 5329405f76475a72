"""The SFT algorithm: config, loss, data transform and trainer.

Names load on first use, so reading a config (`SFTConfig`) does not import torch (the loss does).

Example:
    >>> from nemo_rl.algorithms.sft import SFTConfig
    >>> SFTConfig().algorithm
    'sft'
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "SFTConfig": "nemo_rl.algorithms.sft.config",
    "NLLLoss": "nemo_rl.algorithms.sft.loss",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = ["NLLLoss", "SFTConfig"]
