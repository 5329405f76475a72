"""The SFT algorithm: config, loss, data transform and trainer."""

from nemo_rl.algorithms.sft.config import SFTConfig
from nemo_rl.algorithms.sft.loss import NLLLoss

__all__ = ["NLLLoss", "SFTConfig"]
