"""`BatchedDataDict`: a dict of per-sample columns that all share one batch size.

Every value is either a `torch.Tensor` whose dim 0 is the batch, or a `list` with one item per
sample (strings, chat messages, metadata dicts). The methods cut, combine and distribute batches
the way the trainer needs: concatenate generation results, expand prompts into several
generations, split a step over data-parallel ranks, and iterate over micro-batches.

Example:
    >>> import torch
    >>> from nemo_rl.data import BatchedDataDict
    >>> batch = BatchedDataDict(input_ids=torch.tensor([[1, 2], [3, 4]]), prompt=["a", "b"])
    >>> batch.size
    2
    >>> batch.repeat_interleave(2)["prompt"]
    ['a', 'a', 'b', 'b']
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import torch

_VALUE_HINT = (
    "values must be a torch.Tensor with the batch on dim 0 or a list with one item per sample"
)


def _batch_len(key: str, value: Any) -> int:
    """The batch size of one column, or a TypeError saying what the column should be."""
    if isinstance(value, torch.Tensor):
        if value.dim() == 0:
            raise TypeError(
                f"BatchedDataDict[{key!r}] is a 0-dim tensor, which has no batch dimension; "
                f"store one value per sample, e.g. torch.tensor([...]) of shape [B]"
            )
        return value.shape[0]
    if isinstance(value, list):
        return len(value)
    raise TypeError(f"BatchedDataDict[{key!r}] is a {type(value).__name__}; {_VALUE_HINT}")


def _pad_and_cat(
    key: str, tensors: list[torch.Tensor], pad_value: float | int | bool
) -> torch.Tensor:
    """Concatenate along dim 0, right-padding every other dim to the largest size seen."""
    ndims = {t.dim() for t in tensors}
    if len(ndims) != 1:
        shapes = [tuple(t.shape) for t in tensors]
        raise ValueError(
            f"from_batches: key {key!r} has tensors of different ranks {shapes}; "
            f"every batch must store {key!r} with the same number of dimensions"
        )
    target = [max(t.shape[d] for t in tensors) for d in range(1, tensors[0].dim())]
    padded = []
    for t in tensors:
        if list(t.shape[1:]) == target:
            padded.append(t)
            continue
        # Allocate the padded block once and copy the data into its leading corner.
        out = t.new_full((t.shape[0], *target), pad_value)
        out[(slice(None), *(slice(0, s) for s in t.shape[1:]))] = t
        padded.append(out)
    return torch.cat(padded, dim=0)


class BatchedDataDict(dict):
    """A `dict[str, torch.Tensor | list]` whose values all have the same batch size.

    The batch sizes are checked when the object is built and whenever `size` is read (item
    assignment after construction is not checked until then). Every method returns a new
    `BatchedDataDict` and leaves this one untouched; slicing returns tensor views, not copies.

    Example:
        >>> import torch
        >>> b = BatchedDataDict({"x": torch.arange(4), "tag": ["a", "b", "c", "d"]})
        >>> b.slice(1, 3)["tag"], b.select_indices([3, 0])["x"].tolist()
        (['b', 'c'], [3, 0])
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _ = self.size  # fail at construction, where the mistake was made

    # ------------------------------------------------------------------ inspection
    @property
    def size(self) -> int:
        """The batch size (0 for an empty dict); ValueError if the columns disagree.

        Example:
            >>> BatchedDataDict(a=[1, 2, 3]).size, BatchedDataDict().size
            (3, 0)
        """
        sizes = {key: _batch_len(key, value) for key, value in self.items()}
        if len(set(sizes.values())) > 1:
            listed = ", ".join(f"{k}={n}" for k, n in sizes.items())
            raise ValueError(
                f"BatchedDataDict columns have different batch sizes ({listed}); "
                f"every value needs one entry per sample along dim 0"
            )
        return next(iter(sizes.values()), 0)

    # ------------------------------------------------------------------ building
    @classmethod
    def from_batches(
        cls,
        batches: Sequence[Mapping[str, Any]],
        pad_value_dict: Mapping[str, float | int | bool] | None = None,
    ) -> BatchedDataDict:
        """Concatenate batches along the batch dimension.

        Tensors whose trailing dims differ (e.g. [B1, T1] and [B2, T2]) are right-padded to the
        largest size with `pad_value_dict.get(key, 0)`. Lists are concatenated. Batches with no
        keys at all are skipped, so an empty accumulator can be the first element.

        Example:
            >>> import torch
            >>> a = {"ids": torch.tensor([[1, 2, 3]])}
            >>> b = {"ids": torch.tensor([[4]])}
            >>> BatchedDataDict.from_batches([a, b], pad_value_dict={"ids": -1})["ids"].tolist()
            [[1, 2, 3], [4, -1, -1]]
        """
        pad_value_dict = pad_value_dict or {}
        non_empty = [(i, b) for i, b in enumerate(batches) if len(b) > 0]
        if not non_empty:
            return cls()
        for _, b in non_empty:
            cls(b)  # validates each input batch's own consistency and value types
        first_index, first = non_empty[0]
        keys = list(first.keys())
        for i, b in non_empty[1:]:
            if set(b.keys()) != set(keys):
                missing = sorted(set(keys) - set(b.keys()))
                extra = sorted(set(b.keys()) - set(keys))
                raise ValueError(
                    f"from_batches: batch {i} has different keys from batch {first_index} "
                    f"(missing: {missing}, extra: {extra}); every batch needs the same keys"
                )
        merged: dict[str, Any] = {}
        for key in keys:
            values = [b[key] for _, b in non_empty]
            if all(isinstance(v, torch.Tensor) for v in values):
                merged[key] = _pad_and_cat(key, values, pad_value_dict.get(key, 0))
            elif all(isinstance(v, list) for v in values):
                merged[key] = [item for v in values for item in v]
            else:
                kinds = [type(v).__name__ for v in values]
                raise ValueError(
                    f"from_batches: key {key!r} is a tensor in some batches and a list in "
                    f"others ({kinds}); store it with the same type in every batch"
                )
        return cls(merged)

    # ------------------------------------------------------------------ selection
    def slice(self, start: int, end: int) -> BatchedDataDict:
        """Samples `start` to `end` (exclusive); tensors are views, not copies.

        Example:
            >>> BatchedDataDict(a=[0, 1, 2, 3]).slice(1, 3)["a"]
            [1, 2]
        """
        size = self.size
        if not 0 <= start <= end <= size:
            raise IndexError(
                f"slice({start}, {end}) is outside a batch of {size} samples; "
                f"use 0 <= start <= end <= {size}"
            )
        return type(self)({k: v[start:end] for k, v in self.items()})

    def select_indices(self, indices: Sequence[int] | torch.Tensor) -> BatchedDataDict:
        """The samples at `indices` (a list of ints or an integer tensor), in that order.

        Example:
            >>> BatchedDataDict(a=["x", "y", "z"]).select_indices([2, 2, 0])["a"]
            ['z', 'z', 'x']
        """
        if isinstance(indices, torch.Tensor):
            if indices.dtype == torch.bool or indices.is_floating_point() or indices.is_complex():
                raise TypeError(
                    f"select_indices got a {indices.dtype} tensor; pass integer indices "
                    f"(for a boolean mask use mask.nonzero().flatten())"
                )
            index_list = [int(i) for i in indices.flatten().tolist()]
        else:
            index_list = [int(i) for i in indices]
        size = self.size
        bad = [i for i in index_list if not 0 <= i < size]
        if bad:
            raise IndexError(
                f"select_indices: indices {bad[:5]} are out of range for a batch of {size} "
                f"samples; valid indices are 0..{size - 1}"
            )
        out: dict[str, Any] = {}
        for key, value in self.items():
            if isinstance(value, torch.Tensor):
                idx = torch.tensor(index_list, dtype=torch.long, device=value.device)
                out[key] = value.index_select(0, idx)
            else:
                out[key] = [value[i] for i in index_list]
        return type(self)(out)

    def select_keys(self, keys: Iterable[str]) -> BatchedDataDict:
        """A batch with only `keys` (values shared, not copied).

        Example:
            >>> sorted(BatchedDataDict(a=[1], b=[2], c=[3]).select_keys(["a", "c"]))
            ['a', 'c']
        """
        keys = list(keys)
        missing = [k for k in keys if k not in self]
        if missing:
            raise KeyError(
                f"select_keys: {missing} not in the batch; available keys are {sorted(self)}"
            )
        return type(self)({k: self[k] for k in keys})

    def copy(self) -> BatchedDataDict:
        """A shallow copy: a new dict sharing the same tensors and lists.

        Example:
            >>> b = BatchedDataDict(a=[1]); c = b.copy(); c["z"] = [2]
            >>> "z" in b
            False
        """
        return type(self)(self)

    # ------------------------------------------------------------------ expansion and moves
    def repeat_interleave(self, num_repeats: int) -> BatchedDataDict:
        """Each sample repeated `num_repeats` times consecutively (prompt -> its generations).

        Lists repeat references to the same items, they do not copy them.

        Example:
            >>> import torch
            >>> BatchedDataDict(x=torch.tensor([1, 2])).repeat_interleave(3)["x"].tolist()
            [1, 1, 1, 2, 2, 2]
        """
        if not isinstance(num_repeats, int) or num_repeats < 1:
            raise ValueError(
                f"repeat_interleave needs a positive integer, got {num_repeats!r} "
                f"(e.g. num_generations_per_prompt)"
            )
        out: dict[str, Any] = {}
        for key, value in self.items():
            if isinstance(value, torch.Tensor):
                out[key] = value.repeat_interleave(num_repeats, dim=0)
            else:
                out[key] = [item for item in value for _ in range(num_repeats)]
        return type(self)(out)

    def to(self, device: torch.device | str, non_blocking: bool = False) -> BatchedDataDict:
        """Tensors moved to `device` (lists are shared as they are). `non_blocking=True` queues
        host-to-GPU copies without waiting for the GPU's pending work (a blocking copy does).

        Example:
            >>> import torch
            >>> BatchedDataDict(x=torch.zeros(2)).to("cpu")["x"].device.type
            'cpu'
        """
        return type(self)(
            {
                k: v.to(device, non_blocking=non_blocking) if isinstance(v, torch.Tensor) else v
                for k, v in self.items()
            }
        )

    # ------------------------------------------------------------------ distribution
    def shard_by_batch_size(
        self, shards: int, batch_size: int | None = None
    ) -> list[BatchedDataDict]:
        """Split into `shards` equal parts, one per data-parallel rank.

        Without `batch_size`, rank r gets the r-th contiguous block. With `batch_size`, the batch
        is first cut into consecutive chunks of `batch_size` (one optimizer batch each) and every
        chunk is split evenly over the ranks; rank r gets its piece of each chunk, in chunk order,
        so each optimizer step sees `batch_size // shards` samples per rank.

        Example:
            >>> b = BatchedDataDict(a=list(range(8)))
            >>> [s["a"] for s in b.shard_by_batch_size(2)]
            [[0, 1, 2, 3], [4, 5, 6, 7]]
            >>> [s["a"] for s in b.shard_by_batch_size(2, batch_size=4)]
            [[0, 1, 4, 5], [2, 3, 6, 7]]
        """
        if not isinstance(shards, int) or shards < 1:
            raise ValueError(f"shard_by_batch_size needs shards >= 1, got {shards!r}")
        size = self.size
        if batch_size is None:
            if size % shards != 0:
                raise ValueError(
                    f"cannot split a batch of {size} samples into {shards} equal shards; "
                    f"make the number of sequences a multiple of the data-parallel size {shards}"
                )
            per_shard = size // shards
            return [self.slice(r * per_shard, (r + 1) * per_shard) for r in range(shards)]
        if batch_size < 1 or size % batch_size != 0 or batch_size % shards != 0:
            raise ValueError(
                f"shard_by_batch_size(shards={shards}, batch_size={batch_size}) needs the batch "
                f"size ({size}) to be a multiple of batch_size and batch_size to be a multiple of "
                f"shards; choose a train_global_batch_size that divides the sequences per step "
                f"and is divisible by the data-parallel size"
            )
        per_rank = batch_size // shards
        rank_indices: list[list[int]] = [[] for _ in range(shards)]
        for chunk_start in range(0, size, batch_size):
            for r in range(shards):
                start = chunk_start + r * per_rank
                rank_indices[r].extend(range(start, start + per_rank))
        if size == batch_size:  # one chunk: contiguous blocks, so views suffice
            return [self.slice(idx[0], idx[-1] + 1) for idx in rank_indices]
        return [self.select_indices(idx) for idx in rank_indices]

    def make_microbatch_iterator(self, micro_batch_size: int) -> Iterator[BatchedDataDict]:
        """Consecutive slices of `micro_batch_size` samples; the last may be smaller.

        Example:
            >>> b = BatchedDataDict(a=[1, 2, 3, 4, 5])
            >>> [mb["a"] for mb in b.make_microbatch_iterator(2)]
            [[1, 2], [3, 4], [5]]
        """
        if not isinstance(micro_batch_size, int) or micro_batch_size < 1:
            raise ValueError(
                f"make_microbatch_iterator needs micro_batch_size >= 1, got {micro_batch_size!r}"
            )
        size = self.size  # checked now, not at the first next(), so errors point here
        return (
            self.slice(start, min(start + micro_batch_size, size))
            for start in range(0, size, micro_batch_size)
        )
