"""The `Logger` facade: one object the trainer logs to, fanning out to the configured backends.

Backends are plugins resolved by name in the `loggers` registry group (`console`, `jsonl`,
`tensorboard`, `wandb`, `mlflow`, or a package's own). The JSONL metrics file is always written,
whether or not `jsonl` is listed, so every run can be plotted and compared afterwards.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> from nemo_rl.config import LoggerConfig
    >>> from nemo_rl.infra.logging import Logger, read_metrics
    >>> run_dir = Path(tempfile.mkdtemp())
    >>> with Logger(LoggerConfig(backends=[]), run_dir) as logger:
    ...     logger.log_metrics({"loss": 0.5}, step=1, prefix="train")
    >>> read_metrics(run_dir)[0]["train/loss"]
    0.5
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from nemo_rl import registry
from nemo_rl.config import LoggerConfig
from nemo_rl.infra.logging.values import MetricValue, as_metric_value, hyperparams_as_dict

ALWAYS_ON = "jsonl"


class LoggerBackend(Protocol):
    """What a logging plugin implements; it is built as `cls(config, run_dir)`."""

    def log_metrics(self, metrics: Mapping[str, MetricValue], step: int) -> None: ...
    def log_hyperparams(self, params: Mapping[str, Any]) -> None: ...
    def close(self) -> None: ...


def backend_names(config: LoggerConfig) -> list[str]:
    """The backends a config turns on, in order, without duplicates, with `jsonl` always first.

    Example:
        >>> backend_names(LoggerConfig(backends=["console", "console"]))
        ['jsonl', 'console']
    """
    return list(dict.fromkeys([ALWAYS_ON, *config.backends]))


class Logger:
    """Logs metrics and hyperparameters to every configured backend; a context manager.

    `log_metrics(metrics, step, prefix)` names each metric `prefix/name` when a prefix is given.
    Values must be numbers (0-d tensors are unwrapped); NaN and inf are allowed and are written as
    null in metrics.jsonl.

    Example: see the module docstring.
    """

    def __init__(self, config: LoggerConfig, run_dir: Path) -> None:
        self.config = config
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._backends: list[LoggerBackend] = []
        self._closed = False
        try:
            for name in backend_names(config):
                backend_cls = registry.resolve("loggers", name)
                self._backends.append(backend_cls(config, self.run_dir))
        except BaseException:
            # A backend that fails to start must not leave the ones before it holding files open.
            self.close()
            raise

    @property
    def backends(self) -> list[LoggerBackend]:
        """The running backends, the JSONL one first."""
        return list(self._backends)

    def log_metrics(self, metrics: Mapping[str, Any], step: int, prefix: str = "") -> None:
        self._check_open()
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"step must be a non-negative int, got {step!r}")
        prefix = prefix.strip("/")
        named = {
            (f"{prefix}/{name}" if prefix else name): as_metric_value(name, value)
            for name, value in metrics.items()
        }
        for backend in self._backends:
            backend.log_metrics(named, step)

    def log_hyperparams(self, params: Any) -> None:
        """Record the run's hyperparameters: a (nested) dict or a pydantic config."""
        self._check_open()
        as_dict = hyperparams_as_dict(params)
        for backend in self._backends:
            backend.log_hyperparams(as_dict)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(
                f"the logger of {self.run_dir} is closed; log before close() or create a new Logger"
            )

    def close(self) -> None:
        """Close every backend once; later calls do nothing."""
        self._closed = True
        backends, self._backends = self._backends, []
        errors: list[BaseException] = []
        for backend in backends:
            try:
                backend.close()
            except Exception as err:  # close the others before reporting the first failure
                errors.append(err)
        if errors:
            raise errors[0]

    def __enter__(self) -> Logger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
