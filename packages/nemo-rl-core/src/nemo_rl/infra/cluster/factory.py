"""`make_cluster`: the cluster a `ClusterConfig` describes.

Example:
    >>> from nemo_rl.config import ClusterConfig
    >>> make_cluster(ClusterConfig(gpus_per_node=0)).world_size
    1
"""

from __future__ import annotations

import logging

from nemo_rl.config import ClusterConfig
from nemo_rl.infra.cluster.errors import ClusterError, RayNotAvailableError  # noqa: F401
from nemo_rl.infra.cluster.inline import InlineCluster
from nemo_rl.infra.cluster.local import LocalProcessCluster
from nemo_rl.infra.cluster.threads import apply_cpu_threads, cpu_threads_for
from nemo_rl.protocols import Cluster

log = logging.getLogger(__name__)


def make_cluster(config: ClusterConfig) -> Cluster:
    """The cluster a config describes: inline, local processes, or Ray actors.

    `gpus_per_node: auto` is resolved here, to the GPUs this process sees, or with `launcher: ray`
    joining a cluster to the GPUs per node of that cluster. `launcher: ray` always
    runs Ray actors (any world size and number of nodes; Ray is imported only then), joining
    `cluster.ray_address`, else `RAY_ADDRESS`, else starting a local instance. Otherwise the world
    size decides, not the launcher name: `launcher: inline` with several workers is promoted to
    local processes (one process cannot host several ranks), and `launcher: local` with one worker
    runs inline (no process to start); several nodes need Ray. GPU runs use NCCL with one GPU per
    worker, CPU runs (`gpus_per_node: 0`, or no GPU seen) use gloo with `cpu_workers` processes
    per node, and the driver and each CPU worker set torch's thread count (`cluster.cpu_threads`,
    see `threads.py`); the cluster's `cpu_threads` attribute records it (None on GPU).

    Example: see the module docstring.
    """
    if config.num_nodes > 1 and config.launcher != "ray":
        raise ClusterError(
            f"cluster.num_nodes={config.num_nodes} needs cluster.launcher='ray' (the local "
            "launcher starts processes on this host only); set launcher: ray and ray_address, or "
            "num_nodes=1"
        )
    if config.launcher == "ray":  # auto counts the GPUs of the Ray cluster it joins
        from nemo_rl.infra.cluster.ray_runtime import resolve_gpus_from_ray

        config = resolve_gpus_from_ray(config)
    config = config.resolve()
    on_gpu = config.gpus_per_node > 0
    threads = None if on_gpu else cpu_threads_for(config.cpu_threads, config.workers_per_node)
    if threads is not None:  # the driver computes too (data, rewards; everything when inline)
        apply_cpu_threads(threads)
    cluster: Cluster
    if config.launcher == "ray":
        from nemo_rl.infra.cluster.ray_cluster import RayCluster  # imports Ray: only when chosen

        cluster = RayCluster(
            config.world_size, gpus=on_gpu, address=config.ray_address, cpu_threads=threads
        )
    elif config.world_size == 1:
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
