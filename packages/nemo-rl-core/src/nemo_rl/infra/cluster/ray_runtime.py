"""Connecting to Ray and reserving its resources: the parts of `RayCluster` that speak to Ray itself.

Ray is imported only here and in `ray_cluster.py`, and only when a Ray cluster is created, so
`nemo-rl-core` works without it (`pip install 'nemo-rl-core[ray]'` adds it).

Example:
    >>> placement_bundles(2, gpus=False)
    [{'CPU': 1}, {'CPU': 1}]
    >>> placement_bundles(2, gpus=True)
    [{'CPU': 1, 'GPU': 1}, {'CPU': 1, 'GPU': 1}]
"""

from __future__ import annotations

import os
from typing import Any

from nemo_rl.config import ClusterConfig, ConfigError
from nemo_rl.infra.cluster.errors import ClusterError, RayNotAvailableError


def import_ray() -> Any:
    """The `ray` module, or RayNotAvailableError saying how to install it.

    Example:
        >>> import_ray().__name__  # doctest: +SKIP
        'ray'
    """
    # Under `uv run`, Ray would rebuild the project in a fresh virtual environment for every
    # worker (its uv hook, read at import: a 300 MB upload of the working tree, ~1 minute, and a
    # different environment); the workers must share the driver's.
    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    try:
        import ray
    except ImportError as err:
        raise RayNotAvailableError(
            "cluster.launcher='ray' needs Ray: pip install 'nemo-rl-core[ray]' (or use launcher "
            f"'local' on one host); importing it failed: {err}"
        ) from err
    if os.environ["RAY_ENABLE_UV_RUN_RUNTIME_ENV"] == "0":
        # Ray reads the variable once, at import: when it was imported before this function ran
        # (by the user or a test), its constant still holds the default.
        try:
            from ray._private import ray_constants

            ray_constants.RAY_ENABLE_UV_RUN_RUNTIME_ENV = False
        except (ImportError, AttributeError):  # another Ray version: nothing to correct
            pass
    return ray


def connect_ray(address: str | None = None, num_cpus: int | None = None) -> bool:
    """Connect this driver to Ray; True when it started a local instance (the caller owns it).

    `address` (`cluster.ray_address`), else `RAY_ADDRESS`, joins a running cluster (`"auto"`: the
    one `ray start` left on this host). Without either, an existing connection of this process is
    reused (not owned), or a local instance is started with `num_cpus` CPUs (None: all of them).

    Example:
        >>> owned = connect_ray()  # doctest: +SKIP
    """
    ray = import_ray()
    address = address or os.environ.get("RAY_ADDRESS") or None
    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": True}
    if address is None:
        if num_cpus is not None:
            kwargs["num_cpus"] = num_cpus
        ray.init(**kwargs)
        return True
    try:
        ray.init(address=address, **kwargs)
    except (ConnectionError, RuntimeError) as err:
        raise ClusterError(
            f"cannot join the Ray cluster at {address!r} (cluster.ray_address or RAY_ADDRESS): "
            f"{err}. Start it with `ray start --head` or fix the address; leave both unset to "
            "start a local Ray instance"
        ) from err
    return False


def gpus_per_node(nodes: list[dict[str, Any]]) -> int:
    """The GPUs per node of a Ray cluster, from `ray.nodes()`: what `gpus_per_node: auto` means
    for a run that joins it. Dead nodes and nodes without GPUs (often the head) do not count; GPU
    nodes with different counts are a ConfigError, because no one number fits them all.

    Example:
        >>> gpus_per_node([{"Alive": True, "Resources": {"CPU": 8.0}},
        ...                {"Alive": True, "Resources": {"CPU": 64.0, "GPU": 8.0}}])
        8
    """
    counts = {int(node["Resources"].get("GPU", 0)) for node in nodes if node.get("Alive")} - {0}
    if len(counts) > 1:
        raise ConfigError(
            "cluster.gpus_per_node: 'auto' cannot choose one number: the Ray cluster's GPU nodes "
            f"have {sorted(counts)} GPUs; set cluster.gpus_per_node to the GPUs to use on each "
            f"node (at most {min(counts)}) and cluster.num_nodes to the nodes to use"
        )
    return counts.pop() if counts else 0


