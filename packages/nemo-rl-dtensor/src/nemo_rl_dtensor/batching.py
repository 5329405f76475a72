"""How a training or log-prob batch is checked and cut into micro-batches (pure functions).

Three ways, chosen by `PolicyConfig`: packing (`sequence_packing`: each micro-batch is one packed
row of at most `max_tokens_per_microbatch` tokens), token-budget dynamic batching
(`max_tokens_per_microbatch`), or a fixed number of sequences (`train_micro_batch_size`, or
`logprob_batch_size` for log-probs). The driver and every worker call the same function, so the
driver knows how many micro-batches each rank runs and can keep FSDP ranks in lockstep.

Example:
    >>> from nemo_rl.config import PolicyConfig
    >>> plan_microbatches([5, 3, 2], PolicyConfig(train_micro_batch_size=2))
    [[0, 1], [2]]
    >>> plan_microbatches([5, 3, 2], PolicyConfig(max_tokens_per_microbatch=6, sequence_packing=True))
    [[0], [1, 2]]
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from nemo_rl.config.policy import PolicyConfig
from nemo_rl.data import BatchedDataDict, dynamic_microbatches, pack_sequences

TRAINING_KEYS = ("input_ids", "input_lengths", "token_mask", "sample_mask")


def plan_microbatches(
    lengths: Sequence[int] | torch.Tensor, config: PolicyConfig, for_logprobs: bool = False
) -> list[list[int]]:
    """Sample indices of each micro-batch of one rank's shard, per the config's batching mode.

    Example:
        >>> from nemo_rl.config import PolicyConfig
        >>> plan_microbatches([4, 4, 1, 1], PolicyConfig(max_tokens_per_microbatch=8))
        [[0, 1], [2, 3]]
    """
    sizes = [int(n) for n in (lengths.tolist() if isinstance(lengths, torch.Tensor) else lengths)]
    if config.sequence_packing:
        assert config.max_tokens_per_microbatch is not None  # enforced by PolicyConfig
        return pack_sequences(sizes, config.max_tokens_per_microbatch)
    if config.max_tokens_per_microbatch is not None:
        return dynamic_microbatches(sizes, config.max_tokens_per_microbatch)
    size = config.train_micro_batch_size
    if for_logprobs and config.logprob_batch_size is not None:
        size = config.logprob_batch_size
    return [list(range(i, min(i + size, len(sizes)))) for i in range(0, len(sizes), size)]


def check_batch(batch: BatchedDataDict, keys: Sequence[str] = TRAINING_KEYS) -> None:
    """Raise a clear error if `batch` lacks a key or its shapes/lengths are inconsistent.

    Example:
        >>> import torch
        >>> check_batch(BatchedDataDict(input_ids=torch.ones(1, 2)), keys=["input_ids", "input_lengths"])
        Traceback (most recent call last):
        ...
        KeyError: "the batch has no 'input_lengths' (keys: ['input_ids']); the dtensor backend needs input_ids, input_lengths"
    """
    for key in keys:
        if key not in batch:
            raise KeyError(
                f"the batch has no {key!r} (keys: {sorted(batch)}); the dtensor backend needs "
                f"{', '.join(keys)}"
            )
    ids = batch["input_ids"]
    if not isinstance(ids, torch.Tensor) or ids.dim() != 2:
        raise ValueError(f"batch['input_ids'] must be a [B, T] tensor, got {_describe(ids)}")
    lengths = batch["input_lengths"]
    if not isinstance(lengths, torch.Tensor) or lengths.shape != ids.shape[:1]:
        raise ValueError(f"batch['input_lengths'] must be a [B] tensor, got {_describe(lengths)}")
    if ids.shape[0] and (int(lengths.min()) < 1 or int(lengths.max()) > ids.shape[1]):
        raise ValueError(
            f"batch['input_lengths'] must lie in [1, {ids.shape[1]}] (right-padded input_ids), "
            f"got min {int(lengths.min())} max {int(lengths.max())}"
        )
    if "token_mask" in keys and batch["token_mask"].shape != ids.shape:
        raise ValueError(
            f"batch['token_mask'] has shape {tuple(batch['token_mask'].shape)}, expected "
            f"{tuple(ids.shape)} like input_ids"
        )


def _describe(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    return f"a {type(value).__name__}"


def pad_to_multiple(batch: BatchedDataDict, multiple: int) -> tuple[BatchedDataDict, int]:
    """Append copies of the last sample until the size divides by `multiple`; return it and the
    original size (the caller drops the extra rows' results). Copies get sample_mask 0 if present.

    Example:
        >>> import torch
        >>> padded, n = pad_to_multiple(BatchedDataDict(x=torch.tensor([1, 2, 3])), 2)
        >>> padded["x"].tolist(), n
        ([1, 2, 3, 3], 3)
    """
    size = batch.size
    extra = -size % multiple
    if extra == 0:
        return batch, size
    fill = batch.select_indices([size - 1] * extra)
    if "sample_mask" in fill:
        fill["sample_mask"] = torch.zeros_like(fill["sample_mask"])
    return BatchedDataDict.from_batches([batch, fill]), size
