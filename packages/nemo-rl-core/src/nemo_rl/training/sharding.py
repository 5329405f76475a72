"""The local view of FSDP2 (DTensor) parameters, for code that must work sharded and unsharded.

Example:
    >>> import torch
    >>> model = torch.nn.Linear(2, 2)
    >>> reshard(model)  # no FSDP2 module: nothing to do
    >>> local_tensor(model.weight).shape
    torch.Size([2, 2])
"""

from __future__ import annotations

import torch


def reshard(model: torch.nn.Module) -> None:
    """Return every FSDP2 module of `model` to its sharded parameters.

    FSDP2 leaves the root module unsharded after a forward pass (no reshard_after_forward for the
    root); the registered parameters are then full tensors, not this rank's DTensor shard.

    Example:
        >>> import torch
        >>> reshard(torch.nn.Linear(1, 1))  # no FSDP modules: nothing to do
    """
    from torch.distributed.fsdp import FSDPModule

    for module in model.modules():
        if isinstance(module, FSDPModule):
            module.reshard()


def local_tensor(param: torch.Tensor) -> torch.Tensor:
    """The tensor this rank stores for `param`: a DTensor's local shard, or the tensor itself.

    Example:
        >>> import torch
        >>> local_tensor(torch.ones(2)).shape
        torch.Size([2])
    """
    from torch.distributed.tensor import DTensor

    data = param.data if isinstance(param, torch.nn.Parameter) else param
    return data.to_local() if isinstance(data, DTensor) else data
