"""Call a user function with a time limit, on reusable daemon threads.

Python cannot kill a thread, so a call that runs past its limit is abandoned: the caller gets
`CallTimedOut` at the deadline and goes on. The abandoned call is then asked to stop: an
exception (`CallAbandoned`, a `BaseException`, so `except Exception` in user code does not
swallow it) is raised in its thread at its next Python bytecode. A call spinning in Python code
(a runaway sympy simplification) stops at once; one blocked in C (a socket read, `time.sleep`)
stops when that returns. Its thread is never reused. The threads are daemons, so a stuck call
never keeps the process alive at exit (a `ThreadPoolExecutor` joins its threads at exit and
would hang there). A thread that finishes a call in time waits for the next one, so the common
case costs a queue hand-over, not a new thread.

Example:
    >>> call_with_timeout(lambda: 6 * 7, timeout_s=5.0)
    42
    >>> import time
    >>> try:
    ...     call_with_timeout(lambda: time.sleep(5), timeout_s=0.05)
    ... except CallTimedOut as err:
    ...     print(err.timeout_s)
    0.05
"""

from __future__ import annotations

import ctypes
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

R = TypeVar("R")


class CallTimedOut(TimeoutError):
    """The call did not return within `timeout_s` seconds (it may still be running)."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__(f"the call did not return within {timeout_s:g} s")
        self.timeout_s = timeout_s


class CallAbandoned(BaseException):
    """Raised inside an abandoned call's thread to stop it (never seen by the caller)."""


class _Call:
    """One submitted call: its function, its future, and where and whether it runs."""

    __slots__ = ("fn", "future", "thread_id", "abandoned")

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn
        self.future: Future[Any] = Future()
        self.thread_id: int | None = None
        self.abandoned = False

    def abandon(self) -> None:
        """Mark the call abandoned, then stop it if it is still running.

        The order matters: the worker checks `abandoned` only after it has set the future, so
        either the future is already done here (nothing to stop, the thread goes on serving)
        or the worker will see `abandoned` and retire its thread instead of serving again;
        an exception sent now can never hit a later call.
        """
        self.abandoned = True
        if not self.future.done() and self.thread_id is not None:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(self.thread_id), ctypes.py_object(CallAbandoned)
            )


class _DaemonWorkers:
    """Daemon threads that run submitted calls; a free one is reused, else a new one starts."""

    def __init__(self) -> None:
        self._idle: queue.SimpleQueue[queue.SimpleQueue[_Call]] = queue.SimpleQueue()

    def submit(self, fn: Callable[[], Any]) -> _Call:
        call = _Call(fn)
        try:
            inbox = self._idle.get_nowait()
        except queue.Empty:
            inbox = queue.SimpleQueue()
            threading.Thread(target=self._work, args=(inbox,), name="nemo-rl-call", daemon=True).start()
        inbox.put(call)
        return call

    def _work(self, inbox: queue.SimpleQueue[_Call]) -> None:
        try:
            while True:
                call = inbox.get()
                call.thread_id = threading.get_ident()
                if call.abandoned:  # timed out before it started: do not start it at all
                    return
                try:
                    call.future.set_result(call.fn())
                except BaseException as err:  # noqa: BLE001 - handed to the caller's thread
                    call.future.set_exception(err)
                if call.abandoned:  # a stop may still be on its way to this thread: retire it
                    return
                del call  # drop the finished call before waiting for the next
                self._idle.put(inbox)
        except CallAbandoned:  # arrived after the call had ended: the thread retires anyway
            return


_WORKERS = _DaemonWorkers()


def call_with_timeout(fn: Callable[[], R], timeout_s: float | None) -> R:
    """`fn()`, or `CallTimedOut` when it has not returned after `timeout_s` seconds.

    `timeout_s=None` calls `fn` in this thread with no limit. Exceptions of `fn` are re-raised
    as they are (a `TimeoutError` of its own stays distinct from `CallTimedOut`).

    Example:
        >>> call_with_timeout(lambda: "no limit", None)
        'no limit'
    """
    if timeout_s is None:
        return fn()
    if timeout_s <= 0:
        raise ValueError(f"call_with_timeout: timeout_s={timeout_s}; use a positive number or None")
    call = _WORKERS.submit(fn)
    try:
        return call.future.result(timeout=timeout_s)
    except TimeoutError:
        if not call.future.done():
            call.abandon()
            raise CallTimedOut(timeout_s) from None
    # fn raised a TimeoutError of its own (or returned just as the wait ended): its outcome.
    return call.future.result()
