"""How an `EnvironmentPool` runs its chunks: in this thread, in threads, in processes, in Ray actors.

Each runner takes the chunks of one batch and returns their `EnvStep`s in chunk order, running at
most `max_workers` at once and giving up after `timeout_s` with `EnvironmentTimeoutError`. What a
timeout can stop differs: a thread cannot be killed (it is abandoned and a fresh executor serves
the next call), worker processes and Ray actors are killed and started again on the next call.

Example:
    >>> runner = ThreadRunner(lambda m, md: len(m), max_workers=2)
    >>> runner.run([(["a"], [{}]), (["b", "c"], [{}, {}])], timeout_s=5)
    [1, 2]
    >>> runner.close()
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import pickle
import time
from collections.abc import Callable, Sequence
from typing import Any

Chunk = tuple[list, list]  # (messages, metadata) of consecutive conversations


class EnvironmentTimeoutError(TimeoutError):
    """An environment step did not finish within the pool's `timeout_s`."""


def _timeout(pending: Sequence[int], timeout_s: float | None, what: str) -> EnvironmentTimeoutError:
    return EnvironmentTimeoutError(
        f"environment step timed out after {timeout_s}s: chunk(s) {sorted(pending)} did not finish "
        f"({what}); raise the pool's timeout_s if the environment is legitimately slow, or make it "
        "return faster (a hung sandbox or judge)"
    )


class InlineRunner:
    """Every chunk in the calling thread, one after another (a timeout is checked afterwards)."""

    def __init__(self, step: Callable[[list, list], Any]) -> None:
        self.step = step

    def run(self, chunks: Sequence[Chunk], timeout_s: float | None) -> list[Any]:
        started = time.monotonic()
        results = [self.step(*chunk) for chunk in chunks]
        if timeout_s is not None and time.monotonic() - started > timeout_s:
            raise _timeout(range(len(chunks)), timeout_s, "inline mode cannot interrupt a step")
        return results

    def close(self) -> None:
        return None


class ThreadRunner:
    """Chunks in a pool of `max_workers` threads (for environments that wait on I/O)."""

    def __init__(self, step: Callable[[list, list], Any], max_workers: int) -> None:
        self.step = step
        self.max_workers = max_workers
        self._executor: cf.ThreadPoolExecutor | None = None

    def run(self, chunks: Sequence[Chunk], timeout_s: float | None) -> list[Any]:
        if self._executor is None:
            self._executor = cf.ThreadPoolExecutor(self.max_workers, thread_name_prefix="nemo-rl-env")
        futures = [self._executor.submit(self.step, *chunk) for chunk in chunks]
        done, pending = cf.wait(futures, timeout=timeout_s)
        if pending:
            for future in pending:
                future.cancel()
            # Running threads cannot be stopped: leave them to finish in the old executor.
            self._executor.shutdown(wait=False)
            self._executor = None
            raise _timeout([futures.index(f) for f in pending], timeout_s, "threads left running")
        return [future.result() for future in futures]  # re-raises a chunk's error, in order

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None


_PROCESS_ENV: Any = None


def _dumps(env: Any) -> bytes:
    # Closures (factories such as nemo-rl-envs' reward makers) need cloudpickle; its output loads
    # with plain pickle.loads in the worker, as long as cloudpickle is importable there too.
    try:
        return pickle.dumps(env)
    except Exception as plain_error:
        try:
            import cloudpickle
        except ImportError:
            try:
                from ray import cloudpickle
            except ImportError:
                raise plain_error from None
        return cloudpickle.dumps(env)


def _init_process(pickled_env: bytes) -> None:
    global _PROCESS_ENV
    _PROCESS_ENV = pickle.loads(pickled_env)


def _process_step(messages: list, metadata: list) -> Any:
    return _PROCESS_ENV.step(messages, metadata)


class ProcessRunner:
    """Chunks in `max_workers` spawned processes, each holding its own copy of the environment
    (for CPU-bound Python scoring, which threads serialise on the GIL). The environment must be
    picklable; a timeout kills the processes."""

    def __init__(self, env: Any, max_workers: int) -> None:
        try:
            self._pickled = _dumps(env)
        except Exception as err:
            raise TypeError(
                f"EnvironmentPool mode 'processes' sends the environment to worker processes, but "
                f"{type(env).__name__} cannot be pickled ({err}); use a module-level reward "
                "function or class, install cloudpickle (or Ray) for closures and lambdas, or use "
                "mode 'threads'"
            ) from err
        self.max_workers = max_workers
        self._pool: Any = None

    def run(self, chunks: Sequence[Chunk], timeout_s: float | None) -> list[Any]:
        if self._pool is None:
            self._pool = mp.get_context("spawn").Pool(
                self.max_workers, initializer=_init_process, initargs=(self._pickled,)
            )
        results = [self._pool.apply_async(_process_step, chunk) for chunk in chunks]
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        for result in results:
            result.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
        pending = [i for i, result in enumerate(results) if not result.ready()]
        if pending:
            self.close()  # kills the stuck processes; the next call starts new ones
            raise _timeout(pending, timeout_s, "worker processes killed")
        return [result.get() for result in results]  # re-raises a chunk's error, in order

    def close(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None


class _EnvActor:
    def __init__(self, env: Any) -> None:
        self.env = env

    def step(self, messages: list, metadata: list) -> Any:
        return self.env.step(messages, metadata)


class RayRunner:
    """Chunks on `max_workers` Ray actors holding the environment (for expensive environments:
    sandboxes, reward models), each reserving `num_cpus` (and `num_gpus`). Joins the driver's
    Ray connection, else `RAY_ADDRESS`, else starts a local Ray that `close()` stops."""

    def __init__(self, env: Any, max_workers: int, num_cpus: float, num_gpus: float) -> None:
        self.env = env
        self.max_workers = max_workers
        self.options = {"num_cpus": num_cpus, "num_gpus": num_gpus, "max_restarts": 0}
        self._actors: list[Any] = []
        self._owns_ray = False

    def _start(self) -> Any:
        from nemo_rl.infra.cluster.ray_runtime import connect_ray, import_ray

        ray = import_ray()
        if not self._actors:
            self._owns_ray = connect_ray() or self._owns_ray
            env_ref = ray.put(self.env)
            actor_class = ray.remote(_EnvActor).options(**self.options)
            self._actors = [actor_class.remote(env_ref) for _ in range(self.max_workers)]
        return ray

    def run(self, chunks: Sequence[Chunk], timeout_s: float | None) -> list[Any]:
        ray = self._start()
        from ray.exceptions import RayTaskError

        refs = [self._actors[i % len(self._actors)].step.remote(*c) for i, c in enumerate(chunks)]
        ready, pending = ray.wait(refs, num_returns=len(refs), timeout=timeout_s)
        if pending:
            self._kill_actors()
            raise _timeout([refs.index(r) for r in pending], timeout_s, "Ray actors killed")
        try:
            return ray.get(refs)
        except RayTaskError as err:  # the environment's own exception, as raised in the actor
            raise err.as_instanceof_cause() from None

    def _kill_actors(self) -> None:
        if self._actors:
            import ray

            for actor in self._actors:
                ray.kill(actor, no_restart=True)
            self._actors = []

    def close(self) -> None:
        self._kill_actors()
        if self._owns_ray:
            import ray

            self._owns_ray = False
            ray.shutdown()
