"""`make_cluster`: the cluster a `ClusterConfig` describes.

Example:
    >>> from nemo_rl.config import ClusterConfig
    >>> make_cluster(ClusterConfig(gpus_per_node=0)).world_size
    1
"""

from __future__ import annotations

import logging

from nemo_rl.config import ClusterConfig
from nemo_rl.infra.cluster.errors import ClusterError
from nemo_rl.infra.cluster.inline import InlineCluster
from nemo_rl.infra.cluster.local import LocalProcessCluster
from nemo_rl.infra.cluster.threads import apply_cpu_threads, cpu_threads_for
from nemo_rl.protocols import Cluster

log = logging.getLogger(__name__)


class RayNotAvailableError(NotImplementedError):
    """`cluster.launcher: ray` was chosen; Ray support is not part of this release."""


def make_cluster(config: ClusterConfig) -> Cluster:
    """Inline for a world size of 1, local processes for more on one node; Ray is not yet here.

    `gpus_per_node: auto` is resolved here, to the GPUs this process sees. The world size
    decides, not the launcher name: `launcher: inline` with several workers is promoted to local
    processes (one process cannot host several ranks), and `launcher: local` with one worker runs
    inline (no process to start). GPU runs use NCCL with one GPU per worker, CPU runs
    (`gpus_per_node: 0`, or no GPU seen) use gloo with `cpu_workers` processes, and the driver and
    each CPU worker set torch's thread count (`cluster.cpu_threads`, see `threads.py`); the
    cluster's `cpu_threads` attribute records it (None on GPU).

    Example: see the module docstring.
    """
    if config.launcher == "ray":
        raise RayNotAvailableError(
            "cluster.launcher='ray' is not available yet; use launcher 'local' (one host, one "
            "process per GPU) or 'inline'"
        )
    if config.num_nodes > 1:
        raise ClusterError(
            f"cluster.num_nodes={config.num_nodes} needs the Ray launcher, which is not available "
            "yet; use num_nodes=1 with launcher 'local'"
        )
    config = config.resolve()
    on_gpu = config.gpus_per_node > 0
    threads = None if on_gpu else cpu_threads_for(config.cpu_threads, config.workers_per_node)
    if threads is not None:  # the driver computes too (data, rewards; everything when inline)
        apply_cpu_threads(threads)
    cluster: Cluster
    if config.world_size == 1:
        cluster = InlineCluster(device="cuda" if on_gpu else "cpu")
    else:
        if config.launcher == "inline":
            log.info(
                "cluster.launcher='inline' with world size %d: starting local worker processes",
                config.world_size,
            )
        cluster = LocalProcessCluster(
            config.world_size, backend="nccl" if on_gpu else "gloo", cpu_threads=threads
        )
    cluster.cpu_threads = threads  # type: ignore[attr-defined]  # shown in the run header
    return cluster
