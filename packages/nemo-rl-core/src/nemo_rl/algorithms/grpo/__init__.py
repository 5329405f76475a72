"""The GRPO algorithm: config, loss, data transform and trainer.

Names load on first use, so reading a config (`GRPOConfig`) does not import torch (the loss,
advantages and reward shaping do).

Example:
    >>> from nemo_rl.algorithms.grpo import GRPOConfig
    >>> GRPOConfig().algorithm
    'grpo'
"""

from __future__ import annotations

from nemo_rl.lazy_exports import lazy_exports

_CONFIG = "nemo_rl.algorithms.grpo.config"
_REWARDS = "nemo_rl.algorithms.grpo.rewards"
_LAZY = {
    "compute_grpo_advantages": "nemo_rl.algorithms.grpo.advantages",
    "GRPOConfig": _CONFIG,
    "GRPOLossConfig": _CONFIG,
    "RewardScalingConfig": _CONFIG,
    "RewardShapingConfig": _CONFIG,
    "ClippedPGLoss": "nemo_rl.algorithms.grpo.loss",
    "kl_estimate": "nemo_rl.algorithms.grpo.loss",
    "build_policy_loss": "nemo_rl.algorithms.grpo.policy_losses",
    "dynamic_sampling_keep_mask": _REWARDS,
    "group_pass_rate": _REWARDS,
    "overlong_penalty": _REWARDS,
    "scale_rewards": _REWARDS,
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


__all__ = sorted(_LAZY)
