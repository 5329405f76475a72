"""Data: loading rows (`DataModule`, `load_rows`), the resumable sampler, chat tokenisation, and
batches and how they are cut (`BatchedDataDict`, sequence packing, token-budget micro-batches).

Start with `DataModule(train, val, prompt_key=..., answer_key=...)`; see `nemo_rl.data.datamodule`.

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
from nemo_rl.data.chat import (
    ChatFormatError,
    render_prompt_messages,
    tokenize_conversation,
    tokenize_prompt,
)
from nemo_rl.data.datamodule import ColumnError, DataModule
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
from nemo_rl.data.sampler import ResumableSampler
from nemo_rl.data.sources import DatasetSourceError, load_rows, register_dataset

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
    # loading rows, the DataModule, the resumable sampler, chat tokenisation
    "ChatFormatError",
    "ColumnError",
    "DataModule",
    "DatasetSourceError",
    "ResumableSampler",
    "load_rows",
    "register_dataset",
    "render_prompt_messages",
    "tokenize_conversation",
    "tokenize_prompt",
]
