"""Checked access to the tensors a loss reads from its micro-batch, shared by every loss.

Example:
    >>> import torch
    >>> fetch_tensor({"token_mask": torch.ones(2, 3)}, "token_mask", (2, 3), "NLLLoss").shape
    torch.Size([2, 3])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch


def fetch_tensor(
    batch: Mapping[str, Any], key: str, shape: tuple[int, ...], loss_name: str, hint: str = ""
) -> torch.Tensor:
    """batch[key] as a tensor of `shape`, or one error naming the loss, the key, the shape and
    the fix (`hint` says what the key holds)."""
    if key not in batch:
        why = f" ({hint})" if hint else ""
        raise KeyError(
            f"{loss_name} needs batch['{key}']{why} but the batch only has {sorted(batch)}; add "
            "it to the training batch (token_mask [B, T] marks trained tokens, sample_mask [B] "
            "sequences)"
        )
    value = batch[key]
    if not isinstance(value, torch.Tensor) or tuple(value.shape) != shape:
        got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise ValueError(
            f"{loss_name}: batch['{key}'] must be a tensor of shape {shape} to match logprobs "
            f"(got {got}); align it with the [B, T] token layout of the micro-batch"
        )
    return value


def host_number(value: float | torch.Tensor) -> float | None:
    """`value` as a float when reading it costs no device synchronisation (a Python number or a
    CPU tensor), else None: a loss checks such values only where they are already on the host.

    Example:
        >>> import torch
        >>> host_number(3), host_number(torch.tensor(2.5))
        (3.0, 2.5)
    """
    if isinstance(value, torch.Tensor):
        return float(value) if value.device.type == "cpu" else None
    return float(value)


def global_normaliser(
    global_count: float | torch.Tensor, local_count: float | torch.Tensor, name: str
) -> float:
    """The global count as a divisor; it must cover at least this micro-batch's own count.

    Backends pass the global count as a Python number (`global_valid_counts`). The local count is
    checked against it only where it is on the host (a number or a CPU tensor): reading a device
    tensor here would make every micro-batch wait for the device.

    Example:
        >>> global_normaliser(10, 4, "global_valid_tokens")
        10.0
    """
    total = float(global_count)
    local = host_number(local_count)
    if local is not None and local > total * (1 + 1e-6) + 1e-6:
        raise ValueError(
            f"{name} ({total:g}) is smaller than this micro-batch's own count ({local:g}); "
            f"pass {name} counted over the whole optimizer batch (all micro-batches and ranks)"
        )
    # An empty optimizer batch yields a loss of exactly 0; dividing by 1 keeps it finite.
    return total if total > 0 else 1.0
