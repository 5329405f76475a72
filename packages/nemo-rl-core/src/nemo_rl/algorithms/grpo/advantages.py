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


# Elements of one [groups, rows, members] block of the pairwise layout: bounds memory (32 MiB of
# float64) for any batch, while a usual batch (a few thousand samples in groups of 4-64) is one block.
_BLOCK_ELEMENTS = 1 << 22


def _baseline_and_std(
    r: torch.Tensor, valid: torch.Tensor, group: torch.Tensor, leave_one_out: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per sample: the mean, Bessel std and count of the members its baseline uses.

    Statistics are taken over each sample's peers directly (two passes over a [groups, members]
    layout), never by removing the sample from group sums: that subtraction cancels
    catastrophically when the others' spread is small against the sample's own deviation. A
    spread is 0 when the peers are all equal (compared as values, min == max) and the baseline is
    then their common value exactly, because floating point would otherwise leave a ~1e-17
    residue, and dividing by residue + eps turns an ordinary advantage into ~1e6.
    """
    num_groups = int(group.max().item()) + 1
    sizes = torch.bincount(group, minlength=num_groups)
    width = int(sizes.max().item())
    order = torch.argsort(group, stable=True)
    starts = torch.cumsum(sizes, 0) - sizes
    slot = torch.empty_like(group)
    slot[order] = torch.arange(len(group), device=group.device) - starts[group[order]]
    values = torch.zeros(num_groups, width, dtype=r.dtype, device=r.device)
    member = torch.zeros(num_groups, width, dtype=torch.bool, device=r.device)
    values[group, slot] = r
    member[group, slot] = valid

    mean = torch.zeros_like(values)
    std = torch.zeros_like(values)
    count = torch.zeros_like(values)
    rows_per_block = max(1, _BLOCK_ELEMENTS // max(1, num_groups * width))
    cols = torch.arange(width, device=r.device)
    for lo in range(0, width, rows_per_block):
        rows = torch.arange(lo, min(width, lo + rows_per_block), device=r.device)
        peers = member[:, None, :].expand(num_groups, len(rows), width)  # [G, rows, members]
        if leave_one_out:
            peers = peers & (rows[:, None] != cols[None, :])
        n = peers.sum(-1).to(r.dtype)
        x = values[:, None, :].expand_as(peers)
        m = torch.where(peers, x, 0.0).sum(-1) / n.clamp(min=1.0)
        sq = torch.where(peers, (x - m[..., None]) ** 2, 0.0).sum(-1)
        s = torch.where(n >= 2.0, torch.sqrt(sq / (n - 1.0).clamp(min=1.0)), 0.0)
        low = torch.where(peers, x, float("inf")).amin(-1)
        high = torch.where(peers, x, float("-inf")).amax(-1)
        equal = low == high
        mean[:, rows] = torch.where(equal, low, m)
        std[:, rows] = torch.where(equal, 0.0, s)
        count[:, rows] = n
    return mean[group, slot], std[group, slot], count[group, slot]


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
    when `normalize` and s_i > 0, where s_i is exactly 0 whenever those members are all equal (a
    spread of 0 is decided by comparing values, not by a rounded variance). Invalid samples and
    groups with at most one valid member get 0.

    Example:
        >>> import torch
        >>> r = torch.tensor([1.0, 2.0, 4.0])
        >>> compute_grpo_advantages(r, torch.zeros(3, dtype=torch.long), normalize=False)
        tensor([-2.0000, -0.5000,  2.5000])

        One right answer in five: its four peers agree, so it is not divided by their zero spread.

        >>> compute_grpo_advantages(torch.tensor([1.0, 0, 0, 0, 0]), torch.zeros(5, dtype=torch.long))
        tensor([ 1.0000, -0.5000, -0.5000, -0.5000, -0.5000])
    """
    valid = _check_inputs(rewards, group_ids, valid)
    out_dtype = rewards.dtype if rewards.is_floating_point() else torch.get_default_dtype()
    if rewards.numel() == 0:
        return torch.zeros_like(rewards, dtype=out_dtype)
    r = rewards.detach().to(torch.float64)  # float64: std of close rewards without float32 noise
    bad = valid & ~torch.isfinite(r)
    if bad.any():
        raise ValueError(
            f"compute_grpo_advantages: rewards of samples {bad.nonzero().flatten().tolist()[:8]} are "
            "not finite; fix the reward function or mark those samples invalid"
        )
    _, group = torch.unique(group_ids, return_inverse=True)
    baseline, std, peers = _baseline_and_std(r, valid, group, leave_one_out)
    enough = peers >= (1.0 if leave_one_out else 2.0)  # a lone valid member has nothing to compare

    advantages = r - baseline
    if normalize:
        advantages = torch.where(std > 0, advantages / (std + eps), advantages)
    keep = valid & enough
    advantages = torch.where(keep, advantages, torch.zeros_like(advantages))
    return advantages.to(out_dtype)
