"""A health check for any cluster: every rank answers and an all_reduce gives the right sum.

Run it once at start to fail fast, with a clear message, on a broken NCCL/gloo setup instead of
hanging in the first training step.

Example:
    >>> from nemo_rl.infra.cluster import InlineCluster
    >>> [info["rank"] for info in check_cluster(InlineCluster(device="cpu"))]
    [0]
"""

from __future__ import annotations

import os
import socket
from typing import Any

import torch
import torch.distributed as dist

from nemo_rl.infra.cluster.errors import ClusterError
from nemo_rl.protocols import Cluster


class ClusterProbe:
    """Worker-side object reporting where it runs and exercising the process group.

    Example:
        >>> ClusterProbe().all_reduce_sum([1.0, 2.0])  # no process group: the values themselves
        [1.0, 2.0]
    """

    def __init__(self) -> None:
        self.distributed = dist.is_available() and dist.is_initialized()
        self.backend = dist.get_backend() if self.distributed else None
        if self.backend == "nccl":
            self.device = torch.device("cuda", torch.cuda.current_device())
        else:
            self.device = torch.device("cpu")

    def describe(self) -> dict[str, Any]:
        """Rank, world size, local rank, backend, device, torch threads, host and pid of this
        worker."""
        return {
            "rank": dist.get_rank() if self.distributed else 0,
            "world_size": dist.get_world_size() if self.distributed else 1,
            "local_rank": int(os.environ.get("LOCAL_RANK", 0)),
            "backend": self.backend,
            "device": str(self.device),
            "torch_threads": torch.get_num_threads(),
            "host": socket.gethostname(),
            "pid": os.getpid(),
        }

    def all_reduce_sum(self, values: list[float]) -> list[float]:
        """The element-wise sum of `values` over all ranks (float64, on this worker's device)."""
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        if self.distributed:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor.cpu().tolist()


def check_cluster(cluster: Cluster) -> list[dict[str, Any]]:
    """Spawn a `ClusterProbe` on every worker, check ranks and an all_reduce; their descriptions.

    Raises ClusterError when ranks are missing or the all_reduce gives a wrong sum.
    """
    group = cluster.spawn(ClusterProbe)
    try:
        infos = group.run("describe")
        ranks = [info["rank"] for info in infos]
        if ranks != list(range(cluster.world_size)):
            raise ClusterError(
                f"workers report ranks {ranks}, expected 0..{cluster.world_size - 1} in order; "
                "the process group was initialised with the wrong RANK/WORLD_SIZE"
            )
        sums = group.run_sharded("all_reduce_sum", [([float(r + 1)],) for r in ranks])
        expected = cluster.world_size * (cluster.world_size + 1) / 2
        if any(result != [expected] for result in sums):
            raise ClusterError(
                f"all_reduce of rank+1 gave {sums}, expected {expected} on every rank; the "
                "collective backend is misconfigured (check NCCL_* / GLOO_SOCKET_IFNAME settings)"
            )
        return infos
    finally:
        group.shutdown()
