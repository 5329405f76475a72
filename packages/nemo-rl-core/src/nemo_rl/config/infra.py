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

    project: str = Field("nemo-rl", description="W&B project.")
    name: str | None = Field(None, description="W&B run name; None: logger.run_name.")
    entity: str | None = Field(None, description="W&B team or user; None: your default entity.")


class TensorBoardConfig(ConfigModel):
    """TensorBoard options; `log_dir` None writes under the run directory."""

    log_dir: str | None = Field(
        None, description="Directory of the event files; None: under the run directory."
    )


class MLflowConfig(ConfigModel):
    """MLflow options (used when `mlflow` is in `logger.backends`)."""

    experiment_name: str = Field("nemo-rl", description="MLflow experiment.")
    run_name: str | None = Field(None, description="MLflow run name; None: logger.run_name.")
    tracking_uri: str | None = Field(
        None, description="MLflow tracking server; None: MLflow's default."
    )


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
    backends: list[str] = Field(
        default_factory=lambda: ["console", "jsonl"],
        description="Metric sinks: console, jsonl, tensorboard, wandb, mlflow, or a plugin's "
        "(group nemo_rl.loggers).",
    )
    run_name: str | None = Field(
        None, description="Run name for wandb and mlflow when their own is not set."
    )
    wandb: WandbConfig = Field(default_factory=WandbConfig, description="Weights & Biases options.")
    tensorboard: TensorBoardConfig = Field(
        default_factory=TensorBoardConfig, description="TensorBoard options."
    )
    mlflow: MLflowConfig = Field(default_factory=MLflowConfig, description="MLflow options.")


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

    enabled: bool = Field(True, description="Write checkpoints.")
    checkpoint_dir: str | None = Field(None, description="None: <run_dir>/checkpoints.")
    save_period: PositiveInt = Field(
        10, description="Write a checkpoint every this many steps, and after the last step."
    )
    keep_top_k: PositiveInt | None = Field(
        3,
        description="Keep the best k by metric_name (the newest k without one); the latest is "
        "always kept. None: keep all.",
    )
    metric_name: str | None = Field(
        None,
        description="Metric that ranks checkpoints for keep_top_k (e.g. val/loss); None: the "
        "newest are best.",
    )
    higher_is_better: bool = Field(
        True, description="Whether a larger metric_name value is better."
    )
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

    dataset: str | None = Field(
        None,
        description="Training data: a registered dataset name, an HF hub name or a local "
        "JSONL/JSON/Parquet/CSV file.",
    )
    split: str = Field("train", description="Split of dataset to train on.")
    val_dataset: str | None = Field(
        None,
        description="Validation data, in the same forms as dataset; None: none, unless val_split "
        "is set.",
    )
    val_split: str | None = Field(
        None,
        description="Split used for validation: of val_dataset, or of dataset when val_dataset is "
        "None.",
    )
    prompt_key: str = Field("prompt", description="Column holding the prompt.")
    answer_key: str = Field(
        "answer", description="Column holding the answer: SFT's target, the reward's ground truth."
    )
    messages_key: str | None = Field(
        None,
        description="Column holding a conversation (a list of role/content messages); None: "
        "detected from the rows.",
    )
    chosen_key: str = Field("chosen", description="DPO: column of the preferred response.")
    rejected_key: str = Field("rejected", description="DPO: column of the rejected response.")
    system_prompt: str | None = Field(
        None,
        description="System message put first, unless the conversation already starts with one; "
        "None: none.",
    )
    prompt_template: str | None = Field(
        None, description="A format string with {prompt} applied before chat templating."
    )
    apply_chat_template: bool = Field(
        True, description="Render prompts with the tokenizer's chat template (else as plain text)."
    )
    max_input_seq_length: PositiveInt | None = Field(
        None, description="Longest prompt, in tokens; None: policy.max_total_sequence_length - 1."
    )
    shuffle: bool = Field(True, description="Shuffle the training rows each epoch (seeded).")
