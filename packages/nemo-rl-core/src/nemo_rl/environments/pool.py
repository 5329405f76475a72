"""EnvironmentPool: where environment steps run (inline, threads, processes or Ray actors).

Environments are plain Python objects; the pool decides how a batch is executed. "inline" calls
`env.step` once; the other modes split the batch into up to `max_workers` contiguous chunks, step
them concurrently (at most `max_workers` at a time) and merge the results in the original order.
Threads help when the environment waits on something outside the interpreter (subprocesses, HTTP
judges, sandboxes); processes when it scores in pure Python (the GIL serialises threads); Ray
actors when it is expensive (code execution, reward models) or should run on other nodes.
`timeout_s` bounds each call: a step that does not finish raises `EnvironmentTimeoutError` naming
the chunks, and stuck processes or actors are killed (`pool_runners.py`).

Example:
    >>> from nemo_rl.environments import RewardEnvironment
    >>> pool = EnvironmentPool(RewardEnvironment(lambda p, r: float(len(r))), "threads", 2)
    >>> convos = [[{"role": "assistant", "content": "x" * n}] for n in (1, 2, 3)]
    >>> pool.step(convos, [{}, {}, {}]).total_reward().tolist()
    [1.0, 2.0, 3.0]
"""

from __future__ import annotations

import time
from typing import Any, Literal

from nemo_rl.environments.callable_reward import as_environment
from nemo_rl.environments.env_step import check_env_step, merge_env_steps
from nemo_rl.environments.pool_runners import (
    EnvironmentTimeoutError,
    InlineRunner,
    ProcessRunner,
    RayRunner,
    ThreadRunner,
)
from nemo_rl.protocols import EnvStep, Message

MODES = ("inline", "threads", "processes", "ray")
"""Where an `EnvironmentPool` runs its environments (`environment_pool.mode`)."""
PoolMode = Literal["inline", "threads", "processes", "ray"]
__all__ = ["EnvironmentPool", "EnvironmentTimeoutError", "MODES", "chunk_bounds"]


def chunk_bounds(batch_size: int, num_chunks: int) -> list[tuple[int, int]]:
    """Split `range(batch_size)` into `num_chunks` contiguous, nearly equal [start, stop) ranges.

    Example:
        >>> chunk_bounds(5, 2)
        [(0, 3), (3, 5)]
    """
    num_chunks = max(1, min(num_chunks, batch_size))
    base, extra = divmod(batch_size, num_chunks)
    bounds, start = [], 0
    for i in range(num_chunks):
        stop = start + base + (1 if i < extra else 0)
        bounds.append((start, stop))
        start = stop
    return bounds


class EnvironmentPool:
    """Runs an environment's `step` over a batch in the chosen mode (results in batch order).

    `env` may be anything `as_environment` accepts (an Environment, a reward callable, ...). In
    "threads" mode the environment's `step` is called concurrently on different chunks, so it must
    not mutate shared state (keep per-conversation state in the returned metadata); "processes"
    and "ray" give each worker its own copy (the environment must be picklable). `timeout_s`
    (None: no limit) bounds each `step` call; `ray_num_cpus`/`ray_num_gpus` are what each Ray
    actor reserves. `busy_s` adds up the time spent in `step`. Call `close()` (or use `with`) to
    stop worker processes and actors.

    Example:
        >>> pool = EnvironmentPool(lambda prompt, response: 1.0)
        >>> pool.step([[{"role": "assistant", "content": "hi"}]], [{}]).done
        [True]
    """

    def __init__(
        self,
        env: Any,
        mode: PoolMode = "inline",
        max_workers: int = 4,
        timeout_s: float | None = None,
        ray_num_cpus: float = 1.0,
        ray_num_gpus: float = 0.0,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"EnvironmentPool mode {mode!r} is unknown; use one of {MODES}")
        if max_workers < 1:
            raise ValueError(f"EnvironmentPool max_workers={max_workers}; use 1 or more")
        if timeout_s is not None and timeout_s <= 0:
            raise ValueError(f"EnvironmentPool timeout_s={timeout_s}; use a positive number or None")
        self.env = as_environment(env)
        self.mode = mode
        self.max_workers = max_workers
        self.timeout_s = timeout_s
        self.busy_s = 0.0
        if mode == "inline":
            self._runner: Any = InlineRunner(self.env.step)
        elif mode == "threads":
            self._runner = ThreadRunner(self.env.step, max_workers)
        elif mode == "processes":
            self._runner = ProcessRunner(self.env, max_workers)
        else:
            self._runner = RayRunner(self.env, max_workers, ray_num_cpus, ray_num_gpus)

    @property
    def _env_name(self) -> str:
        return type(self.env).__name__

    def step(self, messages: list[list[Message]], metadata: list[dict[str, Any]]) -> EnvStep:
        """Step every conversation once; the result has one entry per conversation, in order."""
        if len(messages) != len(metadata):
            raise ValueError(
                f"EnvironmentPool.step got {len(messages)} conversations but {len(metadata)} "
                "metadata rows; pass one row per conversation"
            )
        started = time.perf_counter()
        try:
            bounds = chunk_bounds(len(messages), 1 if self.mode == "inline" else self.max_workers)
            chunks = [(messages[a:b], metadata[a:b]) for a, b in bounds]
            steps = self._runner.run(chunks, self.timeout_s)
            for step, (start, stop) in zip(steps, bounds, strict=True):
                check_env_step(step, stop - start, self._env_name)
            return steps[0] if len(steps) == 1 else merge_env_steps(steps)
        finally:
            self.busy_s += time.perf_counter() - started

    def close(self) -> None:
        """Stop the pool's threads, processes or actors (a later `step` starts them again)."""
        self._runner.close()

    def __enter__(self) -> EnvironmentPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
