"""MLflow backend.

Needs the `mlflow` package (`pip install nemo-rl-core[mlflow]`); it is imported only when this
backend is chosen. Non-finite values are skipped, because MLflow stores would reject or mangle them
(the JSONL file still records them as null).

Example (with mlflow installed):
    >>> from nemo_rl.config import LoggerConfig
    >>> backend = MLflowBackend(LoggerConfig(backends=["mlflow"]), Path("runs/demo"))  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nemo_rl.config import LoggerConfig
from nemo_rl.infra.logging.values import MetricValue, flatten_hyperparams


class MLflowBackend:
    """Starts an MLflow run in `logger.mlflow.experiment_name` and logs metrics and params to it."""

    # Checked by the dry run (nemo_rl.trainers.preflight) without importing them.
    required_packages = ("mlflow",)

    def __init__(self, config: LoggerConfig, run_dir: Path) -> None:
        try:
            import mlflow
        except ImportError as err:
            raise ImportError(
                "the 'mlflow' logger needs the mlflow package, which is not installed: "
                "pip install nemo-rl-core[mlflow] (or remove 'mlflow' from logger.backends)"
            ) from err
        self._mlflow = mlflow
        if config.mlflow.tracking_uri:
            mlflow.set_tracking_uri(config.mlflow.tracking_uri)
        mlflow.set_experiment(config.mlflow.experiment_name)
        self._run = mlflow.start_run(run_name=config.mlflow.run_name or config.run_name)

    def log_metrics(self, metrics: Mapping[str, MetricValue], step: int) -> None:
        finite = {k: float(v) for k, v in metrics.items() if math.isfinite(v)}
        self._mlflow.log_metrics(finite, step=step)

    def log_hyperparams(self, params: Mapping[str, Any]) -> None:
        self._mlflow.log_params({k: str(v) for k, v in flatten_hyperparams(params).items()})

    def close(self) -> None:
        self._mlflow.end_run()
