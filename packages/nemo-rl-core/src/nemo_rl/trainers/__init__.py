"""The shared training loop (`BaseTrainer`), callbacks and run results.

Names load on first use, so the light helpers here (`nemo_rl.trainers.preflight`) can be used
before torch is imported.

Example:
    >>> from nemo_rl.trainers import FitResult
    >>> FitResult.__name__
    'FitResult'
"""

from __future__ import annotations

from nemo_rl.lazy_exports import lazy_exports

_LAZY = {
    "BaseTrainer": ".base",
    "Callback": ".callbacks",
    "CallbackList": ".callbacks",
    "FitResult": ".result",
    "TrainerState": ".state",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


__all__ = ["BaseTrainer", "Callback", "CallbackList", "FitResult", "TrainerState"]
