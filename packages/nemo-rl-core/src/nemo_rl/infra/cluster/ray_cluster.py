"""The Ray cluster: one Ray actor per rank, in a placement group, joined by torch.distributed.

`RayCluster` is the `LocalProcessCluster` of many hosts: the same worker code (`RayWorker` serves
the local worker's requests), a process group inside the actors (NCCL with one GPU per actor,
gloo with one CPU each), the same `spawn`/`run`/`run_sharded` interface. It joins a running Ray
cluster (`address`, else `RAY_ADDRESS`) or starts a local instance that it stops at shutdown.

Each call waits on every rank at once: a method that raises, or an actor that dies (killed,
out of memory, its node lost), is reported within seconds as one error naming the rank, its node
and the last lines of its log, and the cluster is then torn down instead of leaving the driver
blocked on ranks that wait in a collective for the dead one. Ctrl-C stops the actors too.

Example:
    >>> import collections
    >>> with RayCluster(world_size=2) as cluster:  # doctest: +SKIP
    ...     counters = cluster.spawn(collections.Counter)
    ...     counters.run_sharded("update", [("aab",), ("b",)])
    ...     counters.run("most_common", 1)
    [[('a', 2)], [('b', 1)]]
"""

from __future__ import annotations

import atexit
import itertools
import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, NoReturn

from nemo_rl.infra.cluster.errors import ClusterError, WorkerDiedError, WorkerError
from nemo_rl.infra.cluster.ray_runtime import (
    connect_ray,
    import_ray,
    placement_bundles,
    rank_order,
    reserve,
)
from nemo_rl.infra.cluster.ray_worker import RayWorker, read_log_tail
from nemo_rl.infra.cluster.threads import cpu_threads_for
from nemo_rl.infra.cluster.worker_group import RemoteWorkerGroup


class RayWorkerGroup(RemoteWorkerGroup):
    """The objects one `spawn` built, one per actor, addressed by rank."""


