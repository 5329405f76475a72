"""Rollouts: generation and environment turns turned into training sequences."""

from nemo_rl.rollout.engine import RolloutEngine

__all__ = ["RolloutEngine"]
