"""The DPO algorithm: config, loss, data transform and trainer.

Names load on first use, so reading a config (`DPOConfig`) does not import torch (the loss does).

Example:
    >>> from nemo_rl.algorithms.dpo import DPOConfig
    >>> DPOConfig().algorithm
    'dpo'
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "DPOConfig": "nemo_rl.algorithms.dpo.config",
    "DPOLoss": "nemo_rl.algorithms.dpo.loss",
    "dpo_loss": "nemo_rl.algorithms.dpo.loss",
    "summed_response_logprobs": "nemo_rl.algorithms.dpo.loss",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = ["DPOConfig", "DPOLoss", "dpo_loss", "summed_response_logprobs"]
