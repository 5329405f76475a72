"""What the trainer does about steps whose loss or gradient was not finite.

The training backend never applies such an update (see `nemo_rl.protocols.TrainingBackend`): the
weights, optimizer and scheduler stay as they were, and `train_step` reports how many updates it
skipped. This guard turns that report into one warning per step, a running count in the metrics,
and, after `max_nonfinite_steps` such steps in a row, an error that stops the run: a run that only
skips is not training, and NaNs that persist rarely go away by themselves.

Example:
    >>> guard = NonFiniteStepGuard(max_in_a_row=2)
    >>> metrics = {"nonfinite/skipped_updates": 1.0, "nonfinite/microbatches": 1.0, "grad_norm": float("nan")}
    >>> print(guard.check(7, metrics))
    step 7: 1 optimizer update skipped (weights, optimizer and scheduler unchanged): non-finite loss in 1 micro-batch, gradient norm nan; 1 such step in a row, the run stops at 2 (max_nonfinite_steps)
    >>> guard.check(8, metrics)  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    NonFiniteTrainingError: 2 steps in a row (the last: step 8) had a non-finite loss or gradient norm ...
"""

from __future__ import annotations

import math

from nemo_rl.protocols import NONFINITE_MICROBATCHES, SKIPPED_UPDATES

STEPS_IN_A_ROW = "nonfinite/steps_in_a_row"
SKIPPED_STEPS = "nonfinite/skipped_steps"


class NonFiniteTrainingError(RuntimeError):
    """Raised after `max_nonfinite_steps` steps in a row skipped their updates."""


class NonFiniteStepGuard:
    """Counts steps whose updates were skipped; warns for each, raises after `max_in_a_row`.

    Example:
        >>> guard = NonFiniteStepGuard(max_in_a_row=3)
        >>> guard.check(1, {"nonfinite/skipped_updates": 0.0}) is None
        True
    """

    def __init__(self, max_in_a_row: int) -> None:
        self.max_in_a_row = max_in_a_row
        self.in_a_row = 0
        self.total = 0

    def check(self, step: int, metrics: dict[str, float]) -> str | None:
        """Update the counts from one step's metrics (adding them there); the warning, if any."""
        skipped = int(metrics.get(SKIPPED_UPDATES, 0.0))
        if skipped == 0:
            self.in_a_row = 0
            metrics[STEPS_IN_A_ROW], metrics[SKIPPED_STEPS] = 0.0, float(self.total)
            return None
        self.in_a_row += 1
        self.total += 1
        metrics[STEPS_IN_A_ROW], metrics[SKIPPED_STEPS] = float(self.in_a_row), float(self.total)
        causes = []
        bad_micro = int(metrics.get(NONFINITE_MICROBATCHES, 0.0))
        if bad_micro:
            causes.append(f"non-finite loss in {bad_micro} micro-batch{'es' * (bad_micro > 1)}")
        grad_norm = metrics.get("grad_norm")
        if grad_norm is not None and not math.isfinite(grad_norm):
            causes.append(f"gradient norm {grad_norm}")
        if self.in_a_row >= self.max_in_a_row:
            raise NonFiniteTrainingError(
                f"{self.in_a_row} steps in a row (the last: step {step}) had a non-finite loss or "
                f"gradient norm ({', '.join(causes) or 'reported by the backend'}), so no update "
                "was applied; the weights are those of the last finite step and the last "
                "checkpoint is intact. Try: a lower policy.optimizer.lr, policy.max_grad_norm=1.0, "
                "policy.precision=float32 to rule out bf16 overflow, and check the rewards and "
                "the data of these steps; raise max_nonfinite_steps to tolerate more."
            )
        return (
            f"step {step}: {skipped} optimizer update{'s' * (skipped > 1)} skipped (weights, "
            f"optimizer and scheduler unchanged): {', '.join(causes) or 'reported by the backend'}"
            f"; {self.in_a_row} such step{'s' * (self.in_a_row > 1)} in a row, the run stops at "
            f"{self.max_in_a_row} (max_nonfinite_steps)"
        )
