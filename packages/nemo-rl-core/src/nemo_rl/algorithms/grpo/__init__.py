"""The GRPO algorithm: config, loss, data transform and trainer."""

from nemo_rl.algorithms.grpo.config import GRPOConfig, GRPOLossConfig

__all__ = ["GRPOConfig", "GRPOLossConfig"]
