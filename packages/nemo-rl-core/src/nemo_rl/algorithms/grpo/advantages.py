"""GRPO advantages: each sample's reward compared with the other samples of its prompt group.

Example:
    >>> import torch
    >>> from nemo_rl.algorithms.grpo import compute_grpo_advantages
    >>> compute_grpo_advantages(torch.tensor([1.0, 0.0, 3.0, 3.0]), torch.tensor([7, 7, 2, 2]),
    ...                         leave_one_out=False, normalize=False)
    tensor([ 0.5000, -0.5000,  0.0000,  0.0000])
"""

from __future__ import annotations

import torch


def _check_inputs(
    rewards: torch.Tensor, group_ids: torch.Tensor, valid: torch.Tensor | None
) -> torch.Tensor:
    """Validate shapes and dtypes; return the valid mask as a bool tensor."""
    if rewards.dim() != 1:
        raise ValueError(
            f"compute_grpo_advantages: rewards must be 1-D [B] (got shape {tuple(rewards.shape)}); "
            "flatten them to one reward per sample"
        )
    if group_ids.shape != rewards.shape:
        raise ValueError(
            f"compute_grpo_advantages: group_ids has shape {tuple(group_ids.shape)} but rewards has "
            f"{tuple(rewards.shape)}; pass one group id per sample"
        )
    if group_ids.is_floating_point() or group_ids.is_complex():
        raise TypeError(
            f"compute_grpo_advantages: group_ids must be integers (got {group_ids.dtype}); "
            "use the prompt index, e.g. torch.arange(P).repeat_interleave(G)"
        )
    if valid is None:
        return torch.ones_like(rewards, dtype=torch.bool)
    if valid.shape != rewards.shape:
        raise ValueError(
            f"compute_grpo_advantages: valid has shape {tuple(valid.shape)} but rewards has "
            f"{tuple(rewards.shape)}; pass one flag per sample (or valid=None)"
        )
    return valid.to(device=rewards.device, dtype=torch.bool)


def compute_grpo_advantages(
    rewards: torch.Tensor,
    group_ids: torch.Tensor,
    valid: torch.Tensor | None = None,
    leave_one_out: bool = True,
    normalize: bool = True,
    eps: float = 1e-6,
) -> torch.Tensor:
    """Group-relative advantages A_i = (r_i - b_i) / (s_i + eps), all tensors of shape [B].

    A group is the set of valid samples sharing a group id (ids may be any integers in any order).
    With `leave_one_out`, the baseline b_i and the Bessel-corrected std s_i of sample i come from
    the OTHER valid members of its group; otherwise from all of them. The division only happens
    when `normalize` and s_i > 0. Invalid samples and groups with at most one valid member get 0.

    Example:
        >>> import torch
        >>> r = torch.tensor([1.0, 2.0, 4.0])
        >>> compute_grpo_advantages(r, torch.zeros(3, dtype=torch.long), normalize=False)
        tensor([-2.0000, -0.5000,  2.5000])
    """
    valid = _check_inputs(rewards, group_ids, valid)
    out_dtype = rewards.dtype if rewards.is_floating_point() else torch.get_default_dtype()
    if rewards.numel() == 0:
        return torch.zeros_like(rewards, dtype=out_dtype)
    # float64 so that groups of identical rewards give a spread of exactly ~0, not float32 noise
    # that eps would then amplify into a visible advantage.
    r = rewards.detach().to(torch.float64)
    w = valid.to(torch.float64)
    _, group = torch.unique(group_ids, return_inverse=True)
    num_groups = int(group.max().item()) + 1

    def group_sum(x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(num_groups, dtype=x.dtype, device=x.device).index_add_(0, group, x)

    n = group_sum(w)[group]  # valid members of each sample's group
    mean = group_sum(w * r)[group] / n.clamp(min=1.0)
    centered = r - mean
    sq_dev = group_sum(w * centered * centered)[group]  # sum of squared deviations (two-pass)

    if leave_one_out:
        # Removing x from a group of n with mean mu: the others' mean is mu - (x - mu) / (n - 1)
        # and their squared deviations sum to M2 - (x - mu)^2 * n / (n - 1).
        others = n - 1.0
        baseline = mean - centered / others.clamp(min=1.0)
        others_sq_dev = (sq_dev - centered * centered * n / others.clamp(min=1.0)).clamp(min=0.0)
        std = torch.sqrt(others_sq_dev / (others - 1.0).clamp(min=1.0))
        std = torch.where(others >= 2.0, std, torch.zeros_like(std))
    else:
        baseline = mean
        std = torch.sqrt(sq_dev / (n - 1.0).clamp(min=1.0))
        std = torch.where(n >= 2.0, std, torch.zeros_like(std))

    advantages = r - baseline
    if normalize:
        advantages = torch.where(std > 0, advantages / (std + eps), advantages)
    keep = valid & (n >= 2.0)
    advantages = torch.where(keep, advantages, torch.zeros_like(advantages))
    return advantages.to(out_dtype)
