"""Reward post-processing for GRPO: linear scaling, DAPO's overlong penalty, group filters.

All functions are pure: tensors in, new tensors out.

Example:
    >>> import torch
    >>> from nemo_rl.algorithms.grpo import overlong_penalty
    >>> overlong_penalty(torch.tensor([90, 110, 200]), max_response_length=128,
    ...                  buffer_length=32, penalty=1.0)
    tensor([ 0.0000, -0.4375, -1.0000])
"""

from __future__ import annotations

import torch

from nemo_rl.algorithms.grpo.config import RewardScalingConfig, RewardShapingConfig


def scale_rewards(rewards: torch.Tensor, config: RewardScalingConfig) -> torch.Tensor:
    """Map rewards linearly from [source_min, source_max] to [target_min, target_max], clipped.

    Returns the rewards unchanged when `config.enabled` is False.

    Example:
        >>> import torch
        >>> from nemo_rl.algorithms.grpo.config import RewardScalingConfig
        >>> cfg = RewardScalingConfig(enabled=True, source_min=0, source_max=10,
        ...                           target_min=-1, target_max=1)
        >>> scale_rewards(torch.tensor([0.0, 5.0, 12.0]), cfg)
        tensor([-1.,  0.,  1.])
    """
    if not config.enabled:
        return rewards
    if config.source_max == config.source_min:
        raise ValueError(
            f"reward_scaling.source_min and reward_scaling.source_max are both "
            f"{config.source_min}: the source range is empty, so no linear map exists; set "
            "source_max above source_min (for example 0 and 1)"
        )
    slope = (config.target_max - config.target_min) / (config.source_max - config.source_min)
    scaled = config.target_min + (rewards.to(torch.get_default_dtype()) - config.source_min) * slope
    low = min(config.target_min, config.target_max)
    high = max(config.target_min, config.target_max)
    return scaled.clamp(min=low, max=high)


def overlong_penalty(
    lengths: torch.Tensor, max_response_length: int, buffer_length: int, penalty: float
) -> torch.Tensor:
    """DAPO's soft overlong punishment, a reward term <= 0 for each response length.

    0 when length <= max_response_length - buffer_length; inside the buffer it falls linearly,
    -(length - (max_response_length - buffer_length)) / buffer_length * penalty, and it stays at
    -penalty from max_response_length on (DAPO, arXiv:2503.14476, eq. 13, scaled by `penalty`).

    Example:
        >>> import torch
        >>> overlong_penalty(torch.tensor([4, 6, 9]), max_response_length=8, buffer_length=4,
        ...                  penalty=0.5)
        tensor([ 0.0000, -0.2500, -0.5000])
    """
    if buffer_length <= 0:
        raise ValueError(
            f"overlong_penalty: buffer_length must be positive (got {buffer_length}); set "
            "reward_shaping.overlong_buffer_length to the number of tokens over which the penalty "
            "ramps up, e.g. 128"
        )
    if buffer_length > max_response_length:
        raise ValueError(
            f"overlong_penalty: buffer_length ({buffer_length}) exceeds max_response_length "
            f"({max_response_length}); the penalty would start before any token is generated. "
            "Lower reward_shaping.overlong_buffer_length or raise max_response_length"
        )
    if penalty < 0:
        raise ValueError(
            f"overlong_penalty: penalty must be >= 0 (got {penalty}); it is the largest reward "
            "subtracted, so pass its magnitude"
        )
    expected = max_response_length - buffer_length
    excess = (lengths.to(torch.get_default_dtype()) - expected).clamp(min=0.0, max=buffer_length)
    # 0 - x rather than -x, so that unpenalised lengths give 0.0 and not -0.0.
    return 0.0 - excess * (penalty / buffer_length)


