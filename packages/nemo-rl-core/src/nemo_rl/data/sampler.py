"""A batch sampler whose position is part of the checkpoint, so a resumed run sees the same data.

Epoch `e` is a permutation of the row indices drawn from a `torch.Generator` seeded with
`seed + e`; it depends on nothing else, so it can be recomputed on resume instead of stored.
The sampler's state is just `(epoch, next batch within the epoch)`.

Example:
    >>> from nemo_rl.data import ResumableSampler
    >>> sampler = ResumableSampler(num_rows=5, batch_size=2, shuffle=False)
    >>> next(sampler), next(sampler), next(sampler)   # the 5th row is dropped (drop_last)
    ([0, 1], [2, 3], [0, 1])
    >>> sampler.epoch, len(sampler)
    (1, 2)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch


class ResumableSampler:
    """An endless iterator of row-index lists, `batch_size` at a time, epoch after epoch.

    `next(sampler)` gives the next batch (`iter(sampler)` is the sampler itself); the caller
    decides when to stop (by step count or by `epoch`). `state_dict()` taken after receiving a
    batch describes the *next* batch, so `load_state_dict()` on a fresh sampler
    continues exactly where the old one stopped. `epoch` counts completed epochs: it moves to
    `e + 1` as soon as the last batch of epoch `e` is handed out.

    Example:
        >>> s = ResumableSampler(num_rows=4, batch_size=2, seed=7)
        >>> first = next(s); state = s.state_dict()
        >>> resumed = ResumableSampler(num_rows=4, batch_size=2, seed=7)
        >>> resumed.load_state_dict(state)
        >>> next(resumed) == next(s)
        True
    """

    def __init__(
        self,
        num_rows: int,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = True,
    ) -> None:
        if num_rows <= 0:
            raise ValueError(f"ResumableSampler: num_rows={num_rows}; the dataset has no rows")
        if batch_size <= 0:
            raise ValueError(f"ResumableSampler: batch_size={batch_size}; it must be at least 1")
        if drop_last and batch_size > num_rows:
            raise ValueError(
                f"ResumableSampler: batch_size={batch_size} is larger than the dataset "
                f"({num_rows} rows), so with drop_last no full batch exists; use a smaller batch "
                f"size, more data, or drop_last=False"
            )
        self.num_rows = num_rows
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self._epoch = 0
        self._next_batch = 0
        self._order_cache: tuple[int, list[int]] | None = None

    @property
    def epoch(self) -> int:
        """Completed epochs (the epoch the next batch comes from)."""
        return self._epoch

    @property
    def batch_in_epoch(self) -> int:
        """Index within the current epoch of the next batch to be handed out."""
        return self._next_batch

    def __len__(self) -> int:
        """Batches per epoch."""
        if self.drop_last:
            return self.num_rows // self.batch_size
        return -(-self.num_rows // self.batch_size)

    def epoch_order(self, epoch: int) -> list[int]:
        """The row order of `epoch`: a seeded permutation, or `0..num_rows-1` without shuffle."""
        if not self.shuffle:
            return list(range(self.num_rows))
        if self._order_cache is None or self._order_cache[0] != epoch:
            generator = torch.Generator().manual_seed(self.seed + epoch)
            order = torch.randperm(self.num_rows, generator=generator).tolist()
            self._order_cache = (epoch, order)
        return self._order_cache[1]

    def __iter__(self) -> Iterator[list[int]]:
        return self

    def __next__(self) -> list[int]:
        """The next batch of row indices; never raises StopIteration (the caller decides when
        to stop). The position advances before returning, so `state_dict()` read right after a
        batch is received already points at the following batch."""
        order = self.epoch_order(self._epoch)
        start = self._next_batch * self.batch_size
        batch = order[start : start + self.batch_size]
        self._next_batch += 1
        if self._next_batch >= len(self):
            self._epoch += 1
            self._next_batch = 0
        return batch

    def state_dict(self) -> dict[str, Any]:
        """The position (and the settings it is only valid for), JSON-serialisable."""
        return {
            "epoch": self._epoch,
            "batch_in_epoch": self._next_batch,
            "num_rows": self.num_rows,
            "batch_size": self.batch_size,
            "shuffle": self.shuffle,
            "seed": self.seed,
            "drop_last": self.drop_last,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from `state`; refuses a state taken with different data or settings."""
        for key in ("num_rows", "batch_size", "shuffle", "seed", "drop_last"):
            if key in state and state[key] != getattr(self, key):
                raise ValueError(
                    f"ResumableSampler.load_state_dict: the checkpoint has {key}={state[key]!r} "
                    f"but this sampler has {key}={getattr(self, key)!r}; resuming would not "
                    f"continue the same data order: restore the original {key} (dataset, "
                    f"batch size, seed) or start a fresh run"
                )
        missing = {"epoch", "batch_in_epoch"} - set(state)
        if missing:
            raise ValueError(
                f"ResumableSampler.load_state_dict: the state lacks {', '.join(sorted(missing))}; "
                f"pass a dict produced by ResumableSampler.state_dict()"
            )
        epoch, batch = int(state["epoch"]), int(state["batch_in_epoch"])
        if epoch < 0 or not 0 <= batch < len(self):
            raise ValueError(
                f"ResumableSampler.load_state_dict: position epoch={epoch}, "
                f"batch_in_epoch={batch} is outside 0..{len(self) - 1} batches per epoch"
            )
        self._epoch, self._next_batch = epoch, batch
