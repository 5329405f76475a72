"""EnvStep helpers: a step that carries its reward weights and metrics, checks, and merging.

`RewardEnvStep` is an `EnvStep` that knows its component weights (so `total_reward()` needs no
argument) and carries step metrics that add up across chunks (`reward_errors`). `merge_env_steps`
concatenates the steps of consecutive chunks of a batch, as `EnvironmentPool` needs.

Example:
    >>> import torch
    >>> a = RewardEnvStep({"acc": torch.tensor([1.0])}, [None], [True], [{}], {"acc": 2.0})
    >>> b = RewardEnvStep({"acc": torch.tensor([0.5])}, [None], [True], [{}], {"acc": 2.0})
    >>> merge_env_steps([a, b]).total_reward().tolist()
    [2.0, 1.0]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from nemo_rl.environments.reward_errors import REWARD_DTYPE
from nemo_rl.environments.reward_sum import weighted_reward_sum
from nemo_rl.protocols import EnvStep


@dataclass
class RewardEnvStep(EnvStep):
    """An `EnvStep` with named reward components, their weights and additive step metrics.

    `total_reward()` uses `weights` (missing names weigh 1.0) unless others are passed; it
    adds in float64 and returns `REWARD_DTYPE` (`RewardEnvironment` has checked that each sum
    it returns fits, see `nemo_rl.environments.reward_sum`).
    """

    weights: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)

    def total_reward(self, weights: dict[str, float] | None = None) -> torch.Tensor:
        if isinstance(self.rewards, torch.Tensor):
            return self.rewards
        total = weighted_reward_sum(self.rewards, self.weights if weights is None else weights)
        return total.to(REWARD_DTYPE)


def check_env_step(step: EnvStep, batch_size: int, source: str) -> None:
    """Raise ValueError unless `step` has one entry per conversation in every field."""
    if not isinstance(step, EnvStep):
        raise TypeError(
            f"{source}.step returned a {type(step).__name__}; return a nemo_rl.protocols.EnvStep"
        )
    rewards = step.rewards if isinstance(step.rewards, dict) else {"rewards": step.rewards}
    sizes = {f"rewards[{k!r}]" if k != "rewards" else k: len(v) for k, v in rewards.items()}
    sizes.update(observations=len(step.observations), done=len(step.done))
    if step.metadata:
        sizes["metadata"] = len(step.metadata)
    wrong = {name: n for name, n in sizes.items() if n != batch_size}
    if wrong:
        listed = ", ".join(f"{n} {name}" for name, n in wrong.items())
        raise ValueError(
            f"{source}.step returned {listed} for a batch of {batch_size} conversations; return "
            "one entry per conversation in rewards, observations, done (and metadata)"
        )


def _merge_rewards(steps: Sequence[EnvStep]) -> torch.Tensor | dict[str, torch.Tensor]:
    first = steps[0].rewards
    if isinstance(first, torch.Tensor):
        if not all(isinstance(s.rewards, torch.Tensor) for s in steps):
            raise ValueError("cannot merge EnvSteps: some return a reward tensor, some a dict")
        return torch.cat([s.rewards for s in steps])  # type: ignore[misc]
    names = list(first)
    for s in steps:
        if not isinstance(s.rewards, dict) or list(s.rewards) != names:
            got = list(s.rewards) if isinstance(s.rewards, dict) else "a tensor"
            raise ValueError(
                f"cannot merge EnvSteps with different reward components ({names} vs {got}); an "
                "environment must return the same components for every chunk of a batch"
            )
    return {name: torch.cat([s.rewards[name] for s in steps]) for name in names}  # type: ignore[index]


def merge_env_steps(steps: Sequence[EnvStep]) -> EnvStep:
    """Concatenate the steps of consecutive chunks of one batch, in order.

    The result is a `RewardEnvStep` when every part is one (weights from the first, metrics
    summed), else a plain `EnvStep`.
    """
    if not steps:
        raise ValueError("merge_env_steps needs at least one EnvStep")
    if len(steps) == 1:
        return steps[0]
    rewards = _merge_rewards(steps)
    observations = [obs for s in steps for obs in s.observations]
    done = [d for s in steps for d in s.done]
    metadata = [m for s in steps for m in (s.metadata or [{} for _ in s.done])]
    if all(isinstance(s, RewardEnvStep) for s in steps):
        metrics: dict[str, float] = {}
        for s in steps:
            for name, value in s.metrics.items():  # type: ignore[attr-defined]
                metrics[name] = metrics.get(name, 0.0) + value
        weights = dict(steps[0].weights)  # type: ignore[attr-defined]
        return RewardEnvStep(rewards, observations, done, metadata, weights, metrics)
    return EnvStep(rewards, observations, done, metadata)
