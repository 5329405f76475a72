"""The DPO algorithm: config, loss, data transform and trainer.

Names load on first use, so reading a config (`DPOConfig`) does not import torch (the loss does).

Example:
    >>> from nemo_rl.algorithms.dpo import DPOConfig
    >>> DPOConfig().algorithm
    'dpo'
"""

from __future__ import annotations

from nemo_rl.lazy_exports import lazy_exports

_LAZY = {
    "DPOConfig": "nemo_rl.algorithms.dpo.config",
    "DPOLoss": "nemo_rl.algorithms.dpo.loss",
    "dpo_loss": "nemo_rl.algorithms.dpo.loss",
    "summed_response_logprobs": "nemo_rl.algorithms.dpo.loss",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


__all__ = ["DPOConfig", "DPOLoss", "dpo_loss", "summed_response_logprobs"]
