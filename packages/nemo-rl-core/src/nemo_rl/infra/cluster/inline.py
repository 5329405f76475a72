"""The inline cluster: one worker, built in the driver process itself.

This is the default on a laptop or a single GPU and the easiest to debug: a breakpoint in a
backend stops in the same process, and no torch.distributed process group is created (code that
needs one checks `torch.distributed.is_initialized()`).

Example:
    >>> cluster = InlineCluster(device="cpu")
    >>> group = cluster.spawn(dict, a=1)
    >>> group.run("get", "a")
    [1]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from nemo_rl.infra.cluster.errors import ClusterError


def _call(obj: Any, method: str, args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
    if not callable(getattr(obj, method, None)):
        raise AttributeError(
            f"{type(obj).__name__} has no method {method!r}; check the name passed to run()"
        )
    return getattr(obj, method)(*args, **kwargs)


class InlineWorkerGroup:
    """The single worker of an `InlineCluster`; `worker` is the object itself."""

    world_size = 1

    def __init__(self, worker: Any) -> None:
        self.worker = worker
        self._shut_down = False

    def _check_open(self) -> None:
        if self._shut_down:
            raise ClusterError("this worker group was shut down; spawn a new one")

    def run(self, method: str, *args: Any, **kwargs: Any) -> list[Any]:
        """`[worker.method(*args, **kwargs)]`."""
        self._check_open()
        return [_call(self.worker, method, args, kwargs)]

    def run_sharded(self, method: str, shards: Sequence[tuple]) -> list[Any]:
        """`[worker.method(*shards[0])]`; exactly one shard, since there is one worker."""
        self._check_open()
        if len(shards) != 1:
            raise ValueError(
                f"run_sharded got {len(shards)} shards for a world size of 1; pass one argument "
                "tuple per worker"
            )
        return [_call(self.worker, method, tuple(shards[0]), {})]

    def shutdown(self) -> None:
        self._shut_down = True
        self.worker = None


class InlineCluster:
    """World size 1 in this process; `device_type` is "cuda" when a GPU is visible, else "cpu".

    `device` pins the device (`"cpu"`, `"cuda"`, `"cuda:1"`); None picks the default.

    Example: see the module docstring.
    """

    world_size = 1
    cpu_threads: int | None = None  # torch threads set by make_cluster on a CPU run

    def __init__(self, device: str | None = None) -> None:
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ClusterError(
                f"device {device!r} was requested but torch sees no CUDA GPU; use device='cpu' "
                "(cluster.gpus_per_node=0) or check CUDA_VISIBLE_DEVICES and the torch build"
            )

    @property
    def device_type(self) -> str:
        return self.device.type

    def spawn(self, factory: Callable[..., Any], *args: Any, **kwargs: Any) -> InlineWorkerGroup:
        """Build `factory(*args, **kwargs)` here and wrap it in a one-worker group."""
        return InlineWorkerGroup(factory(*args, **kwargs))

    def shutdown(self) -> None:
        return None

    def __enter__(self) -> InlineCluster:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()
