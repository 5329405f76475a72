"""TensorBoard backend: scalars per step and the hyperparameters as a text table.

Needs the `tensorboard` package (`pip install nemo-rl-core[tensorboard]`); it is imported only when
this backend is chosen. Event files go to `logger.tensorboard.log_dir`, or `run_dir/tensorboard`.

Example (with tensorboard installed):
    >>> from nemo_rl.config import LoggerConfig
    >>> backend = TensorBoardBackend(LoggerConfig(), Path("runs/demo"))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nemo_rl.config import LoggerConfig
from nemo_rl.infra.logging.values import MetricValue, flatten_hyperparams


class TensorBoardBackend:
    """Writes each metric as a TensorBoard scalar at `step`."""

    # Checked by the dry run (nemo_rl.trainers.preflight) without importing them.
    required_packages = ("tensorboard",)

    def __init__(self, config: LoggerConfig, run_dir: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as err:
            raise ImportError(
                "the 'tensorboard' logger needs the tensorboard package, which is not installed: "
                "pip install nemo-rl-core[tensorboard] (or remove 'tensorboard' from "
                "logger.backends)"
            ) from err
        log_dir = Path(config.tensorboard.log_dir or Path(run_dir) / "tensorboard")
        self._writer = SummaryWriter(log_dir=str(log_dir))

    def log_metrics(self, metrics: Mapping[str, MetricValue], step: int) -> None:
        for name, value in metrics.items():
            self._writer.add_scalar(name, value, global_step=step)
        self._writer.flush()

    def log_hyperparams(self, params: Mapping[str, Any]) -> None:
        rows = "\n".join(f"| {k} | {v} |" for k, v in flatten_hyperparams(params).items())
        self._writer.add_text("hyperparams", "| name | value |\n|---|---|\n" + rows)

    def close(self) -> None:
        self._writer.close()
