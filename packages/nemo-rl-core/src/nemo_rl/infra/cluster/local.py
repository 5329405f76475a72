"""The local-process cluster: one worker process per rank on this host, joined by torch.distributed.

Workers start with the spawn method (safe with CUDA), join a process group (NCCL with one GPU
per worker, gloo on CPU) and then build and call objects on the driver's request. Every call waits
on all workers at once, so a worker that raises or dies is reported at once, with its rank, instead
of leaving the driver blocked on a rank that waits in a collective for the failed one.

Because of the spawn method, a script that creates a LocalProcessCluster must guard its entry
point with `if __name__ == "__main__":`, and factories must be picklable (a class or a module-level
function, not a lambda or a class defined inside a function).

Example:
    >>> import collections
    >>> with LocalProcessCluster(world_size=2, backend="gloo") as cluster:  # doctest: +SKIP
    ...     counters = cluster.spawn(collections.Counter)
    ...     counters.run_sharded("update", [("aab",), ("b",)])
    ...     counters.run("most_common", 1)
    [[('a', 2)], [('b', 1)]]
"""

from __future__ import annotations

import atexit
import itertools
import pickle
import socket
import threading
import time
import weakref
from collections.abc import Callable
from multiprocessing.connection import wait
from typing import Any, NoReturn

import torch
import torch.multiprocessing as mp

from nemo_rl.infra.cluster.errors import ClusterError, WorkerDiedError, WorkerError
from nemo_rl.infra.cluster.threads import cpu_threads_for
from nemo_rl.infra.cluster.worker_group import RemoteWorkerGroup
from nemo_rl.infra.cluster.worker_main import worker_main


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (for MASTER_PORT)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _resolve_backend(world_size: int, backend: str | None) -> str:
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if backend is None:
        backend = "nccl" if gpus >= world_size else "gloo"
    if backend not in ("nccl", "gloo"):
        raise ValueError(f"backend must be 'nccl', 'gloo' or None (auto), got {backend!r}")
    if backend == "nccl" and gpus < world_size:
        raise ClusterError(
            f"backend 'nccl' needs one GPU per worker: world_size={world_size} but torch sees "
            f"{gpus} GPU(s); lower the world size, check CUDA_VISIBLE_DEVICES, or use 'gloo' on CPU"
        )
    return backend


class LocalWorkerGroup(RemoteWorkerGroup):
    """The objects one `spawn` built, one per worker process, addressed by rank."""


