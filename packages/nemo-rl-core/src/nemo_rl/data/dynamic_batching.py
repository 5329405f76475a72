"""Token-budget dynamic batching: micro-batches sized by padded tokens instead of sequence count.

A padded micro-batch of n sequences costs `n * T_mb` tokens, where `T_mb` is its longest length
rounded up to `pad_to_multiple` (tensor-parallel or kernel alignment). `dynamic_microbatches`
keeps the batch order and greedily grows each micro-batch while that cost stays within
`max_tokens`, so short sequences travel many at a time and long ones few at a time, and memory per
forward pass stays bounded.

Example:
    >>> from nemo_rl.data.dynamic_batching import dynamic_microbatches
    >>> dynamic_microbatches([3, 5, 2, 2, 7], max_tokens=10)
    [[0, 1], [2, 3], [4]]
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

from nemo_rl.data.batched_data_dict import BatchedDataDict


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def _as_int_list(lengths: Sequence[int] | torch.Tensor) -> list[int]:
    if isinstance(lengths, torch.Tensor):
        return [int(n) for n in lengths.flatten().tolist()]
    return [int(n) for n in lengths]


def dynamic_microbatches(
    lengths: Sequence[int] | torch.Tensor, max_tokens: int, pad_to_multiple: int = 1
) -> list[list[int]]:
    """Split indices 0..B-1, in order, into micro-batches within a padded-token budget.

    Each micro-batch `mb` satisfies `len(mb) * round_up(max(lengths[mb]), pad_to_multiple) <=
    max_tokens`. A sample that alone exceeds the budget raises ValueError.

    Example:
        >>> dynamic_microbatches([3, 5, 2, 2, 7], max_tokens=10, pad_to_multiple=4)
        [[0], [1], [2, 3], [4]]
    """
    if max_tokens < 1:
        raise ValueError(
            f"max_tokens must be >= 1, got {max_tokens}; set policy.max_tokens_per_microbatch"
        )
    if pad_to_multiple < 1:
        raise ValueError(f"pad_to_multiple must be >= 1, got {pad_to_multiple}")
    microbatches: list[list[int]] = []
    current: list[int] = []
    current_max = 0
    for index, length in enumerate(_as_int_list(lengths)):
        if length < 0:
            raise ValueError(f"sample {index} has negative length {length}; lengths count tokens")
        padded = _round_up(length, pad_to_multiple)
        if padded > max_tokens:
            raise ValueError(
                f"sample {index} needs {padded} tokens (length {length} rounded up to a multiple "
                f"of {pad_to_multiple}), more than max_tokens={max_tokens}; raise "
                f"policy.max_tokens_per_microbatch to at least {padded} or lower "
                f"policy.max_total_sequence_length"
            )
        grown_max = max(current_max, padded)
        if current and (len(current) + 1) * grown_max > max_tokens:
            microbatches.append(current)
            current, current_max = [index], padded
        else:
            current.append(index)
            current_max = grown_max
    if current:
        microbatches.append(current)
    return microbatches


def microbatch_token_counts(
    lengths: Sequence[int] | torch.Tensor, microbatches: Sequence[Sequence[int]]
) -> list[int]:
    """The number of real (unpadded) tokens in each micro-batch.

    Example:
        >>> microbatch_token_counts([3, 5, 2, 2, 7], [[0, 1], [2, 3], [4]])
        [8, 4, 7]
    """
    sizes = _as_int_list(lengths)
    return [sum(sizes[i] for i in mb) for mb in microbatches]


def microbatch_padded_lengths(
    lengths: Sequence[int] | torch.Tensor,
    microbatches: Sequence[Sequence[int]],
    pad_to_multiple: int = 1,
) -> list[int]:
    """The sequence length each micro-batch is padded (or trimmed) to: its longest, rounded up.

    Example:
        >>> microbatch_padded_lengths([3, 5, 2, 2, 7], [[0, 1], [2, 3], [4]], pad_to_multiple=4)
        [8, 4, 8]
    """
    if pad_to_multiple < 1:
        raise ValueError(f"pad_to_multiple must be >= 1, got {pad_to_multiple}")
    sizes = _as_int_list(lengths)
    return [
        _round_up(max((sizes[i] for i in mb), default=0), pad_to_multiple) for mb in microbatches
    ]


def iter_dynamic_microbatches(
    batch: BatchedDataDict,
    max_tokens: int,
    lengths_key: str = "input_lengths",
    sequence_key: str = "input_ids",
    pad_to_multiple: int = 1,
) -> Iterator[BatchedDataDict]:
    """Consecutive micro-batches of `batch` within `max_tokens`, with the padding cut away.

    Every tensor whose dim 1 equals the padded length T of `batch[sequence_key]` (input ids,
    token masks, per-token log-probs and advantages) is trimmed to the micro-batch's padded length
    (never beyond T); other columns are sliced as they are. Slices and trims are views.

    Example:
        >>> import torch
        >>> batch = BatchedDataDict(input_ids=torch.zeros(3, 6, dtype=torch.long),
        ...                         input_lengths=torch.tensor([2, 2, 6]))
        >>> [tuple(mb["input_ids"].shape) for mb in iter_dynamic_microbatches(batch, max_tokens=6)]
        [(2, 2), (1, 6)]
    """
    for key in (lengths_key, sequence_key):
        if key not in batch:
            raise KeyError(
                f"iter_dynamic_microbatches: batch has no {key!r} column (keys: {sorted(batch)}); "
                f"pass lengths_key/sequence_key naming the lengths and the padded token ids"
            )
    seq_len = batch[sequence_key].shape[1]
    lengths = _as_int_list(batch[lengths_key])
    # Grouping runs now, so a too-long sample fails at the call rather than at the first next().
    groups = dynamic_microbatches(lengths, max_tokens, pad_to_multiple)
    padded_lengths = microbatch_padded_lengths(lengths, groups, pad_to_multiple)
    return (
        _trim_sequences(batch.slice(group[0], group[-1] + 1), seq_len, min(padded_len, seq_len))
        for group, padded_len in zip(groups, padded_lengths, strict=True)
    )


def _trim_sequences(micro: BatchedDataDict, seq_len: int, keep: int) -> BatchedDataDict:
    """Cut dim 1 of every [B, seq_len, ...] tensor to `keep`; leave other columns alone."""
    return BatchedDataDict(
        {
            key: value[:, :keep]
            if isinstance(value, torch.Tensor) and value.dim() >= 2 and value.shape[1] == seq_len
            else value
            for key, value in micro.items()
        }
    )