def _group_index(rewards: torch.Tensor, group_ids: torch.Tensor, caller: str) -> torch.Tensor:
    """Dense group index in [0, num_groups) for each sample, after shape checks."""
    if rewards.dim() != 1 or group_ids.shape != rewards.shape:
        raise ValueError(
            f"{caller}: rewards and group_ids must both be 1-D of the same length (got "
            f"{tuple(rewards.shape)} and {tuple(group_ids.shape)}); pass one reward and one "
            "group id per sample"
        )
    if group_ids.is_floating_point():
        raise TypeError(
            f"{caller}: group_ids must be integers (got {group_ids.dtype}); use the prompt index, "
            "e.g. torch.arange(P).repeat_interleave(G)"
        )
    return torch.unique(group_ids, return_inverse=True)[1]


def _group_min_max(rewards: torch.Tensor, group: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    num_groups = int(group.max().item()) + 1
    r = rewards.to(torch.float64)
    lo = torch.full((num_groups,), float("inf"), dtype=r.dtype, device=r.device)
    hi = torch.full((num_groups,), float("-inf"), dtype=r.dtype, device=r.device)
    lo = lo.scatter_reduce(0, group, r, reduce="amin")
    hi = hi.scatter_reduce(0, group, r, reduce="amax")
    return lo, hi


def dynamic_sampling_keep_mask(rewards: torch.Tensor, group_ids: torch.Tensor) -> torch.Tensor:
    """DAPO dynamic sampling: True for the samples of groups whose rewards are not all equal.

    A group with a reward std of 0 (all equal, or a single member) gives every sample a zero
    advantage, hence no gradient; such groups are dropped and refilled by the trainer.

    Example:
        >>> import torch
        >>> dynamic_sampling_keep_mask(torch.tensor([1.0, 1.0, 0.0, 1.0]), torch.tensor([0, 0, 1, 1]))
        tensor([False, False,  True,  True])
    """
    group = _group_index(rewards, group_ids, "dynamic_sampling_keep_mask")
    if rewards.numel() == 0:
        return torch.zeros_like(rewards, dtype=torch.bool)
    # Comparing min and max is exact, where a computed std of equal floats may not be 0.
    lo, hi = _group_min_max(rewards, group)
    return (hi > lo)[group]


def group_pass_rate(rewards: torch.Tensor, group_ids: torch.Tensor, threshold: float) -> float:
    """Fraction of groups with at least one reward >= threshold: pass@k for groups of size k.

    Example:
        >>> import torch
        >>> group_pass_rate(torch.tensor([0.0, 1.0, 0.0, 0.0]), torch.tensor([0, 0, 1, 1]), 1.0)
        0.5
    """
    group = _group_index(rewards, group_ids, "group_pass_rate")
    if rewards.numel() == 0:
        raise ValueError(
            "group_pass_rate: no samples given; the pass rate of zero groups is undefined"
        )
    _, hi = _group_min_max(rewards, group)
    return (hi >= threshold).double().mean().item()


def shape_rewards(
    rewards: torch.Tensor,
    response_lengths: torch.Tensor,
    shaping: RewardShapingConfig,
    scaling: RewardScalingConfig,
    max_new_tokens: int,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The rewards GRPO trains on: the overlong penalty added (if enabled), then scaling.

    Returns (rewards, penalty); penalty is None when shaping is off.

    Example:
        >>> from nemo_rl.algorithms.grpo.config import RewardScalingConfig, RewardShapingConfig
        >>> shaping = RewardShapingConfig(enabled=True, overlong_buffer_length=2, max_response_length=4)
        >>> r, p = shape_rewards(torch.tensor([1.0, 1.0]), torch.tensor([2, 4]), shaping,
        ...                      RewardScalingConfig(), max_new_tokens=4)
        >>> r.tolist(), p.tolist()
        ([1.0, 0.0], [0.0, -1.0])
    """
    penalty = None
    if shaping.enabled:
        max_len = shaping.max_response_length or max_new_tokens
        penalty = overlong_penalty(
            response_lengths, max_len, shaping.overlong_buffer_length, shaping.overlong_buffer_penalty
        )
        rewards = rewards + penalty
    if scaling.enabled:
        rewards = scale_rewards(rewards, scaling)
    return rewards, penalty
