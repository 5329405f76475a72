"""Lifecycle callbacks: the one way to hook into a run without editing the trainer.

Every event the loop passes through has a method; a callback overrides the ones it needs. The
trainer passes itself so a callback can read `trainer.state`, `trainer.config` or the backends.

Example:
    >>> from nemo_rl.trainers.callbacks import Callback
    >>> class StopAtReward(Callback):
    ...     def on_step_end(self, trainer, metrics):
    ...         if metrics.get("reward/mean", 0.0) > 0.9:
    ...             trainer.request_stop("reward reached 0.9")
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nemo_rl.trainers.base import BaseTrainer
    from nemo_rl.trainers.result import FitResult


class Callback:
    """Base class with a no-op for every lifecycle event."""

    def on_fit_start(self, trainer: BaseTrainer) -> None:
        """After setup (and any resume), before the first step; `trainer.state.step` is where
        the run starts."""

    def on_fit_end(self, trainer: BaseTrainer, result: FitResult) -> None:
        """After the last step, with the run's `FitResult`."""

    def on_step_start(self, trainer: BaseTrainer, step: int) -> None:
        """Before step `step + 1` takes its rows (`step` counts the steps already done)."""

    def on_rollout_end(self, trainer: BaseTrainer, rollout: Any, metrics: dict[str, float]) -> None:
        """GRPO: after the rollout of a step is scored, with its advantages computed, before the
        policy trains on it. `rollout` is the batch (`rewards`, `shaped_rewards`, `advantages`,
        `messages`, ...); `metrics` the step's metrics so far. To change advantages, register an
        advantage estimator instead of editing the batch here."""

    def on_step_end(self, trainer: BaseTrainer, metrics: dict[str, float]) -> None:
        """After a step (and its validation, if one ran), with everything it logged, before its
        checkpoint is written."""

    def on_validation_end(self, trainer: BaseTrainer, metrics: dict[str, float]) -> None:
        """After a validation pass, with its `val/`-prefixed metrics."""

    def on_checkpoint(self, trainer: BaseTrainer, path: Path) -> None:
        """After a checkpoint is complete at `path`."""


EVENTS = tuple(name for name in vars(Callback) if name.startswith("on_"))


class CallbackList(Callback):
    """Calls every callback in order for each event.

    Example:
        >>> CallbackList([Callback()]).on_step_start(None, 0)
    """

    def __init__(self, callbacks: list[Callback] | None = None) -> None:
        self.callbacks = list(callbacks or [])
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(
                    f"callback {cb!r} is a {type(cb).__name__}, not a nemo_rl Callback; subclass "
                    "nemo_rl.trainers.Callback and override the on_* methods you need"
                )

    def __getattribute__(self, name: str) -> Any:
        if name.startswith("on_") and name in EVENTS:
            callbacks = object.__getattribute__(self, "callbacks")

            def dispatch(*args: Any, **kwargs: Any) -> None:
                for cb in callbacks:
                    getattr(cb, name)(*args, **kwargs)

            return dispatch
        return object.__getattribute__(self, name)
