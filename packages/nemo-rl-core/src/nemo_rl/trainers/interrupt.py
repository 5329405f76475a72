"""What a run says when it is stopped with Ctrl-C: the last checkpoint it can continue from, the
step it holds and how to continue, because after an interrupt that is the one thing the user needs.

Only complete checkpoints count: one being written when the interrupt came is removed (its
temporary directory never becomes `step_<N>`), so the checkpoint named always loads.

Example:
    >>> print(interrupt_message(7, 20, Path("runs/sft-1"), Path("runs/sft-1/checkpoints/step_5"), 5))
    interrupted during step 8 of 20; last usable checkpoint: runs/sft-1/checkpoints/step_5 (step 5, an HF model directory); resume with resume=True, run_dir='runs/sft-1'
    >>> print(interrupt_message(3, 20, Path("r"), None, None, ["nemo-rl", "train", "a.yaml", "--resume"]))
    interrupted during step 4 of 20; no checkpoint was written yet, nothing to resume: rerun to start again from step 0
"""

from __future__ import annotations

import shlex
import signal
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path


class TrainingInterrupted(KeyboardInterrupt):
    """Raised by `fit` on Ctrl-C (a KeyboardInterrupt, so code that catches that still does).

    `checkpoint` is the last complete checkpoint directory (None when there is none) and
    `checkpoint_step` its step; `str(err)` is the message the run printed.

    Example:
        >>> err = TrainingInterrupted("stopped", step=3, run_dir=Path("r"), checkpoint=None)
        >>> isinstance(err, KeyboardInterrupt), err.checkpoint_step
        (True, None)
    """

    def __init__(
        self,
        message: str,
        *,
        step: int,
        run_dir: Path | None,
        checkpoint: Path | None,
        checkpoint_step: int | None = None,
    ) -> None:
        super().__init__(message)
        self.step = step
        self.run_dir = run_dir
        self.checkpoint = checkpoint
        self.checkpoint_step = checkpoint_step


def resume_hint(run_dir: Path, command: Sequence[str] | None = None) -> str:
    """How to continue `run_dir`: the shell command (`command` + the run directory) when the run
    came from one, else the API arguments.

    Example:
        >>> resume_hint(Path("runs/a b"), ["nemo-rl", "train", "run.yaml", "--resume"])
        "nemo-rl train run.yaml --resume 'runs/a b'"
        >>> resume_hint(Path("runs/a"))
        "resume=True, run_dir='runs/a'"
    """
    if command:
        return shlex.join([*command, str(run_dir)])
    return f"resume=True, run_dir={str(run_dir)!r}"


def interrupt_message(
    step: int,
    total: int | None,
    run_dir: Path | None,
    checkpoint: Path | None,
    checkpoint_step: int | None,
    resume_command: Sequence[str] | None = None,
    checkpointing: bool = True,
) -> str:
    """One line: where the run stopped, its last usable checkpoint and how to resume.

    `step` is the number of completed steps and `total` the run's length (None: stopped while
    setting up). Example: see the module docstring.
    """
    where = f"during step {step + 1} of {total}" if total else "while setting up"
    if checkpoint is not None and run_dir is not None:
        return (
            f"interrupted {where}; last usable checkpoint: {checkpoint} (step {checkpoint_step}, "
            f"an HF model directory); resume with {resume_hint(run_dir, resume_command)}"
        )
    if not checkpointing:
        return (
            f"interrupted {where}; checkpointing is off (checkpointing.enabled: false), so there "
            "is nothing to resume: rerun to start again from step 0"
        )
    return (
        f"interrupted {where}; no checkpoint was written yet, nothing to resume: rerun to start "
        "again from step 0"
    )


@contextmanager
def deferred_interrupt() -> Iterator[None]:
    """Hold a Ctrl-C (SIGINT) that arrives inside the block until the block ends, then raise it.

    Why: checkpoint writers (torch.distributed.checkpoint) turn a KeyboardInterrupt raised inside
    them into their own exception, so an interrupt during a save crashed with a traceback instead
    of stopping cleanly. A save takes seconds; letting it finish also makes it the checkpoint the
    interrupt message names. Outside the main thread (where signals cannot be handled) it does
    nothing.

    Example:
        >>> with deferred_interrupt():
        ...     pass
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt
