"""Scoring finished rows while the others still generate.

`score_while_streaming` consumes a stream of finished rows (a `StreamingGeneration` backend's
`generate_stream`) in the calling thread and hands the rows finished so far to `score` in one
worker thread, so the environment scores while the engine keeps generating. Whenever the worker
is idle it takes every row finished since its last call (one call per row would cost an
environment round trip each; one call at the end would wait for the slowest row). `score` is
never called concurrently with itself, so an environment that is not thread-safe stays safe;
`take` and `apply` run in the calling thread, in the order the rows and batches arrive.

Example:
    >>> scored = []
    >>> stats = score_while_streaming(
    ...     iter([(2, "c"), (0, "a"), (1, "b")]),
    ...     take=lambda row, item: None,
    ...     score=lambda rows: [r * 10 for r in rows],
    ...     apply=lambda rows, result: scored.extend(zip(rows, result)),
    ... )
    >>> sorted(scored), stats.rows
    ([(0, 0), (1, 10), (2, 20)], 3)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class StreamStats:
    """What one `score_while_streaming` call did: rows taken, `score` calls made, and how many
    rows were handed to `score` before the stream ended (scored while others still generated)."""

    rows: int = 0
    score_calls: int = 0
    rows_sent_before_end: int = 0


class _Scorer(Generic[R]):
    """The one in-flight `score` call and the rows waiting for the next one."""

    def __init__(self, score: Callable[[list[int]], R], apply: Callable[[list[int], R], None]) -> None:
        self.score, self.apply = score, apply
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nemo-rl-score")
        self.waiting: list[int] = []
        self.in_flight: tuple[list[int], Future[R]] | None = None
        self.stats = StreamStats()

    def collect(self, block: bool) -> None:
        """Apply the in-flight call's result once it is there (waiting for it when `block`)."""
        if self.in_flight is None:
            return
        rows, future = self.in_flight
        if block or future.done():
            self.in_flight = None
            self.apply(rows, future.result())  # re-raises the scorer's error in this thread

    def send(self, streaming: bool) -> None:
        """Start a call on the waiting rows if none is in flight."""
        if self.in_flight is not None or not self.waiting:
            return
        rows, self.waiting = self.waiting, []
        self.stats.score_calls += 1
        if streaming:
            self.stats.rows_sent_before_end += len(rows)
        self.in_flight = (rows, self.pool.submit(self.score, rows))


def score_while_streaming(
    stream: Iterable[tuple[int, T]],
    take: Callable[[int, T], None],
    score: Callable[[list[int]], R],
    apply: Callable[[list[int], R], None],
) -> StreamStats:
    """Consume `stream`, scoring finished rows concurrently (see the module docstring).

    `take(row, item)` records each finished row as it arrives; `score(rows)` runs in the worker
    thread on rows already taken; `apply(rows, result)` stores its result. Returns once every row
    is taken and every result applied. An error in any of them stops the stream (closing it,
    which cancels a generation backend's unfinished rows) and is raised here.

    Example: see the module docstring.
    """
    scorer: _Scorer[R] = _Scorer(score, apply)
    iterator = iter(stream)
    try:
        for row, item in iterator:
            take(row, item)
            scorer.stats.rows += 1
            scorer.waiting.append(row)
            scorer.collect(block=False)
            scorer.send(streaming=True)
        while scorer.in_flight is not None or scorer.waiting:
            scorer.collect(block=True)
            scorer.send(streaming=False)
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()
        # After an error the in-flight call is not waited for; its result is dropped.
        scorer.pool.shutdown(wait=scorer.in_flight is None, cancel_futures=True)
    return scorer.stats
