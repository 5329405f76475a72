"""Run logging: the `Logger` facade and its backends (console, JSONL, TensorBoard, W&B, MLflow).

Example:
    >>> from nemo_rl.infra.logging import Logger, read_metrics
    >>> Logger.__name__, read_metrics.__name__
    ('Logger', 'read_metrics')
"""

from __future__ import annotations

from nemo_rl.infra.logging.jsonl import read_metrics
from nemo_rl.infra.logging.logger import Logger, LoggerBackend, backend_names

__all__ = ["Logger", "LoggerBackend", "backend_names", "read_metrics"]
