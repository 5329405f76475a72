"""DPO configuration.

Example:
    >>> from nemo_rl.algorithms.dpo import DPOConfig
    >>> DPOConfig(beta=0.05).sft_loss_weight
    0.0
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, NonNegativeFloat, PositiveFloat, PositiveInt

from nemo_rl.config.algorithm import AlgorithmConfig


class DPOConfig(AlgorithmConfig):
    """Direct Preference Optimization, with an optional SFT term on the chosen response.

    `batch_size` counts preference pairs per step.
    """

    algorithm: Literal["dpo"] = "dpo"
    batch_size: PositiveInt = 32
    beta: PositiveFloat = Field(0.1, description="Strength of the implicit KL to the reference.")
    preference_average_log_probs: bool = Field(
        False, description="Average response log-probs over tokens instead of summing them."
    )
    preference_loss_weight: NonNegativeFloat = 1.0
    sft_loss_weight: NonNegativeFloat = 0.0
    sft_average_log_probs: bool = False
