"""The loop each local worker process runs: join the process group, then serve driver requests.

Requests arrive as pickled `(op, object_id, payload)` tuples over a pipe; every request gets one
pickled reply `("ok", value)` or `("error", (exc_type, traceback_text))`. Ops: `spawn` builds an
object and stores it under object_id, `call` runs one of its methods, `delete` drops it, `stop`
ends the loop. A worker serves several objects, so several worker groups can share its process
(and its GPU), which is how colocated training and generation live together.

This module runs inside the child process; `LocalProcessCluster` is the driver side. The Ray
actors (`ray_worker.py`) serve the same requests with `handle_request`.
"""

from __future__ import annotations

import faulthandler
import os
import pickle
import signal
import traceback
from multiprocessing.connection import Connection
from typing import Any

import torch
import torch.distributed as dist

from nemo_rl.infra.cluster.threads import cpu_threads_for


def _set_distributed_env(
    rank: int,
    world_size: int,
    master_port: int,
    master_addr: str = "127.0.0.1",
    local_rank: int | None = None,
    local_world_size: int | None = None,
) -> None:
    # The standard torchrun variables, so code that reads them works the same under every launcher.
    os.environ.update(
        MASTER_ADDR=master_addr,
        MASTER_PORT=str(master_port),
        RANK=str(rank),
        WORLD_SIZE=str(world_size),
        LOCAL_RANK=str(rank if local_rank is None else local_rank),
        LOCAL_WORLD_SIZE=str(world_size if local_world_size is None else local_world_size),
    )


def _init_process_group(
    rank: int,
    world_size: int,
    backend: str,
    cpu_threads: int | None = None,
    device_index: int | None = None,
) -> None:
    """Join the process group; `device_index` is this worker's CUDA device (default: its rank;
    a Ray actor sees only its own GPU, as device 0)."""
    if backend == "nccl":
        device = torch.device("cuda", rank if device_index is None else device_index)
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", rank=rank, world_size=world_size, device_id=device)
        return
    # Each CPU worker would otherwise start one thread per core and they would all contend.
    torch.set_num_threads(cpu_threads or cpu_threads_for(None, world_size))
    dist.init_process_group("gloo", rank=rank, world_size=world_size)


def handle_request(objects: dict[int, Any], op: str, object_id: int, payload: Any) -> Any:
    """Serve one driver request (`spawn`, `call` or `delete`) on this worker's `objects`.

    Example:
        >>> objects = {}
        >>> handle_request(objects, "spawn", 0, (list, ([3, 1],), {}))
        'list'
        >>> handle_request(objects, "call", 0, ("index", (1,), {}))
        1
    """
    if op == "spawn":
        factory, args, kwargs = payload
        objects[object_id] = factory(*args, **kwargs)
        return type(objects[object_id]).__qualname__  # names the group in the driver's errors
    if op == "call":
        method, args, kwargs = payload
        obj = objects[object_id]
        if not callable(getattr(obj, method, None)):
            raise AttributeError(
                f"{type(obj).__name__} has no method {method!r}; check the name passed to run()"
            )
        return getattr(obj, method)(*args, **kwargs)
    if op == "delete":
        objects.pop(object_id, None)
        return None
    raise ValueError(f"unknown worker request {op!r}")


def error_value(err: BaseException) -> tuple[str, str]:
    """`(exception class name, formatted traceback)`: what a worker reports for a failure."""
    return type(err).__name__, traceback.format_exc()


def _error_reply(err: BaseException) -> bytes:
    return pickle.dumps(("error", error_value(err)))


def worker_main(
    rank: int,
    world_size: int,
    master_port: int,
    backend: str,
    conn: Connection,
    cpu_threads: int | None = None,
) -> None:
    """Entry point of worker process `rank` (started by `LocalProcessCluster`)."""
    faulthandler.enable()
    # Ctrl-C reaches every process of the terminal; the driver handles it and stops the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _set_distributed_env(rank, world_size, master_port)
    try:
        _init_process_group(rank, world_size, backend, cpu_threads)
    except BaseException as err:
        conn.send_bytes(_error_reply(err))
        return
    conn.send_bytes(pickle.dumps(("ok", None)))
    objects: dict[int, Any] = {}
    try:
        while True:
            try:
                request = conn.recv_bytes()
            except EOFError:  # the driver is gone: nothing left to serve
                break
            try:
                op, object_id, payload = pickle.loads(request)
                if op == "stop":
                    break
                reply = pickle.dumps(("ok", handle_request(objects, op, object_id, payload)))
            except BaseException as err:  # unpicklable result, import error, user exception
                reply = _error_reply(err)
            conn.send_bytes(reply)
    finally:
        objects.clear()
        if dist.is_initialized():
            dist.destroy_process_group()
