"""The handle of a worker group whose workers live elsewhere (local processes or Ray actors).

Example:
    >>> RemoteWorkerGroup.__name__
    'RemoteWorkerGroup'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nemo_rl.infra.cluster.errors import ClusterError


class RemoteWorkerGroup:
    """The objects one `spawn` built, one per worker (a process or a Ray actor), addressed by rank.

    It only forwards calls: `cluster` carries them (`_request`) and knows whether it still runs.

    Example:
        >>> # group = cluster.spawn(collections.Counter); group.run("update", "ab")
    """

    def __init__(self, cluster: Any, object_id: int, name: str) -> None:
        self.world_size = cluster.world_size
        self._cluster = cluster
        self._object_id = object_id
        self._name = name
        self._shut_down = False

    def _check_open(self) -> None:
        if self._shut_down:
            raise ClusterError(f"the {self._name} worker group was shut down; spawn a new one")

    def run(self, method: str, *args: Any, **kwargs: Any) -> list[Any]:
        """Call `method(*args, **kwargs)` on every worker; the results in rank order."""
        self._check_open()
        payload = (method, args, kwargs)
        return self._cluster._request(
            "call", self._object_id, [payload] * self.world_size, f"{self._name}.{method}()"
        )

    def run_sharded(self, method: str, shards: Sequence[tuple]) -> list[Any]:
        """Call `method(*shards[rank])` on each worker; the results in rank order."""
        self._check_open()
        if len(shards) != self.world_size:
            raise ValueError(
                f"run_sharded got {len(shards)} shards for a world size of {self.world_size}; "
                "pass one argument tuple per worker"
            )
        payloads = [(method, tuple(shard), {}) for shard in shards]
        return self._cluster._request("call", self._object_id, payloads, f"{self._name}.{method}()")

    def shutdown(self) -> None:
        """Drop the objects in the workers (the workers keep running for other groups)."""
        if self._shut_down:
            return
        self._shut_down = True
        if self._cluster.is_running:
            self._cluster._request(
                "delete", self._object_id, [None] * self.world_size, f"{self._name} shutdown"
            )
