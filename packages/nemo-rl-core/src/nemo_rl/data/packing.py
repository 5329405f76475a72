"""Sequence packing: several unpadded sequences share one row, so no compute is spent on padding.

Three pure steps: `pack_sequences` decides which samples go into which bin (a packed row),
`build_packed_batch` lays one bin out as a single row with per-sequence `position_ids` and the
`cu_seqlens` boundaries that flash-attention varlen kernels take, and `unpack_logprobs` scatters
per-token results of that row back to the padded [B, T] layout the losses read.

Example:
    >>> import torch
    >>> from nemo_rl.data.packing import pack_sequences, build_packed_batch
    >>> bins = pack_sequences([3, 2, 2], max_tokens=4)
    >>> bins
    [[0], [1, 2]]
    >>> ids = torch.tensor([[5, 6, 7], [8, 9, 0], [1, 2, 0]])
    >>> row = build_packed_batch(ids, [3, 2, 2], bins[1])
    >>> row["input_ids"].tolist(), row["position_ids"].tolist(), row["cu_seqlens"].tolist()
    ([[8, 9, 1, 2]], [[0, 1, 0, 1]], [0, 2, 4])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import torch

PackingAlgorithm = Literal["first_fit_decreasing", "sequential"]
PACKING_ALGORITHMS: tuple[str, ...] = ("first_fit_decreasing", "sequential")
"""The names `pack_sequences(..., algorithm=...)` accepts."""


def _as_int_list(lengths: Sequence[int] | torch.Tensor) -> list[int]:
    if isinstance(lengths, torch.Tensor):
        return [int(n) for n in lengths.flatten().tolist()]
    return [int(n) for n in lengths]


def _check_lengths(lengths: list[int], max_tokens: int) -> None:
    if max_tokens < 1:
        raise ValueError(
            f"max_tokens must be >= 1, got {max_tokens}; set max_tokens_per_microbatch"
        )
    for index, length in enumerate(lengths):
        if length < 0:
            raise ValueError(f"sample {index} has negative length {length}; lengths count tokens")
        if length > max_tokens:
            raise ValueError(
                f"sample {index} has {length} tokens, more than max_tokens={max_tokens}, so it "
                f"fits in no packed row; raise policy.max_tokens_per_microbatch to at least "
                f"{length} or lower policy.max_total_sequence_length"
            )


def pack_sequences(
    lengths: Sequence[int] | torch.Tensor,
    max_tokens: int,
    algorithm: PackingAlgorithm = "first_fit_decreasing",
) -> list[list[int]]:
    """Group sample indices into bins whose total length is at most `max_tokens`.

    `first_fit_decreasing` visits samples from longest to shortest (ties by index) and puts each
    in the first bin with room, opening a new one when none has; it uses few bins but reorders
    samples. Each bin lists its indices in ascending order. `sequential` keeps the original order
    and starts a new bin whenever the next sample does not fit.

    Example:
        >>> pack_sequences([4, 5, 3, 2], max_tokens=7)
        [[1, 3], [0, 2]]
        >>> pack_sequences([4, 5, 3, 2], max_tokens=7, algorithm="sequential")
        [[0], [1], [2, 3]]
    """
    sizes = _as_int_list(lengths)
    _check_lengths(sizes, max_tokens)
    if algorithm == "sequential":
        bins: list[list[int]] = []
        used = max_tokens + 1  # forces a new bin for the first sample
        for index, length in enumerate(sizes):
            if used + length > max_tokens:
                bins.append([])
                used = 0
            bins[-1].append(index)
            used += length
        return bins
    if algorithm == "first_fit_decreasing":
        order = sorted(range(len(sizes)), key=lambda i: (-sizes[i], i))
        bins, loads = [], []
        for index in order:
            for b, load in enumerate(loads):
                if load + sizes[index] <= max_tokens:
                    bins[b].append(index)
                    loads[b] += sizes[index]
                    break
            else:
                bins.append([index])
                loads.append(sizes[index])
        return [sorted(b) for b in bins]
    raise ValueError(
        f"unknown packing algorithm {algorithm!r}; choose one of {', '.join(PACKING_ALGORITHMS)}"
    )


def _check_bin(bin_indices: Sequence[int], batch_size: int, what: str) -> list[int]:
    indices = [int(i) for i in bin_indices]
    if not indices:
        raise ValueError(f"{what}: the bin is empty; pass a bin from pack_sequences")
    bad = [i for i in indices if not 0 <= i < batch_size]
    if bad:
        raise IndexError(f"{what}: bin indices {bad} are out of range for a batch of {batch_size}")
    return indices


def build_packed_batch(
    input_ids: torch.Tensor,
    lengths: Sequence[int] | torch.Tensor,
    bin_indices: Sequence[int],
    token_tensors: Mapping[str, torch.Tensor] | None = None,
) -> dict[str, torch.Tensor | int]:
    """Concatenate the unpadded sequences of one bin into a single row.

    Returns `input_ids` [1, N] (N = total length of the bin), `position_ids` [1, N] restarting at
    0 for every sequence, `cu_seqlens` [len(bin) + 1] int32 (0, then cumulative lengths) and
    `max_seqlen` (int), the arguments of flash-attention varlen kernels. Any other right-padded
    [B, T, ...] tensors in `token_tensors` (token masks, advantages) are packed the same way and
    returned under their own names as [1, N, ...].

    Example:
        >>> import torch
        >>> ids = torch.tensor([[1, 2, 3], [4, 0, 0]])
        >>> out = build_packed_batch(ids, [3, 1], [1, 0])
        >>> out["input_ids"].tolist(), out["cu_seqlens"].tolist(), out["max_seqlen"]
        ([[4, 1, 2, 3]], [0, 1, 4], 3)
    """
    if input_ids.dim() != 2:
        raise ValueError(
            f"build_packed_batch: input_ids must be [B, T], got shape {tuple(input_ids.shape)}"
        )
    batch_size, seq_len = input_ids.shape
    sizes = _as_int_list(lengths)
    if len(sizes) != batch_size:
        raise ValueError(
            f"build_packed_batch: {len(sizes)} lengths for {batch_size} rows of input_ids; "
            f"pass one length per row"
        )
    indices = _check_bin(bin_indices, batch_size, "build_packed_batch")
    too_long = [(i, sizes[i]) for i in indices if not 0 <= sizes[i] <= seq_len]
    if too_long:
        raise ValueError(
            f"build_packed_batch: (index, length) {too_long} do not fit rows of {seq_len} tokens; "
            f"lengths must count the real tokens of each padded row"
        )
    bin_sizes = [sizes[i] for i in indices]
    device = input_ids.device
    cu_seqlens = torch.zeros(len(indices) + 1, dtype=torch.int32, device=device)
    cu_seqlens[1:] = torch.cumsum(torch.tensor(bin_sizes, device=device), dim=0)
    position_ids = torch.cat([torch.arange(n, device=device) for n in bin_sizes])
    packed: dict[str, torch.Tensor | int] = {
        "input_ids": torch.cat([input_ids[i, : sizes[i]] for i in indices]).unsqueeze(0),
        "position_ids": position_ids.unsqueeze(0),
        "cu_seqlens": cu_seqlens,
        "max_seqlen": max(bin_sizes),
    }
    for name, tensor in (token_tensors or {}).items():
        if name in packed:
            raise ValueError(
                f"build_packed_batch: token_tensors key {name!r} clashes with an output name"
            )
        if tensor.dim() < 2 or tensor.shape[0] != batch_size or tensor.shape[1] != seq_len:
            raise ValueError(
                f"build_packed_batch: token_tensors[{name!r}] has shape {tuple(tensor.shape)}, "
                f"expected [{batch_size}, {seq_len}, ...] like input_ids"
            )
        packed[name] = torch.cat([tensor[i, : sizes[i]] for i in indices]).unsqueeze(0)
    return packed


def unpack_logprobs(
    packed: torch.Tensor,
    lengths: Sequence[int] | torch.Tensor,
    bin_indices: Sequence[int],
    seq_len: int,
) -> torch.Tensor:
    """Scatter per-token values of one packed row back to a right-padded [len(bin), T] block.

    Row k of the result belongs to sample `bin_indices[k]`; positions past its length are 0.
    Trailing dims are kept: [1, N, V] unpacks to [len(bin), T, V].

    Example:
        >>> import torch
        >>> packed = torch.tensor([[4.0, 1.0, 2.0, 3.0]])
        >>> unpack_logprobs(packed, [3, 1], [1, 0], seq_len=3).tolist()
        [[4.0, 0.0, 0.0], [1.0, 2.0, 3.0]]
    """
    if packed.dim() < 2 or packed.shape[0] != 1:
        raise ValueError(
            f"unpack_logprobs: packed must be [1, N, ...], got shape {tuple(packed.shape)}"
        )
    sizes = _as_int_list(lengths)
    indices = _check_bin(bin_indices, len(sizes), "unpack_logprobs")
    bin_sizes = [sizes[i] for i in indices]
    if sum(bin_sizes) != packed.shape[1]:
        raise ValueError(
            f"unpack_logprobs: the bin's lengths sum to {sum(bin_sizes)} but packed has "
            f"{packed.shape[1]} tokens; pass the same lengths and bin used by build_packed_batch"
        )
    if max(bin_sizes) > seq_len:
        raise ValueError(
            f"unpack_logprobs: seq_len={seq_len} is shorter than a sequence of {max(bin_sizes)} tokens"
        )
    out = packed.new_zeros((len(indices), seq_len, *packed.shape[2:]))
    for row, chunk in enumerate(torch.split(packed[0], bin_sizes, dim=0)):
        out[row, : chunk.shape[0]] = chunk
    return out
