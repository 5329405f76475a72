"""A one-line rich summary per logged step: the few metrics a person watches, compactly formatted.

Example:
    >>> format_metric_value(0.000001234)
    '1.23e-06'
    >>> format_metric_value(0.41234)
    '0.4123'
    >>> summary_line({"train/loss": 0.41234, "train/reward": 0.75}, step=12)
    'step 12 train | loss 0.4123 | reward 0.75'
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.console import Console

from nemo_rl.config import LoggerConfig
from nemo_rl.infra.logging.values import MetricValue

# The metrics shown first when present, matched on the last '/'-separated part of the name; the
# line is filled up to MAX_SHOWN with the other metrics in the order they were logged.
PRIORITY_NAMES = (
    "loss",
    "reward",
    "mean_reward",
    "accuracy",
    "kl",
    "grad_norm",
    "lr",
    "tokens_per_sec",
    "step_time",
)
MAX_SHOWN = 6


def format_metric_value(value: MetricValue) -> str:
    """Ints as they are, floats with 4 significant digits, tiny or huge ones in scientific form."""
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
        return f"{value:.2e}"
    return f"{value:.4g}"


def _split(name: str) -> tuple[str, str]:
    prefix, _, short = name.rpartition("/")
    return prefix, short


def summary_line(metrics: Mapping[str, MetricValue], step: int) -> str:
    """`step N [prefix] | name value | ...` with at most MAX_SHOWN metrics, priority names first.

    When all metrics share one prefix (`train/`), it is written once after the step.
    """
    names = list(metrics)
    prefixes = {_split(name)[0] for name in names}
    common = prefixes.pop() if len(prefixes) == 1 else ""
    rank = {short: i for i, short in enumerate(PRIORITY_NAMES)}
    ordered = sorted(names, key=lambda name: rank.get(_split(name)[1], len(rank)))
    shown = ordered[:MAX_SHOWN]
    label = f"step {step} {common}".rstrip()
    parts = [
        f"{_split(name)[1] if common else name} {format_metric_value(metrics[name])}"
        for name in shown
    ]
    return " | ".join([label, *parts])


class ConsoleBackend:
    """Prints `summary_line` for every `log_metrics` call.

    Hyperparameters are not printed: the trainer prints the resolved config once at start.

    Example:
        >>> from nemo_rl.config import LoggerConfig
        >>> ConsoleBackend(LoggerConfig(), Path(".")).log_metrics({"loss": 1.0}, step=1)
        step 1 | loss 1
    """

    def __init__(self, config: LoggerConfig, run_dir: Path, console: Console | None = None) -> None:
        self._console = console or Console()

    def log_metrics(self, metrics: Mapping[str, MetricValue], step: int) -> None:
        if metrics:
            self._console.print(summary_line(metrics, step), soft_wrap=True, highlight=False)

    def log_hyperparams(self, params: Mapping[str, Any]) -> None:
        return None

    def close(self) -> None:
        return None
