"""EnvironmentPool: where environment steps run (inline, or split over threads).

Environments are plain Python objects; the pool decides how a batch is executed. "inline" calls
`env.step` once; "threads" splits the batch into up to `max_workers` contiguous chunks, steps them
concurrently and merges the results in the original order. Threads help when the environment
waits on something outside the interpreter (subprocesses, HTTP judges, sandboxes); pure-Python
scoring is serialised by the GIL. Process and Ray actor modes are planned and not implemented yet.

Example:
    >>> from nemo_rl.environments import RewardEnvironment
    >>> pool = EnvironmentPool(RewardEnvironment(lambda p, r: float(len(r))), "threads", 2)
    >>> convos = [[{"role": "assistant", "content": "x" * n}] for n in (1, 2, 3)]
    >>> pool.step(convos, [{}, {}, {}]).total_reward().tolist()
    [1.0, 2.0, 3.0]
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

from nemo_rl.environments.callable_reward import as_environment
from nemo_rl.environments.env_step import check_env_step, merge_env_steps
from nemo_rl.protocols import EnvStep, Message

MODES = ("inline", "threads")
PLANNED_MODES = ("processes", "ray")


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
    """Runs an environment's `step` over a batch, inline or in threads (results in batch order).

    `env` may be anything `as_environment` accepts (an Environment, a reward callable, ...). In
    "threads" mode the environment's `step` is called concurrently on different chunks, so it must
    not mutate shared state (keep per-conversation state in the returned metadata).

    Example:
        >>> pool = EnvironmentPool(lambda prompt, response: 1.0)
        >>> pool.step([[{"role": "assistant", "content": "hi"}]], [{}]).done
        [True]
    """

    def __init__(
        self,
        env: Any,
        mode: Literal["inline", "threads"] = "inline",
        max_workers: int = 4,
    ) -> None:
        if mode in PLANNED_MODES:
            raise ValueError(
                f"EnvironmentPool mode {mode!r} is planned but not available yet; use 'inline' "
                "or 'threads'"
            )
        if mode not in MODES:
            raise ValueError(f"EnvironmentPool mode {mode!r} is unknown; use one of {MODES}")
        if max_workers < 1:
            raise ValueError(f"EnvironmentPool max_workers={max_workers}; use 1 or more")
        self.env = as_environment(env)
        self.mode = mode
        self.max_workers = max_workers

    @property
    def _env_name(self) -> str:
        return type(self.env).__name__

    def _step_chunk(self, messages: list, metadata: list) -> EnvStep:
        step = self.env.step(messages, metadata)
        check_env_step(step, len(messages), self._env_name)
        return step

    def step(self, messages: list[list[Message]], metadata: list[dict[str, Any]]) -> EnvStep:
        """Step every conversation once; the result has one entry per conversation, in order."""
        if len(messages) != len(metadata):
            raise ValueError(
                f"EnvironmentPool.step got {len(messages)} conversations but {len(metadata)} "
                "metadata rows; pass one row per conversation"
            )
        bounds = chunk_bounds(len(messages), self.max_workers if self.mode == "threads" else 1)
        if len(bounds) <= 1:
            return self._step_chunk(messages, metadata)
        with ThreadPoolExecutor(max_workers=len(bounds), thread_name_prefix="nemo-rl-env") as pool:
            futures = [
                pool.submit(self._step_chunk, messages[start:stop], metadata[start:stop])
                for start, stop in bounds
            ]
            steps = [future.result() for future in futures]  # re-raises a chunk's error here
        return merge_env_steps(steps)
