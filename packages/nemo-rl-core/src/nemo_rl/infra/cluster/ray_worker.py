"""The Ray actor behind each rank of a `RayCluster`: the local-process worker's code in an actor.

A `RayWorker` reports where it runs (node, pid, the files Ray sends its stdout/stderr to), joins
the torch.distributed process group the driver describes (NCCL on its GPU, gloo on CPU) and then
serves the same `spawn`/`call`/`delete` requests as a local worker process, through
`worker_main.handle_request`. Every reply is `("ok", value)` or `("error", (exc_type,
traceback))`, so a failing method reaches the driver exactly as with the local cluster. This
module never imports Ray: `RayCluster` wraps the class with `ray.remote` when it is chosen.

Example:
    >>> worker = RayWorker()  # normally built by Ray as an actor
    >>> worker.handle("spawn", 0, (dict, (), {"a": 1}))
    ('ok', 'dict')
    >>> worker.handle("call", 0, ("get", ("a",), {}))
    ('ok', 1)
"""

from __future__ import annotations

import faulthandler
import os
import socket
import sys
from typing import Any

from nemo_rl.infra.cluster.worker_main import (
    _init_process_group,
    _set_distributed_env,
    error_value,
    handle_request,
)


def _log_path(fd: int) -> str | None:
    # Ray redirects an actor's stdout/stderr at the file-descriptor level into its session's
    # logs/worker-*.out/.err; /proc tells which file (None off Linux or when not redirected).
    try:
        path = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None
    return path if path.startswith("/") and os.path.isfile(path) else None


def read_log_tail(paths: list[str], lines: int = 20) -> str:
    """The last `lines` lines of each readable file in `paths`, joined (empty when none is).

    Example:
        >>> read_log_tail(["/nonexistent/worker.err"])
        ''
    """
    parts = []
    for path in paths:
        try:
            with open(path, "rb") as handle:
                handle.seek(0, os.SEEK_END)
                handle.seek(max(0, handle.tell() - 64 * 1024))  # the tail is enough
                text = handle.read().decode("utf-8", errors="replace")
        except OSError:
            continue
        tail = [line for line in text.splitlines() if line.strip()][-lines:]
        if tail:
            parts.append(f"[{os.path.basename(path)}]\n" + "\n".join(tail))
    return "\n".join(parts)


class RayWorker:
    """One rank of a `RayCluster` (see the module docstring)."""

    def __init__(self) -> None:
        faulthandler.enable()  # a segfault leaves its stack in the log the driver quotes
        self.objects: dict[int, Any] = {}

    def node_info(self) -> dict[str, Any]:
        """Where this actor runs: node id and IP, host, pid, log files, a free port on the node."""
        import ray

        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("", 0))
            port = sock.getsockname()[1]
        return {
            "node_id": ray.get_runtime_context().get_node_id(),
            "ip": ray.util.get_node_ip_address(),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "logs": [p for p in (_log_path(1), _log_path(2)) if p],
            "free_port": port,
            "gpu_ids": [str(g) for g in ray.get_gpu_ids()],
        }

    def init_distributed(
        self,
        rank: int,
        world_size: int,
        master_addr: str,
        master_port: int,
        backend: str,
        cpu_threads: int | None,
        local_rank: int,
        local_world_size: int,
    ) -> tuple[str, Any]:
        """Join the process group (Ray shows this actor only its own GPU: device 0)."""
        try:
            _set_distributed_env(
                rank, world_size, master_port, master_addr, local_rank, local_world_size
            )
            _init_process_group(rank, world_size, backend, cpu_threads, device_index=0)
            return "ok", None
        except BaseException as err:
            return "error", error_value(err)

    def handle(self, op: str, object_id: int, payload: Any) -> tuple[str, Any]:
        """Serve one driver request; never raises (the error travels in the reply)."""
        try:
            return "ok", handle_request(self.objects, op, object_id, payload)
        except BaseException as err:
            return "error", error_value(err)
        finally:
            sys.stdout.flush()  # the driver quotes the log files when this actor fails
            sys.stderr.flush()

    def stop(self) -> None:
        """Drop every object and leave the process group (before the actor is killed)."""
        import torch.distributed as dist

        self.objects.clear()
        if dist.is_initialized():
            dist.destroy_process_group()
