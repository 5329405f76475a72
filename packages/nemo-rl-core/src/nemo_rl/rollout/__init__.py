"""Rollouts: generation and environment turns turned into training sequences."""

from nemo_rl.rollout.engine import RolloutEngine
from nemo_rl.rollout.metrics import rollout_metrics

__all__ = ["RolloutEngine", "rollout_metrics"]