class LocalProcessCluster:
    """`world_size` worker processes on this host in one torch.distributed process group.

    `backend` None picks NCCL when there is a GPU per worker (worker r uses cuda:r) and gloo
    otherwise. `call_timeout_s` bounds each request (None waits as long as the workers are alive);
    when one worker raises, the others get `error_grace_s` to finish before the cluster is shut
    down (they are then most likely blocked in a collective waiting for the failed rank).
    `cpu_threads` sets torch's threads in each gloo worker (None: `cpu_threads_for(None, world_size)`).
    Arguments and results travel pickled through pipes, so return CPU tensors from workers (a CUDA
    tensor would be rebuilt on the same GPU index in the driver).

    Example: see the module docstring.
    """

    def __init__(
        self,
        world_size: int,
        backend: str | None = None,
        start_timeout_s: float = 300.0,
        call_timeout_s: float | None = None,
        error_grace_s: float = 10.0,
        cpu_threads: int | None = None,
    ) -> None:
        if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
            raise ValueError(f"world_size must be a positive int, got {world_size!r}")
        self.world_size = world_size
        self.backend = _resolve_backend(world_size, backend)
        # gloo workers share this host's cores: each takes its share (threads.py says why).
        self.cpu_threads = (cpu_threads or cpu_threads_for(None, world_size)) if self.backend == "gloo" else None
        self.call_timeout_s = call_timeout_s
        self.error_grace_s = error_grace_s
        self._lock = threading.Lock()
        self._object_ids = itertools.count()
        self._broken: str | None = None
        self._running = False
        ctx = mp.get_context("spawn")
        port = free_port()
        self._conns = []
        self._procs = []
        for rank in range(world_size):
            driver_end, worker_end = ctx.Pipe(duplex=True)
            proc = ctx.Process(
                target=worker_main,
                args=(rank, world_size, port, self.backend, worker_end, self.cpu_threads),
                name=f"nemo-rl-worker-{rank}",
            )
            proc.start()
            worker_end.close()
            self._conns.append(driver_end)
            self._procs.append(proc)
        self._running = True
        self._atexit = _shutdown_at_exit(weakref.ref(self))
        atexit.register(self._atexit)
        with self._lock:
            try:
                self._collect("startup (init_process_group)", start_timeout_s)
            except BaseException:
                self._stop_processes(graceful=False)
                raise

    @property
    def device_type(self) -> str:
        return "cuda" if self.backend == "nccl" else "cpu"

    @property
    def is_running(self) -> bool:
        return self._running

    def spawn(self, factory: Callable[..., Any], *args: Any, **kwargs: Any) -> LocalWorkerGroup:
        """Build `factory(*args, **kwargs)` in every worker; the group of those objects."""
        object_id = next(self._object_ids)
        factory_name = getattr(factory, "__qualname__", type(factory).__name__)
        payloads = [(factory, args, kwargs)] * self.world_size
        type_names = self._request("spawn", object_id, payloads, f"spawn({factory_name})")
        return LocalWorkerGroup(self, object_id, type_names[0])

    def _request(self, op: str, object_id: int, payloads: list[Any], what: str) -> list[Any]:
        with self._lock:
            if self._broken:
                raise ClusterError(f"the cluster is unusable: {self._broken}; create a new one")
            if not self._running:
                raise ClusterError(f"cannot run {what}: the cluster was shut down")
            try:
                # Identical payloads (run, spawn) are pickled once, however many workers there are.
                pickled: dict[int, bytes] = {}
                messages = [
                    pickled.setdefault(id(p), pickle.dumps((op, object_id, p))) for p in payloads
                ]
            except Exception as err:
                raise TypeError(
                    f"cannot send {what} to the workers: {err}. Factories and arguments must be "
                    "picklable: use a class or a module-level function (not a lambda or a local "
                    "class) and plain data or tensors as arguments"
                ) from err
            for conn, message in zip(self._conns, messages, strict=True):
                conn.send_bytes(message)
            try:
                return self._collect(what, self.call_timeout_s)
            except KeyboardInterrupt:
                # The workers are still running the call; their late replies would be taken for
                # the next call's results, so the cluster cannot be used again.
                self._break(f"{what} was interrupted")
                raise

    def _collect(self, what: str, timeout_s: float | None) -> list[Any]:
        """One reply per rank, in rank order; raises on a worker error, death or timeout."""
        results: list[Any] = [None] * self.world_size
        errors: dict[int, tuple[str, str]] = {}
        pending = set(range(self.world_size))
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        grace_deadline: float | None = None
        sentinels = {proc.sentinel: rank for rank, proc in enumerate(self._procs)}
        conns = {id(conn): rank for rank, conn in enumerate(self._conns)}
        while pending:
            waitables = [self._conns[r] for r in pending] + list(sentinels)
            for ready in wait(waitables, timeout=1.0):
                if isinstance(ready, int):
                    continue  # deaths are handled below, after draining replies
                rank = conns[id(ready)]
                try:
                    status, value = pickle.loads(ready.recv_bytes())
                except (EOFError, OSError):  # the pipe closed because the worker died
                    self._report_death(rank, what)
                pending.discard(rank)
                if status == "ok":
                    results[rank] = value
                else:
                    errors[rank] = value
                    grace_deadline = grace_deadline or time.monotonic() + self.error_grace_s
            dead = [r for r, proc in enumerate(self._procs) if not proc.is_alive()]
            if dead:
                self._report_death(dead[0], what)
            now = time.monotonic()
            if errors and pending and grace_deadline is not None and now > grace_deadline:
                self._break(f"a worker raised in {what} and the others never finished")
                raise self._worker_error(what, errors, stuck=sorted(pending))
            if deadline is not None and now > deadline and pending:
                self._break(f"{what} timed out")
                raise TimeoutError(
                    f"{what} did not finish within {timeout_s}s on rank(s) {sorted(pending)}; the "
                    "cluster was shut down. Raise the timeout if the work is legitimately slow"
                )
        if errors:
            raise self._worker_error(what, errors, stuck=[])
        return results

    def _worker_error(
        self, what: str, errors: dict[int, tuple[str, str]], stuck: list[int]
    ) -> WorkerError:
        rank = min(errors)
        exc_type, text = errors[rank]
        notes = []
        if len(errors) > 1:
            notes.append(f"ranks {sorted(errors)} all raised; showing rank {rank}")
        if stuck:
            notes.append(
                f"ranks {stuck} did not finish within {self.error_grace_s}s, so the cluster was "
                "shut down"
            )
        return WorkerError(rank, what, exc_type, text, note="; ".join(notes))

    def _report_death(self, rank: int, what: str) -> NoReturn:
        proc = self._procs[rank]
        proc.join(timeout=5.0)  # reap it, so that its exit code is known
        self._break(f"worker rank {rank} died")
        raise WorkerDiedError(rank, what, proc.exitcode)

    def _break(self, reason: str) -> None:
        self._broken = reason
        self._stop_processes(graceful=False)

    def _stop_processes(self, graceful: bool) -> None:
        if not self._running:
            return
        self._running = False
        atexit.unregister(self._atexit)
        if graceful:
            for conn in self._conns:
                try:
                    conn.send_bytes(pickle.dumps(("stop", -1, None)))
                except (BrokenPipeError, OSError):
                    pass
            for proc in self._procs:
                proc.join(timeout=10.0)
        for proc in self._procs:
            if proc.is_alive():
                proc.terminate()
        for proc in self._procs:
            proc.join(timeout=5.0)
            if proc.is_alive():
                proc.kill()
                proc.join()
        for conn in self._conns:
            conn.close()

    def shutdown(self) -> None:
        """Stop the workers (politely, then by signal); safe to call twice."""
        with self._lock:
            self._stop_processes(graceful=True)

    def __enter__(self) -> LocalProcessCluster:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()


def _shutdown_at_exit(ref: weakref.ReferenceType[LocalProcessCluster]) -> Callable[[], None]:
    # A weak reference, so that the atexit registry does not keep every cluster alive.
    def shutdown() -> None:
        cluster = ref()
        if cluster is not None:
            cluster.shutdown()

    return shutdown
