"""Advantage estimators: how a GRPO-family run turns a rollout's rewards into advantages.

An estimator is any callable taking `AdvantageInputs` and returning advantages of shape [B]
(one per sequence) or [B, T] (per token); the config's `advantage_estimator` names it, and it is
looked up in the `advantage_estimators` plugin group, so a package adds one with an entry point
(`[project.entry-points."nemo_rl.advantage_estimators"] myest = "pkg.module:fn"`) or a script with
`@nemo_rl.registry.register("advantage_estimators", "myest")`. Shipped:

- `grpo`: group-relative, optionally leave-one-out and std-normalised (`compute_grpo_advantages`).
- `rloo`: REINFORCE leave-one-out: reward minus the mean of the other samples of the prompt.
- `reinforce_plus_plus`: REINFORCE++ (baseline variant with `minus_baseline`): reward minus the
  prompt's mean, then whitened over all valid response tokens of the batch.

Example:
    >>> import torch
    >>> from nemo_rl.algorithms.grpo import GRPOConfig
    >>> inputs = AdvantageInputs(rewards=torch.tensor([1.0, 0.0, 0.0]),
    ...                          group_ids=torch.zeros(3, dtype=torch.long),
    ...                          valid=torch.ones(3, dtype=torch.bool), token_mask=torch.ones(3, 2),
    ...                          config=GRPOConfig())
    >>> rloo_advantages(inputs)  # 1 - 0, 0 - 0.5, 0 - 0.5
    tensor([ 1.0000, -0.5000, -0.5000])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from nemo_rl.algorithms.grpo.advantages import compute_grpo_advantages

if TYPE_CHECKING:
    from nemo_rl.algorithms.grpo.config import GRPOConfig


@dataclass(frozen=True)
class AdvantageInputs:
    """What an estimator may read: shaped rewards [B] (after scaling and the overlong penalty),
    prompt group ids [B], the samples that train (`valid` [B], bool), the response token mask
    [B, T], the named reward components [B] and the run's config.

    Example:
        >>> AdvantageInputs.__dataclass_fields__["components"].default_factory()
        {}
    """

    rewards: torch.Tensor
    group_ids: torch.Tensor
    valid: torch.Tensor
    token_mask: torch.Tensor
    config: GRPOConfig
    components: Mapping[str, torch.Tensor] = field(default_factory=dict)


AdvantageEstimator = Callable[[AdvantageInputs], torch.Tensor]


def grpo_advantages(inputs: AdvantageInputs) -> torch.Tensor:
    """GRPO: `compute_grpo_advantages` with the config's leave-one-out and normalisation flags.

    Example:
        >>> import torch
        >>> from nemo_rl.algorithms.grpo import GRPOConfig
        >>> cfg = GRPOConfig(normalize_rewards=False)
        >>> grpo_advantages(AdvantageInputs(torch.tensor([1.0, 3.0]), torch.tensor([0, 0]),
        ...                 torch.tensor([True, True]), torch.ones(2, 1), cfg))
        tensor([-2.,  2.])
    """
    cfg = inputs.config
    return compute_grpo_advantages(
        inputs.rewards, inputs.group_ids, valid=inputs.valid,
        leave_one_out=cfg.use_leave_one_out_baseline, normalize=cfg.normalize_rewards,
    )


def rloo_advantages(inputs: AdvantageInputs) -> torch.Tensor:
    """RLOO: each reward minus the mean reward of the other valid samples of its prompt.

    Example:
        >>> import torch
        >>> from nemo_rl.algorithms.grpo import GRPOConfig
        >>> rloo_advantages(AdvantageInputs(torch.tensor([2.0, 0.0, 4.0]), torch.tensor([5, 5, 5]),
        ...                 torch.tensor([True, True, True]), torch.ones(3, 1), GRPOConfig()))
        tensor([ 0., -3.,  3.])
    """
    return compute_grpo_advantages(
        inputs.rewards, inputs.group_ids, valid=inputs.valid, leave_one_out=True, normalize=False
    )


def reinforce_plus_plus_advantages(inputs: AdvantageInputs) -> torch.Tensor:
    """REINFORCE++: (reward - prompt mean if `minus_baseline`), whitened over the batch's valid
    response tokens (token-weighted mean 0, variance 1; the variance floored at 1e-8). [B, T].

    The whitening is per token, as in REINFORCE++ and NeMo RL: a long response weighs more in
    the batch statistics than a short one. Samples that do not train get 0.

    Example:
        >>> import torch
        >>> from nemo_rl.algorithms.grpo import GRPOConfig
        >>> adv = reinforce_plus_plus_advantages(AdvantageInputs(
        ...     torch.tensor([1.0, 0.0]), torch.tensor([0, 1]), torch.tensor([True, True]),
        ...     torch.ones(2, 1), GRPOConfig(minus_baseline=False)))
        >>> adv.flatten().tolist()  # mean 0.5, std 0.5
        [1.0, -1.0]
    """
    rewards = inputs.rewards.detach().to(torch.float64)
    valid = inputs.valid.to(torch.bool)
    if inputs.config.minus_baseline:
        rewards = rewards - _group_means(rewards, inputs.group_ids, valid)
    mask = inputs.token_mask.to(torch.float64) * valid.to(torch.float64).unsqueeze(-1)
    per_token = rewards.unsqueeze(-1).expand(mask.shape)
    count = mask.sum().clamp(min=1.0)
    mean = (per_token * mask).sum() / count
    variance = ((per_token - mean) ** 2 * mask).sum() / count
    whitened = (per_token - mean) * variance.clamp(min=1e-8).rsqrt()
    whitened = torch.where(mask > 0, whitened, torch.zeros_like(whitened))
    out_dtype = inputs.rewards.dtype if inputs.rewards.is_floating_point() else torch.float32
    return whitened.to(out_dtype)


def _group_means(rewards: torch.Tensor, group_ids: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean reward of the valid members of each sample's group, per sample (0 for empty groups)."""
    _, group = torch.unique(group_ids, return_inverse=True)
    w = valid.to(rewards.dtype)
    sums = torch.zeros(int(group.max()) + 1, dtype=rewards.dtype).index_add_(0, group, w * rewards)
    counts = torch.zeros_like(sums).index_add_(0, group, w)
    return (sums / counts.clamp(min=1.0))[group]
