"""The reward a sample trains on: the weighted sum of its reward components, checked like one.

Each component is already finite in `REWARD_DTYPE` (float32), but their weighted sum need not
be: 1e30 with weight 1e10 is 1e40, past float32's 3.4e38, and two terms that overflow with
opposite signs give inf - inf = NaN. Either would reach the advantages. So the sum is taken in
float64, term by term in component order (no float32 overflow of a partial sum whose total fits),
and a sample whose sum is not finite in float32 gets a recoverable `RewardFunctionError` naming
the sample, the values and weights, and the fix; `on_error` then decides, as for a failing
reward function.

Example:
    >>> import torch
    >>> rewards = {"acc": torch.tensor([1.0, 4.0]), "short": torch.tensor([0.5, 0.0])}
    >>> weighted_reward_sum(rewards, {"acc": 2.0}).tolist()
    [2.5, 8.0]
    >>> ok, bad = checked_reward_sums(rewards, {"acc": 1e38}, ["1+1?", "2+2?"], ["2", "4"])
    >>> ok, bad.sample_index, bad.value
    (1e+38, 1, 4e+38)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from nemo_rl.environments.reward_errors import (
    REWARD_DTYPE,
    RewardFunctionError,
    weighted_sum_error,
)

_REWARD_MAX = torch.finfo(REWARD_DTYPE).max


def weighted_reward_sum(
    rewards: Mapping[str, torch.Tensor], weights: Mapping[str, float]
) -> torch.Tensor:
    """sum over components of weight * reward per sample, in float64 (missing weights are 1.0).

    Unchecked: the result may be inf, NaN or past float32's range; see `checked_reward_sums`.

    Example:
        >>> import torch
        >>> weighted_reward_sum({"a": torch.tensor([1.0]), "b": torch.tensor([3.0])}, {"b": -0.5})
        tensor([-0.5000], dtype=torch.float64)
    """
    total: torch.Tensor | None = None
    for name, values in rewards.items():
        # A multiply then an add, never a fused a + w * b: the same two roundings as Python floats.
        term = torch.as_tensor(values).to(torch.float64) * float(weights.get(name, 1.0))
        total = term if total is None else total + term
    if total is None:
        raise ValueError("weighted_reward_sum got no reward components; pass at least one")
    return total


def checked_reward_sums(
    rewards: Mapping[str, torch.Tensor],
    weights: Mapping[str, float],
    prompts: Sequence[Any],
    responses: Sequence[Any],
) -> list[float | RewardFunctionError]:
    """Each sample's weighted reward sum as a float, or, where it is not finite in float32, a
    recoverable `RewardFunctionError` in its place (the caller applies its `on_error` policy).

    A float returned here is the float64 sum; it is within float32's range, and it is the value
    `RewardEnvStep.total_reward()` gives, rounded to float32.

    Example:
        >>> import torch
        >>> r = {"a": torch.tensor([3e38]), "b": torch.tensor([3e38])}
        >>> checked_reward_sums(r, {}, ["p"], ["r"])[0].summary[:60]
        "the weighted reward sum of sample 0 (prompt 'p', response 'r"
    """
    totals = weighted_reward_sum(rewards, weights).tolist()
    columns = {name: torch.as_tensor(values).tolist() for name, values in rewards.items()}
    checked: list[float | RewardFunctionError] = []
    for i, total in enumerate(totals):
        if math.isfinite(total) and abs(total) <= _REWARD_MAX:
            checked.append(total)
            continue
        terms = [(name, column[i], float(weights.get(name, 1.0))) for name, column in columns.items()]
        checked.append(weighted_sum_error(i, prompts[i], responses[i], terms, total))
    return checked
