"""The loss normalisers of an optimizer batch: its valid tokens and valid sequences.

A backend counts them once over the whole optimizer batch, before cutting it into micro-batches
and shards, and passes them to every `LossFunction` call, so the summed micro-batch losses do
not depend on how the batch was split (see `nemo_rl.protocols.LossFunction`).

Example:
    >>> import torch
    >>> from nemo_rl.data import BatchedDataDict
    >>> batch = BatchedDataDict(token_mask=torch.ones(2, 3), sample_mask=torch.tensor([1.0, 1.0]))
    >>> global_valid_counts(batch)
    (6, 2)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def global_valid_counts(batch: Mapping[str, Any]) -> tuple[int, int]:
    """(valid tokens, valid sequences) of an optimizer batch: sum(token_mask * sample_mask), sum(sample_mask).

    Example:
        >>> import torch
        >>> from nemo_rl.data import BatchedDataDict
        >>> b = BatchedDataDict(token_mask=torch.tensor([[0, 1, 1], [0, 1, 0]]), sample_mask=torch.tensor([1, 0]))
        >>> global_valid_counts(b)
        (2, 1)
    """
    sample_mask = batch["sample_mask"].float()
    tokens = (batch["token_mask"].float() * sample_mask.unsqueeze(-1)).sum()
    return int(tokens.item()), int(sample_mask.sum().item())
