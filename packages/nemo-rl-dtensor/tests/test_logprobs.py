"""Per-token log-probs: hand-computed values, and packed rows equal padded rows on a real model."""

from __future__ import annotations

import math

import torch
from nemo_rl.training import (
    ReferenceWeights,
    length_mask,
    packed_logprobs,
    padded_logprobs,
    token_logprobs,
)
from transformers import AutoModelForCausalLM


def test_token_logprobs_hand_computed():
    # Position 0 predicts token 1 from logits [0, ln 3] -> p = 3/4; position 1 predicts token 0
    # from logits [ln 2, 0] -> p = 2/3. Column 0 has no prediction and is 0.
    logits = torch.tensor([[[0.0, math.log(3.0)], [math.log(2.0), 0.0], [5.0, 5.0]]])
    out = token_logprobs(logits.to(torch.bfloat16), torch.tensor([[1, 1, 0]]))
    assert out.dtype == torch.float32
    torch.testing.assert_close(
        out, torch.tensor([[0.0, math.log(3 / 4), math.log(2 / 3)]]), atol=2e-2, rtol=0
    )
    exact = token_logprobs(logits, torch.tensor([[1, 1, 0]]))
    torch.testing.assert_close(exact, torch.tensor([[0.0, math.log(3 / 4), math.log(2 / 3)]]))


def test_length_mask():
    assert length_mask(torch.tensor([0, 2]), 3).tolist() == [
        [False, False, False],
        [True, True, False],
    ]


def test_packed_rows_equal_padded_rows(tiny_qwen2_path):
    model = AutoModelForCausalLM.from_pretrained(tiny_qwen2_path)
    ids = torch.randint(6, 200, (3, 7), generator=torch.Generator().manual_seed(0))
    lengths = torch.tensor([7, 1, 4])
    ids[1, 1:] = 0
    ids[2, 4:] = 0
    with torch.no_grad():
        padded = padded_logprobs(model, ids, lengths)
        packed = packed_logprobs(model, ids, lengths, [2, 0, 1])
    torch.testing.assert_close(packed, padded[[2, 0, 1]], atol=1e-5, rtol=0)
    assert (padded[2, 4:] == 0).all() and (padded[:, 0] == 0).all()
    # Each row alone, with no padding at all, gives the same values.
    for i, n in enumerate(lengths.tolist()):
        with torch.no_grad():
            alone = token_logprobs(model(ids[i : i + 1, :n]).logits, ids[i : i + 1, :n])
        torch.testing.assert_close(padded[i : i + 1, :n], alone, atol=1e-5, rtol=0)


def test_reference_weights_swap_in_and_back():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 1))
    initial = [p.detach().clone() for p in model.parameters()]
    ref = ReferenceWeights(model, store_device="cpu")
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    trained = [p.detach().clone() for p in model.parameters()]
    with ref.swapped_in(model):
        for p, q in zip(model.parameters(), initial, strict=True):
            assert torch.equal(p, q)
    for p, q in zip(model.parameters(), trained, strict=True):
        assert torch.equal(p, q)
    with ref.swapped_in(model):  # a second swap still gives the initial weights
        assert torch.equal(next(model.parameters()), initial[0])


def test_backend_logprobs_packed_equal_unpacked(tiny_qwen2_path):
    """Through the training backend: packing several sequences per micro-batch (position_ids
    restarting per sequence) gives the padded pass's log-probs within 1e-5 in float32."""
    from nemo_rl.config import PolicyConfig
    from nemo_rl.data import BatchedDataDict
    from nemo_rl.infra.cluster import InlineCluster
    from nemo_rl_dtensor import DTensorTrainingBackend

    gen = torch.Generator().manual_seed(3)
    lengths = torch.randint(1, 25, (9,), generator=gen)
    ids = torch.randint(6, 200, (9, 24), generator=gen) * (torch.arange(24) < lengths[:, None])
    batch = BatchedDataDict(input_ids=ids, input_lengths=lengths)
    results = []
    for options in ({"logprob_batch_size": 4},
                    {"sequence_packing": True, "max_tokens_per_microbatch": 48}):
        backend = DTensorTrainingBackend()
        backend.setup(PolicyConfig(model_name=str(tiny_qwen2_path), precision="float32", **options),
                      InlineCluster(device="cpu"))
        results.append(backend.get_logprobs(batch))
        backend.shutdown()
    padded, packed = results
    torch.testing.assert_close(packed, padded, atol=1e-5, rtol=0)
    assert (packed * (torch.arange(24) >= lengths[:, None]) == 0).all()  # padding stays 0
    assert (packed[:, 1:].abs().sum(-1) > 0)[lengths > 1].all()  # real values, not zeros
