"""Summary statistics of a rollout batch, for logging."""

from __future__ import annotations

import torch

from nemo_rl.data import BatchedDataDict


def rollout_metrics(
    batch: BatchedDataDict, rewards: torch.Tensor, components: dict[str, torch.Tensor], prefix: str = ""
) -> dict[str, float]:
    """Reward, length, truncation and turn statistics of a rollout batch (means over samples),
    plus the number of failed reward calls that scored 0 (`reward_errors`).

    Reward components are listed one by one when there is more than the plain `reward`.
    Samples of filtered prompts (`batch["filtered"]`, never rolled out) are left out of the
    means, so one over-long prompt does not drag the step's reward towards 0.
    """
    rolled = ~batch["filtered"] if "filtered" in batch else torch.ones(len(rewards), dtype=torch.bool)
    if not rolled.any():  # every prompt filtered: report the (zero) values rather than NaN
        rolled = torch.ones_like(rolled)
    kept = rewards[rolled]
    metrics = {
        f"{prefix}reward/mean": float(kept.mean()),
        f"{prefix}reward/std": float(kept.std()) if kept.numel() > 1 else 0.0,
        f"{prefix}response_length/mean": float(batch["response_lengths"][rolled].float().mean()),
        f"{prefix}truncated/fraction": float(batch["truncated"][rolled].float().mean()),
        f"{prefix}turns/mean": float(batch["num_turns"][rolled].float().mean()),
    }
    if len(components) > 1 or (components and "reward" not in components):
        for name, values in components.items():
            metrics[f"{prefix}reward/{name}"] = float(values[rolled].mean())
    if "reward_errors" in batch:  # a count, not a mean: any failure must stand out in the log
        metrics[f"{prefix}reward_errors"] = float(batch["reward_errors"].sum())
    if "advantages" in batch:
        metrics[f"{prefix}advantages/abs_mean"] = float(batch["advantages"].abs().mean())
    return metrics
