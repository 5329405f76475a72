"""The SFT algorithm: config, loss, data transform and trainer.

Names load on first use, so reading a config (`SFTConfig`) does not import torch (the loss does).

Example:
    >>> from nemo_rl.algorithms.sft import SFTConfig
    >>> SFTConfig().algorithm
    'sft'
"""

from __future__ import annotations

from nemo_rl.lazy_exports import lazy_exports

_LAZY = {
    "SFTConfig": "nemo_rl.algorithms.sft.config",
    "NLLLoss": "nemo_rl.algorithms.sft.loss",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


__all__ = ["NLLLoss", "SFTConfig"]
