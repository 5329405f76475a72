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
    """The trainer class that runs a config (or an algorithm name such as "grpo").

    An algorithm is found in two steps: its name resolves, through the `algorithms` plugin group
    (entry points `nemo_rl.algorithms`), to its config class; the config class names its trainer
    in the class variable `trainer_class` ("module:Class"), imported only now, so reading or
    validating a config never imports the trainer (nor torch). The trainer's `config_class`
    must be that config class (or a base of it).

    Example:
        >>> trainer_class_for("sft").__name__
        'SFTTrainer'
    """
    if isinstance(config_or_algorithm, str):
        config_cls = registry.resolve("algorithms", config_or_algorithm)
    else:
        config_cls = type(config_or_algorithm)
    target = getattr(config_cls, "trainer_class", "")
    where = f"{config_cls.__module__}.{config_cls.__qualname__}.trainer_class"
    module, _, name = target.partition(":") if isinstance(target, str) else ("", "", "")
    if not module or not name:
        raise ValueError(
            f"{where} is {target!r}; set it to the trainer as 'module:Class' (for example "
            "'my_package.trainer:MyTrainer')"
        )
    try:
        trainer = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as err:
        raise ImportError(f"{where} = {target!r} cannot be imported ({err}); fix the path") from err
    expected = getattr(trainer, "config_class", None)
    if not (isinstance(expected, type) and issubclass(config_cls, expected)):
        raise TypeError(
            f"{where} names {target}, whose config_class is {getattr(expected, '__name__', expected)},"
            f" not {config_cls.__name__}: set config_class = {config_cls.__name__} on the trainer"
        )
    return trainer


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
