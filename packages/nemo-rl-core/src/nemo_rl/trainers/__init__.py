"""The shared training loop (`BaseTrainer`), callbacks and run results."""

from nemo_rl.trainers.base import BaseTrainer
from nemo_rl.trainers.callbacks import Callback, CallbackList
from nemo_rl.trainers.result import FitResult
from nemo_rl.trainers.state import TrainerState

__all__ = ["BaseTrainer", "Callback", "CallbackList", "FitResult", "TrainerState"]
