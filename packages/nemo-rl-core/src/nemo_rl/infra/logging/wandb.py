"""Weights & Biases backend.

Needs the `wandb` package (`pip install nemo-rl-core[wandb]`); it is imported only when this
backend is chosen. The run is named `logger.wandb.name`, else `logger.run_name`.

Example (with wandb installed and logged in):
    >>> from nemo_rl.config import LoggerConfig
    >>> backend = WandbBackend(LoggerConfig(backends=["wandb"]), Path("runs/demo"))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nemo_rl.config import LoggerConfig
from nemo_rl.infra.logging.values import MetricValue, flatten_hyperparams


class WandbBackend:
    """Logs metrics with `run.log(metrics, step=step)` and hyperparameters into the run config."""

    # Checked by the dry run (nemo_rl.trainers.preflight) without importing them.
    required_packages = ("wandb",)

    def __init__(self, config: LoggerConfig, run_dir: Path) -> None:
        try:
            import wandb
        except ImportError as err:
            raise ImportError(
                "the 'wandb' logger needs the wandb package, which is not installed: "
                "pip install nemo-rl-core[wandb] (or remove 'wandb' from logger.backends)"
            ) from err
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        self._run = wandb.init(
            project=config.wandb.project,
            name=config.wandb.name or config.run_name,
            entity=config.wandb.entity,
            dir=str(run_dir),
        )

    def log_metrics(self, metrics: Mapping[str, MetricValue], step: int) -> None:
        self._run.log(dict(metrics), step=step)

    def log_hyperparams(self, params: Mapping[str, Any]) -> None:
        self._run.config.update(flatten_hyperparams(params), allow_val_change=True)

    def close(self) -> None:
        self._run.finish()
