"""The DPO algorithm: config, loss, data transform and trainer."""

from nemo_rl.algorithms.dpo.config import DPOConfig

__all__ = ["DPOConfig"]
