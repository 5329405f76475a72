"""DPO configuration.

Example:
    >>> from nemo_rl.algorithms.dpo import DPOConfig
    >>> DPOConfig(beta=0.05).sft_loss_weight
    0.0
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from nemo_rl.config.algorithm import AlgorithmConfig
from nemo_rl.config.types import NonNegativeFloat, PositiveFloat, PositiveInt


class DPOConfig(AlgorithmConfig):
    """Direct Preference Optimization, with an optional SFT term on the chosen response.

    `batch_size` counts preference pairs per step.
    """

    algorithm: Literal["dpo"] = Field("dpo", description="Selects this config: algorithm: dpo.")
    trainer_class: ClassVar[str] = "nemo_rl.algorithms.dpo.trainer:DPOTrainer"
    batch_size: PositiveInt = Field(
        32, description="Preference pairs per step (two sequences each)."
    )
    beta: PositiveFloat = Field(0.1, description="Strength of the implicit KL to the reference.")
    preference_average_log_probs: bool = Field(
        False, description="Average response log-probs over tokens instead of summing them."
    )
    preference_loss_weight: NonNegativeFloat = Field(
        1.0, description="Weight of the DPO preference term in the loss."
    )
    sft_loss_weight: NonNegativeFloat = Field(
        0.0, description="Weight of the NLL term on the chosen response; 0: pure DPO."
    )
    sft_average_log_probs: bool = Field(
        False, description="Average the SFT term's NLL over tokens instead of summing it."
    )

    @model_validator(mode="after")
    def _pairs_stay_whole(self) -> DPOConfig:
        # Rows 2i/2i+1 are a pair; a micro-batch or optimizer batch must never split one.
        p = self.policy
        if p.train_micro_batch_size % 2:
            raise ValueError(
                f"policy.train_micro_batch_size ({p.train_micro_batch_size}) must be even for DPO "
                "(each preference pair is two sequences); use an even number such as 2 or 4"
            )
        if p.train_global_batch_size is not None and p.train_global_batch_size % 2:
            raise ValueError("policy.train_global_batch_size must be even for DPO (pairs of sequences)")
        if p.max_tokens_per_microbatch is not None:
            raise ValueError(
                "policy.max_tokens_per_microbatch (dynamic batching) can split preference pairs; "
                "DPO uses policy.train_micro_batch_size instead: remove max_tokens_per_microbatch"
            )
        return self
