"""REINFORCE leave-one-out advantages as an outside nemo-rl plugin (no core file touched).

Each valid sample's advantage is its reward minus the mean reward of the other valid samples of
the same prompt; a sample alone in its group, or one that does not train, gets 0. nemo-rl finds
the function through the `nemo_rl.advantage_estimators` entry point in pyproject.toml and calls
it with `nemo_rl.algorithms.grpo.estimators.AdvantageInputs`.
"""

from __future__ import annotations

import torch


def rloo_advantages(inputs) -> torch.Tensor:
    """[B] advantages from `inputs.rewards`, `inputs.group_ids` and `inputs.valid`."""
    rewards = inputs.rewards.to(torch.float64)
    valid = inputs.valid.to(torch.float64)
    advantages = torch.zeros_like(rewards)
    for group in inputs.group_ids.unique():
        members = inputs.group_ids == group
        r, v = rewards[members], valid[members]
        others = v.sum() - v  # valid peers of each member
        baseline = ((r * v).sum() - r * v) / others.clamp(min=1.0)
        advantages[members] = torch.where(others > 0, r - baseline, torch.zeros_like(r)) * v
    return advantages.to(inputs.rewards.dtype)
