"""The GRPO algorithm: config, loss, data transform and trainer."""

from nemo_rl.algorithms.grpo.advantages import compute_grpo_advantages
from nemo_rl.algorithms.grpo.config import (
    GRPOConfig,
    GRPOLossConfig,
    RewardScalingConfig,
    RewardShapingConfig,
)
from nemo_rl.algorithms.grpo.loss import ClippedPGLoss, kl_estimate
from nemo_rl.algorithms.grpo.rewards import (
    dynamic_sampling_keep_mask,
    group_pass_rate,
    overlong_penalty,
    scale_rewards,
)

__all__ = [
    "ClippedPGLoss",
    "GRPOConfig",
    "GRPOLossConfig",
    "RewardScalingConfig",
    "RewardShapingConfig",
    "compute_grpo_advantages",
    "dynamic_sampling_keep_mask",
    "group_pass_rate",
    "kl_estimate",
    "overlong_penalty",
    "scale_rewards",
]
