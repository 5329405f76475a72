"""Infrastructure: clusters, resource placement, checkpoint directories and run logging.

Example:
    >>> from nemo_rl.infra import CheckpointManager, InlineCluster, Logger, make_cluster
    >>> make_cluster.__module__
    'nemo_rl.infra.cluster.factory'
"""

from __future__ import annotations

from nemo_rl.infra.checkpoint import CheckpointInfo, CheckpointManager, read_checkpoint_info
from nemo_rl.infra.cluster import (
    ClusterError,
    InlineCluster,
    LocalProcessCluster,
    WorkerDiedError,
    WorkerError,
    check_cluster,
    make_cluster,
)
from nemo_rl.infra.logging import Logger, read_metrics
from nemo_rl.infra.resources import (
    PhaseSwitcher,
    ResourceError,
    ResourceManager,
    ResourcePlan,
    check_resources,
)

__all__ = [
    "CheckpointInfo",
    "CheckpointManager",
    "check_resources",
    "ClusterError",
    "InlineCluster",
    "LocalProcessCluster",
    "Logger",
    "PhaseSwitcher",
    "ResourceError",
    "ResourceManager",
    "ResourcePlan",
    "WorkerDiedError",
    "WorkerError",
    "check_cluster",
    "make_cluster",
    "read_checkpoint_info",
    "read_metrics",
]
