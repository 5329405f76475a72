"""Progress of a run: a live rich bar in a terminal, periodic plain lines everywhere else.

With no terminal (CI logs, `| tee`, nohup) a live display shows nothing, and a run used to be
silent for tens of minutes. There, a line with the step, the rate and the ETA is written after
the first step, the last one, and whenever `NEMO_RL_PROGRESS_INTERVAL` seconds (default 30)
have passed since the previous line; a step longer than that gets a heartbeat line naming its
phase, so a slow rollout is never mistaken for a hang. Every trainer gets this (the quickstart
too): `BaseTrainer.fit` owns the `RunProgress`.

Example:
    >>> with RunProgress(total_steps=2, enabled=False, interval=None) as p:
    ...     p.advance({"loss": 1.0})
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

INTERVAL_ENV = "NEMO_RL_PROGRESS_INTERVAL"
DEFAULT_INTERVAL_S = 30.0
KEYS = ("reward/mean", "loss", "val/reward/mean", "val/loss", "val/accuracy")


def progress_interval(default: float = DEFAULT_INTERVAL_S) -> float:
    """Seconds between plain progress lines: `NEMO_RL_PROGRESS_INTERVAL`, else `default`
    (0 prints every step; a value that is not a number is ignored).

    Example:
        >>> progress_interval(5.0) >= 0
        True
    """
    try:
        return max(0.0, float(os.environ.get(INTERVAL_ENV, default)))
    except ValueError:
        return default


def format_duration(seconds: float) -> str:
    """`H:MM:SS` (or `M:SS` under an hour).

    Example:
        >>> format_duration(75), format_duration(3725)
        ('1:15', '1:02:05')
    """
    total = int(round(max(0.0, seconds)))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_metrics(metrics: Mapping[str, float]) -> str:
    """The key metrics a progress line shows, in a fixed order.

    Example:
        >>> format_metrics({"loss": 0.51234, "other": 1.0})
        'loss=0.5123'
    """
    return "  ".join(f"{k}={metrics[k]:.4g}" for k in KEYS if k in metrics)


class PlainProgress:
    """Step, rate and ETA as whole lines through `emit`, at most one per `interval` seconds
    (plus the first and last step); a heartbeat thread reports a step that outlasts it.

    Example:
        >>> lines = []
        >>> plain = PlainProgress(4, emit=lines.append, interval=0, clock=iter(range(100)).__next__)
        >>> plain.advance({"loss": 2.0})
        >>> lines[0].split(" | ")[:3]
        ['step 1/4 (25%)', '1.00 s/step', 'elapsed 0:01']
    """

    def __init__(
        self,
        total_steps: int,
        start_step: int = 0,
        *,
        emit: Callable[[str], None],
        interval: float | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total_steps
        self.step = start_step
        self._first = start_step
        self._emit = emit
        self.interval = interval
        self._clock = clock
        self._started = clock()
        self._last_line = self._started
        self._phase = "starting"
        self._phase_started = self._started
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the heartbeat (only with a positive interval)."""
        if self.interval and self._thread is None:
            self._thread = threading.Thread(target=self._beat, name="nemo-rl-progress", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
            self._thread = None

    def phase(self, name: str) -> None:
        with self._lock:
            self._phase, self._phase_started = name, self._clock()

    def advance(self, metrics: Mapping[str, float]) -> None:
        with self._lock:
            self.step += 1
            now = self._clock()
            due = self.interval is not None and now - self._last_line >= self.interval
            if self.step - self._first == 1 or self.step >= self.total or due:
                self._last_line = now
                self._emit(self._line(now, metrics))

    def _line(self, now: float, metrics: Mapping[str, float]) -> str:
        done = self.step - self._first
        elapsed = now - self._started
        parts = [f"step {self.step}/{self.total} ({100 * self.step // max(1, self.total)}%)"]
        if done > 0:
            per_step = elapsed / done
            parts += [f"{per_step:.2f} s/step", f"elapsed {format_duration(elapsed)}"]
            parts.append(f"ETA {format_duration(per_step * max(0, self.total - self.step))}")
        shown = format_metrics(metrics)
        return " | ".join(parts + ([shown] if shown else []))

    def _beat(self) -> None:
        assert self.interval
        while not self._stop.wait(min(self.interval, 5.0)):
            with self._lock:
                now = self._clock()
                if now - self._last_line < self.interval:
                    continue
                self._last_line = now
                line = (
                    f"step {self.step + 1}/{self.total}: {self._phase} "
                    f"({format_duration(now - self._phase_started)} so far, elapsed "
                    f"{format_duration(now - self._started)})"
                )
            self._emit(line)


def _announce(line: str) -> None:
    # Through logging when the application configured it (the CLI does), else on stderr.
    from nemo_rl.trainers.run_header import announce

    announce(line)


class RunProgress:
    """One bar for the run's steps with the live key metrics and the phase in a terminal;
    periodic plain lines (`PlainProgress`) when there is none.

    `enabled` forces the live bar on or off (default: whether stderr is a terminal); `interval`
    is the plain lines' period (default `progress_interval()`; None: first and last step only).
    """

    KEYS = KEYS

    def __init__(
        self,
        total_steps: int,
        start_step: int = 0,
        enabled: bool | None = None,
        interval: float | None | str = "env",
    ) -> None:
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
        period = progress_interval() if interval == "env" else interval
        self.plain = (
            None
            if self.enabled
            else PlainProgress(total_steps, start_step, emit=_announce, interval=period)  # type: ignore[arg-type]
        )

    def __enter__(self) -> RunProgress:
        self._progress.start()
        if self.plain is not None:
            self.plain.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.plain is not None:
            self.plain.stop()
        self._progress.stop()

    def phase(self, name: str) -> None:
        """Show the phase the step is in (rollout, train, validate, checkpoint)."""
        self._progress.update(self._task, description=name)
        if self.plain is not None:
            self.plain.phase(name)

    def advance(self, metrics: dict[str, float]) -> None:
        """Count one finished step with its metrics."""
        self._progress.update(self._task, advance=1, description="train", metrics=format_metrics(metrics))
        if self.plain is not None:
            self.plain.advance(metrics)
