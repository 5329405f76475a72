"""Rich progress display for the phases of a step (rollout, training, validation).

Example:
    >>> with RunProgress(total_steps=2, enabled=False) as p:
    ...     p.advance({"loss": 1.0})
"""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class RunProgress:
    """One bar for the run's steps with the live key metrics, and a status line for the phase."""

    KEYS = ("reward/mean", "loss", "val/reward/mean", "val/loss", "val/accuracy")

    def __init__(self, total_steps: int, start_step: int = 0, enabled: bool | None = None) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.console = Console(stderr=True)
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[metrics]}"),
            console=self.console,
            transient=False,
            disable=not self.enabled,
        )
        self._task = self._progress.add_task("train", total=total_steps, completed=start_step, metrics="")

    def __enter__(self) -> RunProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._progress.stop()

    def phase(self, name: str) -> None:
        """Show the phase the step is in (rollout, train, validate, checkpoint)."""
        self._progress.update(self._task, description=name)

    def advance(self, metrics: dict[str, float]) -> None:
        shown = "  ".join(f"{k}={metrics[k]:.4g}" for k in self.KEYS if k in metrics)
        self._progress.update(self._task, advance=1, description="train", metrics=shown)
