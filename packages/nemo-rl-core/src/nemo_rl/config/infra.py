"""Configuration of logging, checkpointing and data loading.

Example:
    >>> from nemo_rl.config import CheckpointConfig, LoggerConfig
    >>> LoggerConfig().backends
    ['console', 'jsonl']
    >>> CheckpointConfig(keep_top_k=2).metric_name is None
    True
"""

from __future__ import annotations

from pydantic import Field

from nemo_rl.config.base import ConfigModel
from nemo_rl.config.types import PositiveInt


class WandbConfig(ConfigModel):
    """Weights & Biases options (used when `wandb` is in `logger.backends`)."""

    project: str = "nemo-rl"
    name: str | None = None
    entity: str | None = None


class TensorBoardConfig(ConfigModel):
    """TensorBoard options; `log_dir` None writes under the run directory."""

    log_dir: str | None = None


class MLflowConfig(ConfigModel):
    """MLflow options (used when `mlflow` is in `logger.backends`)."""

    experiment_name: str = "nemo-rl"
    run_name: str | None = None
    tracking_uri: str | None = None


class LoggerConfig(ConfigModel):
    """Where metrics go. The JSONL metrics file is always written, whatever `backends` says.

    `log_dir` is the older name of the run directory (`run_dir` on the algorithm config): None
    lets each run make its own, `runs/<algorithm>-<timestamp>`.

    Example:
        >>> LoggerConfig(backends=["console", "tensorboard"]).log_dir is None
        True
    """

    log_dir: str | None = Field(
        None, description="Run directory (older name of `run_dir`); None: a fresh one per run."
    )
    backends: list[str] = Field(default_factory=lambda: ["console", "jsonl"])
    run_name: str | None = None
    wandb: WandbConfig = Field(default_factory=WandbConfig)
    tensorboard: TensorBoardConfig = Field(default_factory=TensorBoardConfig)
    mlflow: MLflowConfig = Field(default_factory=MLflowConfig)


class CheckpointConfig(ConfigModel):
    """When and where checkpoints are written and which are kept.

    `keep_top_k` keeps the best k by `metric_name` (or the newest k when no metric is set); the
    latest checkpoint is always kept so a run can resume. `checkpoint_dir` None means
    `<run_dir>/checkpoints`. A run continues from the latest checkpoint only when `resume` is
    true (or `resume=True` / `--resume` is passed); otherwise every run starts at step 0.

    Example:
        >>> CheckpointConfig(save_period=50).enabled
        True
    """

    enabled: bool = True
    checkpoint_dir: str | None = Field(None, description="None: <run_dir>/checkpoints.")
    save_period: PositiveInt = 10
    keep_top_k: PositiveInt | None = 3
    metric_name: str | None = None
    higher_is_better: bool = True
    resume: bool = Field(
        False, description="Continue from the latest checkpoint in checkpoint_dir (if any)."
    )


class DataConfig(ConfigModel):
    """Where data comes from and which columns mean what.

    `dataset` is a registered dataset name, an HF hub name or a local JSONL/JSON/Parquet/CSV path.

    Example:
        >>> DataConfig(dataset="train.jsonl", answer_key="solution").prompt_key
        'prompt'
    """

    dataset: str | None = None
    split: str = "train"
    val_dataset: str | None = None
    val_split: str | None = None
    prompt_key: str = "prompt"
    answer_key: str = "answer"
    messages_key: str | None = None
    chosen_key: str = "chosen"
    rejected_key: str = "rejected"
    system_prompt: str | None = None
    prompt_template: str | None = Field(
        None, description="A format string with {prompt} applied before chat templating."
    )
    apply_chat_template: bool = True
    max_input_seq_length: PositiveInt | None = None
    shuffle: bool = True
