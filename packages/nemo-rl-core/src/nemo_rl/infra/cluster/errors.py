"""Errors raised by clusters when a worker fails, dies, or the cluster can no longer be used.

Example:
    >>> err = WorkerError(1, "train_step", "ValueError", "Traceback ...\\nValueError: bad batch")
    >>> err.rank, "rank 1" in str(err)
    (1, True)
"""

from __future__ import annotations


class ClusterError(RuntimeError):
    """The cluster cannot run the request (shut down, broken by an earlier failure, bad input)."""


class WorkerError(ClusterError):
    """An exception raised inside a worker, re-raised in the driver with the worker's traceback.

    `rank` is the failing worker, `exc_type` the name of the original exception class and
    `worker_traceback` its formatted traceback (the original object may not be picklable).
    """

    def __init__(
        self,
        rank: int,
        what: str,
        exc_type: str,
        worker_traceback: str,
        note: str = "",
        node: str | None = None,
    ):
        self.rank = rank
        self.what = what
        self.exc_type = exc_type
        self.worker_traceback = worker_traceback
        self.node = node
        where = f" on node {node}" if node else ""
        message = f"worker rank {rank}{where} raised {exc_type} in {what}"
        if note:
            message += f" ({note})"
        super().__init__(f"{message}; worker traceback:\n{worker_traceback.rstrip()}")


class WorkerDiedError(ClusterError):
    """A worker process ended unexpectedly (segfault, out-of-memory kill, os._exit).

    `node` and `log_tail` (the last lines of the worker's log) are given where the launcher
    knows them (Ray: the worker may run on another host, whose stderr the driver never sees).
    """

    def __init__(
        self,
        rank: int,
        what: str,
        exitcode: int | None,
        node: str | None = None,
        log_tail: str | None = None,
        cause: str | None = None,
    ):
        self.rank = rank
        self.exitcode = exitcode
        self.node = node
        self.log_tail = log_tail
        where = f" on node {node}" if node else ""
        how = cause or describe_exitcode(exitcode)
        if log_tail is None:
            hint = (
                "Its stderr above shows why (a segfault prints a stack through faulthandler; a "
                "silent SIGKILL is usually the out-of-memory killer)"
            )
        else:
            hint = (
                "A silent SIGKILL is usually the out-of-memory killer. Last lines of its log:\n"
                + (log_tail.rstrip() or "(empty)")
            )
        super().__init__(
            f"worker rank {rank}{where} died during {what} ({how}); the cluster was shut down; "
            f"create a new cluster to continue. {hint}"
        )


def describe_exitcode(exitcode: int | None) -> str:
    """`exit code 3`, or the signal that killed the process (`killed by SIGSEGV`).

    Example:
        >>> describe_exitcode(-11)
        'killed by SIGSEGV'
    """
    import signal

    if exitcode is None:
        return "exit code unknown"
    if exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"


class RayNotAvailableError(ClusterError, ImportError):
    """`cluster.launcher: ray` was chosen but Ray cannot be imported (install nemo-rl-core[ray])."""
