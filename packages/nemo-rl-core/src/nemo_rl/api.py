"""The one-function API and trainer lookup by config.

Example:
    >>> import nemo_rl
    >>> result = nemo_rl.train("sft", "/models/tiny", dataset="train.jsonl", max_num_steps=10)  # doctest: +SKIP
    >>> result.checkpoint_path  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from nemo_rl import registry
from nemo_rl.config import AlgorithmConfig


def trainer_class_for(config_or_algorithm: AlgorithmConfig | str) -> type:
    """The trainer class that runs a config (or an algorithm name such as "grpo")."""
    if isinstance(config_or_algorithm, str):
        config_cls = registry.resolve("algorithms", config_or_algorithm)
    else:
        config_cls = type(config_or_algorithm)
    target = getattr(config_cls, "trainer_class", "")
    if not target:
        raise ValueError(
            f"{config_cls.__name__} names no trainer: set trainer_class = 'module:Class' on it"
        )
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def trainer_from_config(
    config: AlgorithmConfig | dict | str | Path,
    overrides: Any = None,
    *,
    run_dir: str | Path | None = None,
    resume: bool | None = None,
) -> Any:
    """Build the right trainer for a config object, dict or file (the CLI's path).

    `run_dir` and `resume` win over the config's `run_dir` and `checkpointing.resume`.
    """
    from nemo_rl.config import load_config

    cfg = load_config(config, overrides)
    return trainer_class_for(cfg)(cfg, run_dir=run_dir, resume=resume)


def train(
    algorithm: str,
    model: str | Path,
    dataset: Any,
    *,
    reward_fn: Any = None,
    val_dataset: Any = None,
    callbacks: Any = None,
    **overrides: Any,
) -> Any:
    """Train `model` with `algorithm` ("grpo", "sft", "dpo") on `dataset`; returns a FitResult.

    Keyword overrides set config fields as in `Trainer.from_pretrained`, `run_dir=` and
    `resume=True` included: each call trains a fresh run unless told to resume.
    """
    trainer = trainer_class_for(algorithm).from_pretrained(model, **overrides)
    if algorithm == "grpo" or reward_fn is not None:
        return trainer.fit(dataset=dataset, reward_fn=reward_fn, val_dataset=val_dataset, callbacks=callbacks)
    return trainer.fit(dataset=dataset, val_dataset=val_dataset, callbacks=callbacks)
