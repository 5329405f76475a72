"""Which GPUs of the host each side runs on when generation has GPUs of its own.

`ResourcePlan` says how many GPUs each side gets; this module says which. Colocated runs (and CPU
runs) need nothing: both sides use every device. With `generation.colocated: false` on one host,
training keeps the first `training_gpus` GPUs (its workers are ranks 0..T-1, and rank r of an
inline or local cluster computes on cuda:r) and generation takes the next `generation_gpus`
(`separate_devices`); the training cluster is built with T workers only (`training_cluster_config`).
GPU indices are those this process sees (after `CUDA_VISIBLE_DEVICES`).

Not placed yet: separate GPUs on several nodes or with `launcher: ray`. There Ray assigns each
actor's GPU, so the engine would have to be a Ray actor holding its own GPU bundle in the
training actors' placement group; until then such a config is refused with the fields to change.

Example:
    >>> from nemo_rl.config import ClusterConfig
    >>> plan = ResourcePlan(8, False, training_gpus=6, generation_gpus=2)
    >>> separate_devices(plan.training_gpus, plan.generation_gpus, visible=8)
    ([0, 1, 2, 3, 4, 5], [6, 7])
    >>> training_cluster_config(ClusterConfig(gpus_per_node=8, launcher="local"), plan).gpus_per_node
    6
"""

from __future__ import annotations

from nemo_rl.config import ClusterConfig
from nemo_rl.infra.resources import ResourceError, ResourcePlan


def separate_devices(training_gpus: int, generation_gpus: int, visible: int) -> tuple[list[int], list[int]]:
    """(training GPU indices, generation GPU indices) on this host: training first, generation
    right after it; a ResourceError when the host has too few GPUs.

    Example:
        >>> separate_devices(1, 1, visible=2)
        ([0], [1])
        >>> separate_devices(2, 1, visible=2)
        Traceback (most recent call last):
        ...
        nemo_rl.infra.resources.ResourceError: invalid config: generation.num_gpus=1 after 2 training GPU(s) needs 3 GPUs on this host but it has 2 ...
    """
    if training_gpus < 1 or generation_gpus < 1:
        raise ResourceError(
            f"separate generation GPUs need at least one GPU per side, got {training_gpus} for "
            f"training and generation.num_gpus={generation_gpus}; set generation.num_gpus >= 1, "
            "or generation.colocated=true"
        )
    need = training_gpus + generation_gpus
    if need > visible:
        raise ResourceError(
            f"generation.num_gpus={generation_gpus} after {training_gpus} training GPU(s) needs "
            f"{need} GPUs on this host but it has {visible} (CUDA_VISIBLE_DEVICES); lower "
            "generation.num_gpus or cluster.gpus_per_node, or set generation.colocated=true"
        )
    return list(range(training_gpus)), list(range(training_gpus, need))


def training_cluster_config(cluster: ClusterConfig, plan: ResourcePlan | None) -> ClusterConfig:
    """The cluster the training workers form: `cluster` itself, or with separate generation GPUs
    only the training GPUs (`gpus_per_node` = the plan's `training_gpus`). Raises ResourceError
    for a separate split this module cannot place yet (see the module docstring).

    Example:
        >>> training_cluster_config(ClusterConfig(gpus_per_node=4), None).gpus_per_node
        4
    """
    if plan is None or plan.colocated or plan.total_gpus == 0:
        return cluster
    if cluster.num_nodes > 1 or cluster.launcher == "ray":
        raise ResourceError(
            f"generation.colocated=false with cluster.num_nodes={cluster.num_nodes} and "
            f"cluster.launcher={cluster.launcher!r}: separate generation GPUs are placed on one "
            "host only so far (inline or local launcher); set cluster.num_nodes=1 and "
            "cluster.launcher=local, or generation.colocated=true"
        )
    return cluster.resolve().model_copy(update={"gpus_per_node": plan.training_gpus})
