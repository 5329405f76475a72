"""The SFT algorithm: config, loss, data transform and trainer."""

from nemo_rl.algorithms.sft.config import SFTConfig

__all__ = ["SFTConfig"]
