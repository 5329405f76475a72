"""Batches and how they are cut: `BatchedDataDict`, sequence packing, token-budget micro-batches.

Example:
    >>> import torch
    >>> from nemo_rl.data import BatchedDataDict, dynamic_microbatches
    >>> BatchedDataDict(input_ids=torch.zeros(2, 3)).size
    2
    >>> dynamic_microbatches([1, 1, 4], max_tokens=4)
    [[0, 1], [2]]
"""

from __future__ import annotations

from nemo_rl.data.batched_data_dict import BatchedDataDict
from nemo_rl.data.dynamic_batching import (
    dynamic_microbatches,
    iter_dynamic_microbatches,
    microbatch_padded_lengths,
    microbatch_token_counts,
)
from nemo_rl.data.packing import (
    PACKING_ALGORITHMS,
    build_packed_batch,
    pack_sequences,
    unpack_logprobs,
)

__all__ = [
    "PACKING_ALGORITHMS",
    "BatchedDataDict",
    "build_packed_batch",
    "dynamic_microbatches",
    "iter_dynamic_microbatches",
    "microbatch_padded_lengths",
    "microbatch_token_counts",
    "pack_sequences",
    "unpack_logprobs",
]
