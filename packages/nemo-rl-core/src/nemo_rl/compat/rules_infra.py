"""Migration rules for `cluster.*`, `checkpointing.*`, `logger.*`, `data.*` and the NeMo RL
sections nemo-rl has no counterpart for.

Example:
    >>> [r.new for r in INFRA_RULES if r.old == "logger.wandb_enabled"]
    ['logger.backends']
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Any

from nemo_rl.compat.rule_types import Drop, MigrationContext, Rule, dropped, same, unsupported

_LOGGER_BACKENDS = ("wandb", "tensorboard", "mlflow")


def logger_backends(ctx: MigrationContext) -> list[str]:
    """console and jsonl (always on in NeMo RL too), plus every `logger.<name>_enabled` one."""
    return ["console", "jsonl", *[b for b in _LOGGER_BACKENDS if ctx.get(f"logger.{b}_enabled")]]


def _backends(value: Any, ctx: MigrationContext) -> list[str]:
    return logger_backends(ctx)


def _logger_section(backend: str):
    def condition(ctx: MigrationContext) -> str | None:
        if ctx.get(f"logger.{backend}_enabled"):
            return None
        return f"logger.{backend}_enabled is false: {backend} settings are unused"

    return condition


def metric_name(legacy: Any) -> Any:
    """NeMo RL's checkpoint metric (`val:accuracy`, `train:loss`, `val:val_loss`,
    `val:validation-<set>_loss`) as nemo-rl logs it (`val/accuracy`, `loss`, `val/loss`).

    Example:
        >>> metric_name("val:validation-default_loss"), metric_name("train:loss")
        ('val/loss', 'loss')
    """
    if not isinstance(legacy, str) or ":" not in legacy:
        return legacy
    split, name = legacy.split(":", 1)
    name = re.sub(r"^(val_|validation-[^_]*_)", "", name)
    return name if split == "train" else f"{split}/{name}"


def run_dir_for(checkpoint_dir: Any) -> Any:
    """The nemo-rl run directory for NeMo RL's `checkpointing.checkpoint_dir`: a run keeps its
    logs, metrics, config and checkpoints in one folder, so that folder takes the checkpoints'
    place. A relative path was relative to where NeMo RL ran (`results/grpo`): it moves under
    `runs/` with its first folder dropped; an absolute one (shared storage) is kept.

    Example:
        >>> run_dir_for("results/grpo"), run_dir_for("/lustre/me/grpo"), run_dir_for("ckpt")
        ('runs/grpo', '/lustre/me/grpo', 'runs/ckpt')
    """
    if not isinstance(checkpoint_dir, str) or not checkpoint_dir.strip():
        return checkpoint_dir  # left for validation to name
    path = PurePosixPath(checkpoint_dir)
    if path.is_absolute():
        return checkpoint_dir
    parts = [p for p in path.parts if p not in (".", "..")]
    return str(PurePosixPath("runs", *(parts[1:] if len(parts) > 1 else parts)))


def _checkpointing_on(ctx: MigrationContext) -> str | None:
    if ctx.get("checkpointing.enabled", True) is False:
        return ("checkpointing.enabled is false: nothing was written there; the run writes to a "
                "fresh runs/<algorithm>-<timestamp>")
    return None


def _absolute_tensorboard_dir(value: Any, ctx: MigrationContext) -> Any:
    if isinstance(value, str) and PurePosixPath(value).is_absolute():
        return value
    return Drop(f"{value!r} was relative to where NeMo RL ran; event files go to "
                "<run_dir>/tensorboard with the rest of the run (an absolute path is kept)")


def _one_dataset(value: Any, ctx: MigrationContext) -> Any:
    if isinstance(value, list):
        return Drop("several datasets in one split are not supported by nemo-rl yet; set "
                    "data.dataset (or data.val_dataset) to one of them", changes_behaviour=True)
    return value


def _dataset_key(section: str, field: str, new: str) -> list[Rule]:
    """data.<section>.<field> and the older flat data.<field> layout."""
    return [Rule(f"data.{section}.{field}", new, convert=_one_dataset)]


INFRA_RULES: list[Rule] = [
    *same("cluster.num_nodes", "cluster.gpus_per_node"),
    *dropped("nemo-rl's config has no port or topology settings", "cluster.master_port_range_low",
             "cluster.master_port_range_high", "cluster.segment_size"),
    *same(*[f"checkpointing.{k}" for k in
            ("enabled", "higher_is_better", "keep_top_k", "save_period")]),
    Rule("checkpointing.checkpoint_dir", "run_dir",
         "the run's one folder (checkpoints in <run_dir>/checkpoints, logs and metrics beside "
         "them); relative paths move under runs/ (results/grpo -> runs/grpo)",
         lambda v, c: run_dir_for(v), when=_checkpointing_on),
    Rule("checkpointing.metric_name", "checkpointing.metric_name",
         "val:x -> val/x, train:x -> x", lambda v, c: metric_name(v)),
    *dropped("nemo-rl checkpoints always hold the model as HF safetensors",
             "checkpointing.model_save_format", "checkpointing.save_consolidated"),
    *dropped("nemo-rl checkpoints always hold the optimizer state (resume is exact)",
             "checkpointing.save_optimizer"),
    unsupported("checkpointing.checkpoint_must_save_by", "time-limited checkpoint saving"),
    Rule("logger.log_dir", None,
         "NeMo RL's folder of per-run log folders (<log_dir>/exp_<N>); a nemo-rl run writes its "
         "logs into its run directory (run_dir: from checkpointing.checkpoint_dir, else a fresh "
         "runs/<algorithm>-<timestamp>)"),
    *[Rule(f"logger.{b}_enabled", "logger.backends", "console, jsonl + every enabled backend",
           _backends) for b in _LOGGER_BACKENDS],
    Rule("logger.wandb.project", "logger.wandb.project", when=_logger_section("wandb")),
    Rule("logger.wandb.name", "logger.wandb.name", when=_logger_section("wandb")),
    Rule("logger.wandb.entity", "logger.wandb.entity", when=_logger_section("wandb")),
    *dropped("a NeMo-Gym debugging switch", "logger.wandb.log_nemo_gym_full_result_tables"),
    Rule("logger.tensorboard.log_dir", "logger.tensorboard.log_dir",
         "absolute paths only; a relative one goes to <run_dir>/tensorboard",
         _absolute_tensorboard_dir, when=_logger_section("tensorboard")),
    Rule("logger.tensorboard", "logger.tensorboard", convert=lambda v, c: Drop("empty")),
    *[Rule(f"logger.mlflow.{k}", f"logger.mlflow.{k}", when=_logger_section("mlflow"))
      for k in ("experiment_name", "run_name", "tracking_uri")],
    unsupported("logger.swanlab_enabled", "SwanLab logging"),
    *dropped("SwanLab logging is not supported", "logger.swanlab.*"),
    unsupported("logger.monitor_gpus", "GPU utilisation monitoring"),
    *dropped("GPU utilisation monitoring is not supported", "logger.gpu_monitoring.*"),
    unsupported("logger.num_val_samples_to_print", "printing validation samples", (0, None)),
    *same("data.max_input_seq_length", "data.shuffle"),
    # NeMo RL's torch DataLoader workers; nemo-rl has no DataLoader (rows sit in memory and each
    # step's batch is tokenized in the trainer), so there is nothing for workers to do.
    *dropped("nemo-rl has no dataloader workers: rows are held in memory and each step's batch "
             "is tokenized by the trainer", "data.num_workers"),
    *_dataset_key("train", "dataset_name", "data.dataset"),
    *_dataset_key("train", "data_path", "data.dataset"),
    *_dataset_key("train", "split", "data.split"),
    *_dataset_key("validation", "dataset_name", "data.val_dataset"),
    *_dataset_key("validation", "data_path", "data.val_dataset"),
    *_dataset_key("validation", "split", "data.val_split"),
    Rule("data.train", "data.dataset", convert=_one_dataset),
    Rule("data.validation", "data.val_dataset", convert=lambda v, c: Drop(
        "null: no separate validation set") if v is None else _one_dataset(v, c)),
    # The TypedDict-era flat layout: data.dataset_name, data.input_key, ...
    Rule("data.dataset_name", "data.dataset"),
    *[Rule(f"data.{s}.input_key", "data.prompt_key") for s in ("train", "validation", "default")],
    *[Rule(f"data.{s}.output_key", "data.answer_key") for s in ("train", "validation", "default")],
    Rule("data.input_key", "data.prompt_key"),
    Rule("data.output_key", "data.answer_key"),
    *dropped("prompt files are paths inside NeMo RL's repository; put the text in "
             "data.prompt_template / data.system_prompt",
             "data.default.prompt_file", "data.default.system_prompt_file", "data.prompt_file",
             "data.system_prompt_file", "data.train.prompt_file", "data.train.system_prompt_file",
             "data.validation.prompt_file", "data.validation.system_prompt_file"),
    *dropped("nemo-rl chooses data processing from the algorithm", "data.default.processor",
             "data.train.processor", "data.validation.processor", "data.processor"),
    # GRPO maps these to `environment` (rules_environment.py, matched first).
    *dropped("only GRPO uses an environment", "data.default.env_name", "data.train.env_name",
             "data.validation.env_name", "data.env_name"),
    *dropped("nemo-rl has no automatic train/validation split: set data.val_dataset",
             "data.train.split_validation_size", "data.train.seed"),
    *dropped("nemo-rl tokenizes with the chat template, which decides BOS/EOS and the "
             "generation prompt", "data.add_bos", "data.add_eos", "data.add_generation_prompt",
             "data.add_system_prompt"),
    unsupported("data.use_multiple_dataloader", "multiple dataloaders"),
    *dropped("only used with data.use_multiple_dataloader", "data.num_prompts_per_dataloader",
             "data.custom_dataloader"),
    *dropped("NeMo RL's environment settings (workers, verifier choice) do not carry over; "
             "GRPO's environment itself comes from data.*.env_name", "env.*"),
    *dropped("the TransferQueue data plane is not part of nemo-rl", "data_plane.*"),
    *dropped("NeMo-Gym reward penalties are not part of nemo-rl", "reward_penalties.*"),
    *dropped("asynchronous RL is not part of nemo-rl yet", "async_rl.*"),
    unsupported("on_policy_distillation", "on-policy distillation"),
]
