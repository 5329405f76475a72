"""GPU: the dtensor backend's micro-batch loops never wait on the GPU per micro-batch, and HF
generation never waits on it per decoding step.

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
from nemo_rl.config import GenerationConfig, PolicyConfig, SamplingParams
from nemo_rl.data import BatchedDataDict
from nemo_rl.infra.cluster import InlineCluster
from nemo_rl_dtensor import DTensorTrainingBackend, HFGenerationBackend
from nemo_rl_dtensor.static_decoding import FINISH_CHECK_EVERY
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


@pytest.mark.parametrize("loss_name", ["nll", "clipped_pg"])
def test_builtin_losses_add_no_syncs_per_microbatch(tmp_path, loss_name):
    # The built-in losses return 0-dim tensor metrics and check counts only on the host, so with
    # them too the syncs of nemo-rl's code do not grow with the number of micro-batches.
    from nemo_rl.algorithms.grpo import ClippedPGLoss, GRPOLossConfig
    from nemo_rl.algorithms.sft import NLLLoss

    model = build_tiny_model(tmp_path / "tiny", arch="qwen2")
    gen = torch.Generator().manual_seed(0)
    lengths = torch.randint(8, 33, (16,), generator=gen)
    batch = BatchedDataDict(
        input_ids=torch.randint(10, 200, (16, 32), generator=gen),
        input_lengths=lengths,
        token_mask=(torch.arange(32) < lengths.unsqueeze(1)).float(),
        sample_mask=torch.ones(16),
        advantages=torch.randn(16, generator=gen),
        generation_logprobs=-torch.rand(16, 32, generator=gen),
        reference_logprobs=-torch.rand(16, 32, generator=gen),
    )
    loss_fn = NLLLoss() if loss_name == "nll" else ClippedPGLoss(
        GRPOLossConfig(kl_penalty=0.05, use_importance_sampling_correction=True)
    )  # no prev_logprobs: the loss reuses the training forward's (one update per rollout)
    counts = {}
    for micro in (8, 1):
        backend = DTensorTrainingBackend()
        backend.setup(PolicyConfig(model_name=str(model), train_micro_batch_size=micro),
                      InlineCluster(device="cuda"))
        backend.train_step(batch, loss_fn)  # warm-up: allocator and kernel choice
        counts[micro] = count_syncs(lambda b=backend: b.train_step(batch, loss_fn))
        backend.shutdown()
    print(f"sync warnings (ours, elsewhere) in train_step with {loss_name} by micro-batch size: {counts}")
    assert counts[1][0] == counts[8][0], counts


def test_generation_syncs_do_not_grow_with_the_number_of_new_tokens(tmp_path):
    # HF decoding is bound by the host launching kernels: a sync per step in our hook would stall
    # it. The static decoder's only step-dependent sync is its "every row finished?" check, once
    # per FINISH_CHECK_EVERY tokens (it lets a batch stop early).
    model = build_tiny_model(tmp_path / "tiny", arch="qwen2")
    gen = HFGenerationBackend()
    gen.setup(GenerationConfig(model_name=str(model)), InlineCluster(device="cuda"))
    prompts = BatchedDataDict(
        input_ids=torch.randint(10, 200, (8, 12), generator=torch.Generator().manual_seed(0)),
        input_lengths=torch.tensor([12, 5, 9, 12, 1, 7, 12, 3]),
    )

    def sampling(n):
        return SamplingParams(temperature=1.0, max_new_tokens=n, stop_token_ids=[], seed=0)

    gen.generate(prompts, sampling(4))  # warm-up: loads the model, allocator and kernel choice
    counts = {n: count_syncs(lambda n=n: gen.generate(prompts, sampling(n))) for n in (4, 32)}
    print(f"sync warnings (ours, elsewhere) in generate by max_new_tokens: {counts}")
    finish_checks = (32 - 1) // FINISH_CHECK_EVERY  # at token 16; token 32 ends the loop first
    assert counts[32][0] == counts[4][0] + finish_checks, counts
