"""Configuration of the compute the run may use.

Example:
    >>> from nemo_rl.config import ClusterConfig
    >>> ClusterConfig(num_nodes=2, gpus_per_node=8).world_size
    16
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from nemo_rl.config.base import ConfigModel
from nemo_rl.config.types import NonNegativeInt, PositiveInt


def visible_gpus() -> int:
    """The CUDA GPUs this process sees (0 without CUDA).

    Example:
        >>> visible_gpus() >= 0
        True
    """
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


class ClusterConfig(ConfigModel):
    """Nodes, accelerators per node and the way workers are launched.

    `gpus_per_node`: "auto" (the default) uses every GPU this process sees and the CPU when there
    is none (with `launcher: ray` joining a cluster: the GPUs per node of that Ray cluster); a
    number pins it, and `0` forces a CPU run even on a GPU machine.
    `launcher`: `inline` runs everything in the driver process (one device or the CPU; easiest to
    debug), `local` starts one process per GPU on this host, `ray` places actors on a Ray cluster.
    A world size above one runs local processes unless `ray` is chosen (one process cannot host
    several ranks); several nodes need `ray`, which joins `ray_address` (or `RAY_ADDRESS`).
    `cpu_threads`: torch threads per process on a CPU run; None chooses the cores this process
    may use that are not already busy, divided among the workers on this host.

    Example:
        >>> ClusterConfig().launcher, ClusterConfig(gpus_per_node=0).resolve().world_size
        ('inline', 1)
    """

    num_nodes: PositiveInt = Field(1, description="Nodes; more than one needs launcher: ray.")
    gpus_per_node: NonNegativeInt | Literal["auto"] = Field(
        "auto",
        description="GPUs per node; auto: those this process sees (the CPU when none), or with "
        "launcher ray joining a cluster, its GPUs per node; 0 forces a CPU run.",
    )
    launcher: Literal["inline", "local", "ray"] = Field(
        "inline",
        description="inline: everything in this process; local: one process per GPU on this host; "
        "ray: actors on a Ray cluster.",
    )
    cpu_workers: PositiveInt = Field(
        1, description="Worker processes on a CPU-only run (gloo); 1 means inline."
    )
    cpu_threads: PositiveInt | None = Field(
        None,
        description="torch threads per process on a CPU run; None: free cores / workers on a host.",
    )
    ray_address: str | None = Field(
        None,
        description="launcher ray: the Ray cluster to join ('auto', 'host:6379', 'ray://...'); "
        "None: RAY_ADDRESS, else a local Ray instance is started.",
    )

    @property
    def detected(self) -> bool:
        """True when `gpus_per_node` is "auto" (resolved from the GPUs this process sees)."""
        return self.gpus_per_node == "auto"

    def resolve(self) -> ClusterConfig:
        """This config with `gpus_per_node` a number: "auto" becomes the GPUs this process sees.

        Example:
            >>> ClusterConfig(gpus_per_node=0).resolve().gpus_per_node
            0
        """
        if not self.detected:
            return self
        return self.model_copy(update={"gpus_per_node": visible_gpus()})

    @property
    def world_size(self) -> int:
        """Number of training workers: one per GPU, or `cpu_workers` on a CPU-only run."""
        gpus = self.resolve().gpus_per_node
        if gpus == 0:
            return self.cpu_workers * self.num_nodes
        return self.num_nodes * gpus

    @property
    def workers_per_node(self) -> int:
        """Worker processes on each host (they share its CPU cores)."""
        return self.world_size // self.num_nodes

    @classmethod
    def auto_detect(cls) -> ClusterConfig:
        """The cluster this process sees: its GPUs (if any) on one node.

        Example:
            >>> ClusterConfig.auto_detect().num_nodes
            1
        """
        gpus = visible_gpus()
        return cls(num_nodes=1, gpus_per_node=gpus, launcher="inline" if gpus <= 1 else "local")
