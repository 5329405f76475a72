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

from nemo_rl.lazy_exports import lazy_exports

# Names load on first use: reading a dataset source (`nemo_rl.data.sources`) must not import
# torch, which batches and packing need (the CLI checks sources before torch loads).
_LAZY = {
    "BatchedDataDict": ".batched_data_dict",
    "ChatFormatError": ".chat",
    "render_prompt_messages": ".chat",
    "tokenize_conversation": ".chat",
    "tokenize_prompt": ".chat",
    "ColumnError": ".datamodule",
    "DataModule": ".datamodule",
    "dynamic_microbatches": ".dynamic_batching",
    "iter_dynamic_microbatches": ".dynamic_batching",
    "microbatch_padded_lengths": ".dynamic_batching",
    "microbatch_token_counts": ".dynamic_batching",
    "PACKING_ALGORITHMS": ".packing",
    "build_packed_batch": ".packing",
    "pack_sequences": ".packing",
    "unpack_logprobs": ".packing",
    "ResumableSampler": ".sampler",
    "DatasetSourceError": ".sources",
    "load_rows": ".sources",
    "register_dataset": ".sources",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


__all__ = sorted(_LAZY)
