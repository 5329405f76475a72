"""GPU: the dtensor backend's micro-batch loops never wait on the GPU per micro-batch.

CUDA's sync debug mode warns at every synchronizing operation (`.item()`, `.cpu()`, a blocking
host-to-device copy), attributed to the Python line that made it. Splitting the same batch into
8x as many micro-batches must not add a single warning from nemo-rl's own code: whatever syncs
it makes happen once per call, not once per micro-batch. The loss here makes no syncs of its
own; syncs inside transformers' forward (mask checks) are printed, not asserted.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from nemo_rl.config import PolicyConfig
from nemo_rl.data import BatchedDataDict
from nemo_rl.infra.cluster import InlineCluster
from nemo_rl_dtensor import DTensorTrainingBackend
from nemo_rl_dtensor.testing import build_tiny_model

pytestmark = pytest.mark.gpu


def sync_free_nll(logprobs, batch, global_valid_tokens, global_valid_seqs):
    mask = batch["token_mask"] * batch["sample_mask"].unsqueeze(-1)
    return -(logprobs * mask).sum() / global_valid_tokens, {}


def count_syncs(call) -> tuple[int, int]:
    """(syncs made by nemo-rl's code, syncs made elsewhere) during `call()`."""
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            call()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    syncs = [w.filename for w in caught if "synchronizing" in str(w.message)]
    ours = sum("nemo_rl" in name for name in syncs)
    return ours, len(syncs) - ours


@pytest.mark.parametrize("packing", [False, True], ids=["padded", "packed"])
def test_syncs_do_not_grow_with_the_number_of_microbatches(tmp_path, packing):
    model = build_tiny_model(tmp_path / "tiny", arch="qwen2")
    gen = torch.Generator().manual_seed(0)
    lengths = torch.randint(8, 33, (16,), generator=gen)
    batch = BatchedDataDict(
        input_ids=torch.randint(10, 200, (16, 32), generator=gen),
        input_lengths=lengths,
        token_mask=(torch.arange(32) < lengths.unsqueeze(1)).float(),
        sample_mask=torch.ones(16),
    )
    counts = {}
    for micro in (8, 1):
        options = (
            {"sequence_packing": True, "max_tokens_per_microbatch": 32 * micro}
            if packing else {"train_micro_batch_size": micro, "logprob_batch_size": micro}
        )
        backend = DTensorTrainingBackend()
        backend.setup(PolicyConfig(model_name=str(model), **options), InlineCluster(device="cuda"))
        backend.train_step(batch, sync_free_nll)  # warm-up: allocator and kernel choice
        backend.get_logprobs(batch)
        counts[micro] = (count_syncs(lambda b=backend: b.train_step(batch, sync_free_nll)),
                         count_syncs(lambda b=backend: b.get_logprobs(batch)))
        backend.shutdown()
    print(f"sync warnings ((ours, elsewhere) in train_step, get_logprobs) by micro-batch size: {counts}")
    # Micro-batch size 1 runs 16 micro-batches, size 8 runs 2 (padded); packing is similar.
    assert [c[0] for c in counts[1]] == [c[0] for c in counts[8]], counts
