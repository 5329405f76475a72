"""A frozen copy of the initial policy weights, swapped into the live model for reference log-probs.

The copy holds each rank's local shard only (the same layout as the live parameters), on CPU if
asked (the dtensor backend's `policy.dtensor.offload_reference_to_cpu`), so the accelerator never
holds two models. Swapping exchanges
values in place, so FSDP2's parameter storage is never replaced.

Example:
    >>> import torch
    >>> model = torch.nn.Linear(1, 1, bias=False)
    >>> ref = ReferenceWeights(model, store_device="cpu")
    >>> with torch.no_grad():
    ...     _ = model.weight.fill_(5.0)
    >>> with ref.swapped_in(model):
    ...     bool(model.weight.item() != 5.0)
    True
    >>> model.weight.item()
    5.0
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from nemo_rl.training.sharding import local_tensor, reshard


class ReferenceWeights:
    """A snapshot of `model`'s parameters that can be swapped in and out.

    Works on a plain module and on an FSDP2-sharded one (each rank keeps its own shard); a
    backend builds it once after loading the policy and wraps reference forward passes in
    `swapped_in`.

    Example:
        >>> import torch
        >>> model = torch.nn.Linear(2, 1)
        >>> ref = ReferenceWeights(model, "cpu")
        >>> with torch.no_grad():
        ...     _ = model.bias.add_(1.0)
        >>> with ref.swapped_in(model):
        ...     initial = model.bias.item()
        >>> round(model.bias.item() - initial, 6)
        1.0
    """

    def __init__(self, model: torch.nn.Module, store_device: torch.device | str) -> None:
        self.store_device = torch.device(store_device)
        reshard(model)
        with torch.no_grad():
            self._weights = {
                name: local_tensor(p).detach().to(self.store_device, copy=True)
                for name, p in model.named_parameters()
            }

    def _exchange(self, model: torch.nn.Module) -> None:
        reshard(model)
        with torch.no_grad():
            for name, param in model.named_parameters():
                live = local_tensor(param)
                saved = self._weights[name]
                current = live.to(self.store_device, copy=True)
                live.copy_(saved, non_blocking=True)
                self._weights[name] = current

    @contextmanager
    def swapped_in(self, model: torch.nn.Module) -> Iterator[None]:
        """Inside the block `model` holds the reference weights; afterwards its own again."""
        self._exchange(model)
        try:
            yield
        finally:
            self._exchange(model)
