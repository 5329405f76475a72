"""Fields every algorithm config shares: the run's length, validation cadence and infra sections.

An algorithm config (`GRPOConfig`, `SFTConfig`, `DPOConfig`, or a plugin's) subclasses
`AlgorithmConfig` and adds its own fields, its `algorithm` discriminator and `trainer_class`.
A plugin algorithm registers the config class under its name in the `nemo_rl.algorithms`
entry-point group; `nemo-rl train`, `load_config` and `nemo_rl.train` then find the config
class by the `algorithm` key and the trainer through the config's `trainer_class`.

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

    algorithm: str = Field(
        description="Which algorithm the config is for (grpo, sft, dpo or a plugin's); picks the "
        "config class when a file or dict is loaded."
    )
    trainer_class: ClassVar[str] = ""
    """The trainer that runs this config, as "module:Class"; imported only when a run starts
    (`nemo_rl.api.trainer_class_for`), so configs load without the trainer's imports. The
    algorithm's entry point (`nemo_rl.algorithms` group) names the config class, which names its
    trainer here."""
    seed: Seed = Field(
        42,
        description="Seed of every random generator (torch, Python, data order): the same seed "
        "and config give the same run.",
    )
    run_dir: str | None = Field(
        None,
        description="Directory of the run's logs, config, result and checkpoints; None: a fresh "
        "runs/<algorithm>-<YYYYmmdd-HHMMSS>.",
    )
    max_num_steps: PositiveInt = Field(
        1000,
        description="Stop after this many steps (or after max_num_epochs, whichever comes first).",
    )
    max_num_epochs: PositiveInt = Field(
        1,
        description="Stop after this many passes over the training rows (or max_num_steps, "
        "whichever comes first).",
    )
    val_period: NonNegativeInt = Field(
        0, description="Validate every this many steps; 0: no periodic validation."
    )
    val_at_start: bool = Field(False, description="Validate once before the first step.")
    val_at_end: bool = Field(True, description="Validate once after the last step.")
    max_val_samples: PositiveInt | None = Field(
        256, description="Validate on at most this many rows (the first ones); None: all of them."
    )
    val_batch_size: PositiveInt | None = Field(
        None, description="Validation rows per batch; None: as many as one training step takes."
    )
    max_nonfinite_steps: PositiveInt = Field(
        3,
        description="Stop after this many steps in a row whose loss or gradient norm was not "
        "finite (their updates are skipped, weights unchanged).",
    )
    policy: PolicyConfig = Field(
        default_factory=PolicyConfig,
        description="The trained model, its optimizer and its batching.",
    )
    cluster: ClusterConfig = Field(
        default_factory=ClusterConfig, description="Nodes, GPUs and how the workers are launched."
    )
    logger: LoggerConfig = Field(default_factory=LoggerConfig, description="Where metrics go.")
    checkpointing: CheckpointConfig = Field(
        default_factory=CheckpointConfig,
        description="When checkpoints are written, where, and which are kept.",
    )
    data: DataConfig = Field(
        default_factory=DataConfig,
        description="The datasets, and the columns that hold prompts, answers and conversations.",
    )
