"""SFT configuration.

Example:
    >>> from nemo_rl.algorithms.sft import SFTConfig
    >>> SFTConfig(batch_size=8).algorithm
    'sft'
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from nemo_rl.config.algorithm import AlgorithmConfig
from nemo_rl.config.types import PositiveInt


class SFTConfig(AlgorithmConfig):
    """Supervised fine-tuning: masked token NLL on assistant turns.

    `batch_size` is the number of sequences per step (one optimizer update per step unless
    `policy.train_global_batch_size` splits it).
    """

    algorithm: Literal["sft"] = Field("sft", description="Selects this config: algorithm: sft.")
    trainer_class: ClassVar[str] = "nemo_rl.algorithms.sft.trainer:SFTTrainer"
    batch_size: PositiveInt = Field(
        32,
        description="Sequences per step (one optimizer update unless "
        "policy.train_global_batch_size splits it).",
    )
    loss_on_prompt: bool = Field(False, description="Also train on prompt/user tokens.")
