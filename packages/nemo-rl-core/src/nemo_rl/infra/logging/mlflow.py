"""MLflow backend.

Needs the `mlflow` package (`pip install nemo-rl-core[mlflow]`); it is imported only when this
backend is chosen. Non-finite values are skipped, because MLflow stores would reject or mangle them
(the JSONL file still records them as null).

With no `logger.mlflow.tracking_uri` (and no MLFLOW_TRACKING_URI in the environment), the store
is `run_dir/mlflow.db` and artifacts go to `run_dir/mlartifacts`, because MLflow's own default
store (`mlflow.db` or `mlruns/`) is in the working directory, outside the run. `mlflow ui
--backend-store-uri sqlite:///<run_dir>/mlflow.db` shows it.

Example (with mlflow installed):
    >>> from nemo_rl.config import LoggerConfig
    >>> backend = MLflowBackend(LoggerConfig(backends=["mlflow"]), Path("runs/demo"))  # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
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
        name = config.mlflow.experiment_name
        if config.mlflow.tracking_uri:
            mlflow.set_tracking_uri(config.mlflow.tracking_uri)
        elif not os.environ.get("MLFLOW_TRACKING_URI"):  # the user's own store wins
            run_dir = Path(run_dir).resolve()
            run_dir.mkdir(parents=True, exist_ok=True)
            mlflow.set_tracking_uri(f"sqlite:///{run_dir / 'mlflow.db'}")
            if mlflow.get_experiment_by_name(name) is None:  # else a resumed run's, already here
                mlflow.create_experiment(name, (run_dir / "mlartifacts").as_uri())
        mlflow.set_experiment(name)
        self._run = mlflow.start_run(run_name=config.mlflow.run_name or config.run_name)

    def log_metrics(self, metrics: Mapping[str, MetricValue], step: int) -> None:
        finite = {k: float(v) for k, v in metrics.items() if math.isfinite(v)}
        self._mlflow.log_metrics(finite, step=step)

    def log_hyperparams(self, params: Mapping[str, Any]) -> None:
        self._mlflow.log_params({k: str(v) for k, v in flatten_hyperparams(params).items()})

    def close(self) -> None:
        self._mlflow.end_run()