def resolve_gpus_from_ray(config: ClusterConfig) -> ClusterConfig:
    """`config` with `gpus_per_node: auto` resolved for `launcher: ray`: joining a cluster
    (`ray_address` or `RAY_ADDRESS`), the GPUs per node of that cluster, whatever this process
    sees (a CPU-only login node drives GPU nodes); a local instance has this host's GPUs.

    Example:
        >>> resolve_gpus_from_ray(ClusterConfig(launcher="ray", gpus_per_node=2)).gpus_per_node
        2
    """
    address = config.ray_address or os.environ.get("RAY_ADDRESS") or None
    if not config.detected or address is None:
        return config.resolve()
    connect_ray(address)  # joined, not owned: RayCluster reuses this connection
    return config.model_copy(update={"gpus_per_node": gpus_per_node(import_ray().nodes())})


def placement_bundles(world_size: int, gpus: bool) -> list[dict[str, float]]:
    """One bundle per worker: a GPU and a CPU for GPU workers, one CPU for gloo workers.

    Example: see the module docstring.
    """
    bundle: dict[str, float] = {"CPU": 1, "GPU": 1} if gpus else {"CPU": 1}
    return [dict(bundle) for _ in range(world_size)]


def check_fits(bundles: list[dict[str, float]], total: dict[str, float]) -> None:
    """Raise ClusterError when the bundles ask for more than the Ray cluster has at all.

    Example:
        >>> check_fits([{"CPU": 1}] * 3, {"CPU": 2.0})
        Traceback (most recent call last):
        ...
        nemo_rl.infra.cluster.errors.ClusterError: the Ray cluster cannot host 3 worker(s): they need CPU=3 but it has CPU=2 ...
    """
    need: dict[str, float] = {}
    for bundle in bundles:
        for key, value in bundle.items():
            need[key] = need.get(key, 0) + value
    short = {k: v for k, v in need.items() if total.get(k, 0) < v}
    if short:
        needs = ", ".join(f"{k}={v:g}" for k, v in short.items())
        has = ", ".join(f"{k}={total.get(k, 0):g}" for k in short)
        raise ClusterError(
            f"the Ray cluster cannot host {len(bundles)} worker(s): they need {needs} but it has "
            f"{has} in all nodes together; lower cluster.gpus_per_node/num_nodes/cpu_workers or "
            "add nodes (ray start --address=...)"
        )


def reserve(bundles: list[dict[str, float]], strategy: str, timeout_s: float) -> Any:
    """A ready placement group of `bundles` ("PACK": as few nodes as possible), or ClusterError.

    Example:
        >>> group = reserve([{"CPU": 1}], "PACK", timeout_s=60)  # doctest: +SKIP
    """
    ray = import_ray()
    from ray.util.placement_group import placement_group, remove_placement_group

    check_fits(bundles, ray.cluster_resources())
    group = placement_group(bundles, strategy=strategy)
    ready, _ = ray.wait([group.ready()], timeout=timeout_s)
    if not ready:
        remove_placement_group(group)
        raise ClusterError(
            f"Ray could not place {len(bundles)} worker bundle(s) {bundles[0]} with strategy "
            f"{strategy} within {timeout_s:g}s; free resources now: {ray.available_resources()}. "
            "Other jobs may hold them, or no single node fits a bundle"
        )
    return group


def rank_order(node_ids: list[str]) -> list[int]:
    """Bundle indices in rank order: the bundles of one node next to each other, nodes in the
    order they first appear (so LOCAL_RANK counts within a node).

    Example:
        >>> rank_order(["b", "a", "b", "a"])
        [0, 2, 1, 3]
    """
    first = {node: i for i, node in reversed(list(enumerate(node_ids)))}
    return sorted(range(len(node_ids)), key=lambda i: (first[node_ids[i]], i))


def describe_ray_launch(address: str | None) -> str:
    """The dry-run line for `launcher: ray`: the Ray version and where the run would go (raises
    RayNotAvailableError when Ray is not installed).

    Example:
        >>> describe_ray_launch("head:6379")  # doctest: +SKIP
        'launcher ray: Ray 2.60.0, joins head:6379'
    """
    ray = import_ray()
    address = address or os.environ.get("RAY_ADDRESS") or None
    where = f"joins {address}" if address else "starts a local Ray instance"
    return f"launcher ray: Ray {ray.__version__}, {where}"
