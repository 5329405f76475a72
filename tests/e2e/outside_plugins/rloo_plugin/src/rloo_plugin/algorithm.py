"""RLOO as an algorithm of its own: GRPO's loop with this package's estimator as the default.

The `nemo_rl.algorithms` entry point names `RLOOConfig`; its `trainer_class` names `RLOOTrainer`,
so `algorithm: rloo` in a config file, `nemo-rl train` and `nemo_rl.train("rloo", ...)` all work.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from nemo_rl.algorithms.grpo.config import GRPOConfig
from nemo_rl.algorithms.grpo.trainer import GRPOTrainer


class RLOOConfig(GRPOConfig):
    """GRPO's settings; the advantages default to this package's leave-one-out estimator."""

    algorithm: Literal["rloo"] = "rloo"
    trainer_class: ClassVar[str] = "rloo_plugin.algorithm:RLOOTrainer"
    advantage_estimator: str = "rloo_outside"


class RLOOTrainer(GRPOTrainer):
    """GRPOTrainer running an `RLOOConfig`."""

    config_class = RLOOConfig
