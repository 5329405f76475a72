"""Where workers run: inline in the driver, local processes, or Ray actors (torch.distributed).

All three implement the `Cluster` and `WorkerGroup` protocols of `nemo_rl.protocols`, so backend
code is the same under each; `make_cluster` picks one from a `ClusterConfig`. `RayCluster` imports
Ray only when one is created (`pip install 'nemo-rl-core[ray]'`).

Example:
    >>> from nemo_rl.infra.cluster import InlineCluster
    >>> InlineCluster(device="cpu").spawn(list, [3, 1, 2]).run("index", 2)
    [2]
"""

from __future__ import annotations

from nemo_rl.infra.cluster.errors import (
    ClusterError,
    RayNotAvailableError,
    WorkerDiedError,
    WorkerError,
)
from nemo_rl.infra.cluster.factory import make_cluster
from nemo_rl.infra.cluster.inline import InlineCluster, InlineWorkerGroup
from nemo_rl.infra.cluster.local import LocalProcessCluster, LocalWorkerGroup
from nemo_rl.infra.cluster.probe import ClusterProbe, check_cluster
from nemo_rl.infra.cluster.ray_cluster import RayCluster, RayWorkerGroup  # Ray imported on use

__all__ = [
    "ClusterError",
    "ClusterProbe",
    "InlineCluster",
    "InlineWorkerGroup",
    "LocalProcessCluster",
    "LocalWorkerGroup",
    "RayCluster",
    "RayNotAvailableError",
    "RayWorkerGroup",
    "WorkerDiedError",
    "WorkerError",
    "check_cluster",
    "make_cluster",
]
