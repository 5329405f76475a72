"""Configuration of the compute the run may use.

Example:
    >>> from nemo_rl.config import ClusterConfig
    >>> ClusterConfig(num_nodes=2, gpus_per_node=8).world_size
    16
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveInt

from nemo_rl.config.base import ConfigModel


class ClusterConfig(ConfigModel):
    """Nodes, accelerators per node and the way workers are launched.

    `launcher`: `inline` runs everything in the driver process (one device or the CPU; easiest to
    debug), `local` starts one process per GPU on this host, `ray` places actors on a Ray cluster.
    `gpus_per_node=0` means CPU only.

    Example:
        >>> ClusterConfig().launcher
        'inline'
    """

    num_nodes: PositiveInt = 1
    gpus_per_node: int = Field(0, ge=0)
    launcher: Literal["inline", "local", "ray"] = "inline"
    cpu_workers: PositiveInt = Field(
        1, description="Worker processes on a CPU-only run (gloo); 1 means inline."
    )

    @property
    def world_size(self) -> int:
        """Number of training workers: one per GPU, or `cpu_workers` on a CPU-only run."""
        if self.gpus_per_node == 0:
            return self.cpu_workers * self.num_nodes
        return self.num_nodes * self.gpus_per_node

    @classmethod
    def auto_detect(cls) -> ClusterConfig:
        """The cluster this process sees: its GPUs (if any) on one node.

        Example:
            >>> ClusterConfig.auto_detect().num_nodes
            1
        """
        import torch

        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        return cls(num_nodes=1, gpus_per_node=gpus, launcher="inline" if gpus <= 1 else "local")