class RayCluster:
    """`world_size` Ray actors in one placement group and one torch.distributed process group.

    `gpus` True gives each actor a GPU (NCCL), False one CPU (gloo); None picks GPUs when the Ray
    cluster has one per worker. `address` joins a running cluster (else `RAY_ADDRESS`, else a
    local instance is started with `num_cpus`). `placement_strategy` is Ray's ("PACK": fill a
    node before the next; "SPREAD", "STRICT_PACK", "STRICT_SPREAD"). Ranks are ordered by node, so
    `LOCAL_RANK` counts within a node. `call_timeout_s`, `error_grace_s` and `cpu_threads` mean
    what they mean for `LocalProcessCluster`; `nodes[rank]` says where each rank runs.

    Example: see the module docstring.
    """

    def __init__(
        self,
        world_size: int,
        gpus: bool | None = None,
        address: str | None = None,
        num_cpus: int | None = None,
        placement_strategy: str = "PACK",
        start_timeout_s: float = 300.0,
        call_timeout_s: float | None = None,
        error_grace_s: float = 10.0,
        cpu_threads: int | None = None,
        log_lines: int = 20,
    ) -> None:
        if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
            raise ValueError(f"world_size must be a positive int, got {world_size!r}")
        ray = import_ray()
        self.world_size = world_size
        self.call_timeout_s = call_timeout_s
        self.error_grace_s = error_grace_s
        self.log_lines = log_lines
        self._lock = threading.Lock()
        self._object_ids = itertools.count()
        self._broken: str | None = None
        self._running = False
        self._actors: list[Any] = []
        self._group = None
        self.nodes: list[dict[str, Any]] = []
        self._owns_ray = connect_ray(address, num_cpus)
        try:
            if gpus is None:
                gpus = ray.cluster_resources().get("GPU", 0) >= world_size
            self.backend = "nccl" if gpus else "gloo"
            self.cpu_threads = None if gpus else (cpu_threads or cpu_threads_for(None, world_size))
            self._running = True
            self._atexit = _shutdown_at_exit(weakref.ref(self))
            atexit.register(self._atexit)
            self._start(ray, gpus, placement_strategy, start_timeout_s)
        except BaseException:
            self._stop(graceful=False)
            if self._owns_ray:  # a local instance this cluster started must not outlive it
                self._owns_ray = False
                ray.shutdown()
            raise

    # ------------------------------------------------------------------------- start
    def _start(self, ray: Any, gpus: bool, strategy: str, timeout_s: float) -> None:
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        self._group = reserve(placement_bundles(self.world_size, gpus), strategy, timeout_s)
        actor_class = ray.remote(RayWorker)
        actors = [
            actor_class.options(
                num_cpus=1,
                num_gpus=1 if gpus else 0,
                max_restarts=0,
                max_task_retries=0,
                scheduling_strategy=PlacementGroupSchedulingStrategy(
                    self._group, placement_group_bundle_index=index
                ),
            ).remote()
            for index in range(self.world_size)
        ]
        self._actors = actors
        infos = self._collect([a.node_info.remote() for a in actors], "startup", timeout_s, False)
        order = rank_order([info["node_id"] for info in infos])
        self._actors = [actors[i] for i in order]
        self.nodes = [infos[i] for i in order]
        per_node: dict[str, int] = {}
        local_ranks = []
        for info in self.nodes:
            local_ranks.append(per_node.get(info["node_id"], 0))
            per_node[info["node_id"]] = local_ranks[-1] + 1
        master = self.nodes[0]
        refs = [
            actor.init_distributed.remote(
                rank, self.world_size, master["ip"], master["free_port"], self.backend,
                self.cpu_threads, local_ranks[rank], per_node[self.nodes[rank]["node_id"]],
            )
            for rank, actor in enumerate(self._actors)
        ]
        self._collect(refs, "startup (init_process_group)", timeout_s)

    @property
    def device_type(self) -> str:
        return "cuda" if self.backend == "nccl" else "cpu"

    @property
    def is_running(self) -> bool:
        return self._running

    @property
    def num_nodes(self) -> int:
        """The Ray nodes the workers landed on."""
        return len({info["node_id"] for info in self.nodes})

    # ----------------------------------------------------------------------- requests
    def spawn(self, factory: Callable[..., Any], *args: Any, **kwargs: Any) -> RayWorkerGroup:
        """Build `factory(*args, **kwargs)` in every actor; the group of those objects."""
        object_id = next(self._object_ids)
        factory_name = getattr(factory, "__qualname__", type(factory).__name__)
        payloads = [(factory, args, kwargs)] * self.world_size
        type_names = self._request("spawn", object_id, payloads, f"spawn({factory_name})")
        return RayWorkerGroup(self, object_id, type_names[0])

    def _request(self, op: str, object_id: int, payloads: list[Any], what: str) -> list[Any]:
        ray = import_ray()
        with self._lock:
            if self._broken:
                raise ClusterError(f"the cluster is unusable: {self._broken}; create a new one")
            if not self._running:
                raise ClusterError(f"cannot run {what}: the cluster was shut down")
            try:
                # Identical payloads (run, spawn) go to the object store once, not once per rank.
                shared: dict[int, Any] = {}
                refs = [shared.setdefault(id(p), ray.put(p)) for p in payloads]
            except Exception as err:
                raise TypeError(
                    f"cannot send {what} to the workers: {err}. Arguments must be serialisable "
                    "(plain data, tensors, importable classes and functions)"
                ) from err
            calls = [
                actor.handle.remote(op, object_id, ref)
                for actor, ref in zip(self._actors, refs, strict=True)
            ]
            try:
                return self._collect(calls, what, self.call_timeout_s)
            except KeyboardInterrupt:
                self._break(f"{what} was interrupted")  # the actors would still be running it
                raise

    def _collect(
        self, refs: list[Any], what: str, timeout_s: float | None, replies: bool = True
    ) -> list[Any]:
        """One result per rank, in rank order; raises on a worker error, death or timeout.
        `replies`: the calls answer `(status, value)` (else plain values)."""
        ray = import_ray()
        from ray.exceptions import RayActorError

        results: list[Any] = [None] * len(refs)
        errors: dict[int, tuple[str, str]] = {}
        pending = {ref: rank for rank, ref in enumerate(refs)}
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        grace_deadline: float | None = None
        while pending:
            # One second at most, so that deaths, the grace period and timeouts are all noticed.
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            for ref in ready:
                rank = pending.pop(ref)
                try:
                    value = ray.get(ref)
                except RayActorError as err:
                    self._report_death(rank, what, err)
                except Exception as err:  # e.g. the arguments could not be deserialised there
                    value = ("error", (type(err).__name__, str(err)))
                status, value = value if replies else ("ok", value)
                if status == "ok":
                    results[rank] = value
                else:
                    errors[rank] = value
                    grace_deadline = grace_deadline or time.monotonic() + self.error_grace_s
            now = time.monotonic()
            if errors and pending and grace_deadline is not None and now > grace_deadline:
                self._break(f"a worker raised in {what} and the others never finished")
                raise self._worker_error(what, errors, stuck=sorted(pending.values()))
            if deadline is not None and now > deadline and pending:
                self._break(f"{what} timed out")
                raise TimeoutError(
                    f"{what} did not finish within {timeout_s}s on rank(s) "
                    f"{sorted(pending.values())}; the cluster was shut down. Raise the timeout if "
                    "the work is legitimately slow"
                )
        if errors:
            raise self._worker_error(what, errors, stuck=[])
        return results

    # ------------------------------------------------------------------------- errors
    def _node_name(self, rank: int) -> str | None:
        if rank >= len(self.nodes):
            return None
        info = self.nodes[rank]
        return f"{info['host']} ({info['ip']}, pid {info['pid']})"

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
        return WorkerError(rank, what, exc_type, text, "; ".join(notes), self._node_name(rank))

    def log_tail(self, rank: int) -> str:
        """The last `log_lines` lines of rank `rank`'s stdout/stderr files, read on its node."""
        if rank >= len(self.nodes) or not self.nodes[rank]["logs"]:
            return ""
        ray = import_ray()
        info = self.nodes[rank]
        here = info["node_id"] == ray.get_runtime_context().get_node_id()
        if here or all(os.path.isfile(path) for path in info["logs"]):  # or a shared filesystem
            return read_log_tail(info["logs"], self.log_lines)
        # Another host: read the files there, with a zero-CPU task pinned to that node (it starts
        # a Python worker there: seconds, so the whole report stays well within 30 s).
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        reader = ray.remote(read_log_tail).options(
            num_cpus=0,
            scheduling_strategy=NodeAffinitySchedulingStrategy(info["node_id"], soft=False),
        )
        try:
            return ray.get(reader.remote(info["logs"], self.log_lines), timeout=15.0)
        except Exception as err:  # the node itself may be gone
            return f"(could not read {info['logs']} on {info['ip']}: {type(err).__name__})"

    def _report_death(self, rank: int, what: str, err: BaseException) -> NoReturn:
        cause = _death_cause(str(err))
        tail = self.log_tail(rank)
        self._break(f"worker rank {rank} died")
        raise WorkerDiedError(rank, what, None, self._node_name(rank), tail, cause) from err

    # ----------------------------------------------------------------------- shutdown
    def _break(self, reason: str) -> None:
        self._broken = reason
        self._stop(graceful=False)

    def _stop(self, graceful: bool) -> None:
        if not self._running and not self._owns_ray:
            return
        ray = import_ray()
        if self._running:
            self._running = False
            atexit.unregister(self._atexit)
            if graceful and self._actors:
                # Leave the process group politely; a stuck actor is killed below anyway.
                ray.wait([a.stop.remote() for a in self._actors], num_returns=len(self._actors),
                         timeout=10.0)
            for actor in self._actors:
                ray.kill(actor, no_restart=True)
            if self._group is not None:
                from ray.util.placement_group import remove_placement_group

                remove_placement_group(self._group)
                self._group = None
        if graceful and self._owns_ray:
            self._owns_ray = False
            ray.shutdown()

    def shutdown(self) -> None:
        """Stop the actors, free the placement group, and stop Ray if this cluster started it."""
        with self._lock:
            self._stop(graceful=True)

    def __enter__(self) -> RayCluster:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()


def _death_cause(message: str) -> str:
    r"""Ray's one-line reason for an actor's death (its exit detail), from the error text.

    Example:
        >>> _death_cause("The actor died.\nWorker exit type: SYSTEM_ERROR Worker exit detail: "
        ...              "Worker unexpectedly exits with a connection error code 2. End of file. "
        ...              "Some common causes include: ...")
        'SYSTEM_ERROR: Worker unexpectedly exits with a connection error code 2. End of file'
    """
    import re

    detail = re.search(r"exit detail: (.*?)(?:\. Some common causes|$)", message, re.S)
    kind = re.search(r"exit type: (\w+)", message)
    if detail:
        text = " ".join(detail.group(1).split())
        return (f"{kind.group(1)}: " if kind else "") + text[:300]
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return (lines[0] if lines else "the actor died")[:300]


def _shutdown_at_exit(ref: weakref.ReferenceType[RayCluster]) -> Callable[[], None]:
    # A weak reference, so that the atexit registry does not keep every cluster alive.
    def shutdown() -> None:
        cluster = ref()
        if cluster is not None:
            cluster.shutdown()

    return shutdown
