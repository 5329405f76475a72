"""Fields every algorithm config shares: the run's length, validation cadence and infra sections.

An algorithm config (`GRPOConfig`, `SFTConfig`, `DPOConfig`, or a plugin's) subclasses
`AlgorithmConfig` and adds its own fields and its `algorithm` discriminator.

Example:
    >>> from nemo_rl.config import SFTConfig
    >>> SFTConfig(max_num_steps=10).checkpointing.save_period
    10
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from nemo_rl.config.base import ConfigModel
from nemo_rl.config.cluster import ClusterConfig
from nemo_rl.config.infra import CheckpointConfig, DataConfig, LoggerConfig
from nemo_rl.config.policy import PolicyConfig
from nemo_rl.config.types import NonNegativeInt, PositiveInt, Seed


class AlgorithmConfig(ConfigModel):
    """Shared fields of all algorithm configs.

    A run stops at `max_num_steps` or after `max_num_epochs` passes over the data, whichever comes
    first. `val_period=0` disables periodic validation. `run_dir` holds the run's logs, config,
    result and (unless `checkpointing.checkpoint_dir` is set) checkpoints; None gives every run a
    fresh `runs/<algorithm>-<YYYYmmdd-HHMMSS>`.
    """

    algorithm: str
    # "module:Class" of the trainer that runs this config (resolved lazily by nemo_rl.api).
    trainer_class: ClassVar[str] = ""
    seed: Seed = 42
    run_dir: str | None = None
    max_num_steps: PositiveInt = 1000
    max_num_epochs: PositiveInt = 1
    val_period: NonNegativeInt = 0
    val_at_start: bool = False
    val_at_end: bool = True
    max_val_samples: PositiveInt | None = 256
    val_batch_size: PositiveInt | None = None
    max_nonfinite_steps: PositiveInt = Field(
        3,
        description="Stop after this many steps in a row whose loss or gradient norm was not "
        "finite (their updates are skipped, weights unchanged).",
    )
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)
    logger: LoggerConfig = Field(default_factory=LoggerConfig)
    checkpointing: CheckpointConfig = Field(default_factory=CheckpointConfig)
    data: DataConfig = Field(default_factory=DataConfig)
