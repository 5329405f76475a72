"""Variable-length attention (`policy.dtensor.attention`): packed rows attend within each
sequence only, and every other call is exactly SDPA's."""

from __future__ import annotations

import pytest
import torch
from nemo_rl.config import PolicyConfig
from nemo_rl.data import BatchedDataDict
from nemo_rl.training import packed_logprobs, padded_logprobs
from nemo_rl_dtensor.attention import (
    per_sequence_attention,
    register,
    resolve_attention,
    uses_varlen,
    varlen_attention_forward,
    varlen_mask,
)
from nemo_rl_dtensor.model_loading import load_causal_lm


def block_causal_reference(q, k, v, lengths, scale):
    """Brute force: softmax over an explicit block-diagonal causal mask, in float64."""
    groups = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
    doc = torch.repeat_interleave(torch.arange(len(lengths)), torch.tensor(lengths))
    pos = torch.arange(len(doc))
    allowed = (doc[:, None] == doc[None, :]) & (pos[None, :] <= pos[:, None])
    scores = (q.double() @ k.double().transpose(-1, -2)) * scale
    scores = scores.masked_fill(~allowed, float("-inf"))
    return (scores.softmax(-1) @ v.double()).transpose(1, 2)


def test_per_sequence_attention_matches_brute_force_over_random_packings():
    gen = torch.Generator().manual_seed(0)
    for case in range(300):
        docs = int(torch.randint(1, 6, (1,), generator=gen))
        lengths = torch.randint(1, 12, (docs,), generator=gen).tolist()
        kv_heads = int(torch.randint(1, 3, (1,), generator=gen))
        heads = kv_heads * int(torch.randint(1, 4, (1,), generator=gen))
        dim = int(torch.randint(1, 5, (1,), generator=gen)) * 4
        n = sum(lengths)
        q = torch.randn(1, heads, n, dim, generator=gen, dtype=torch.float64)
        k = torch.randn(1, kv_heads, n, dim, generator=gen, dtype=torch.float64)
        v = torch.randn(1, kv_heads, n, dim, generator=gen, dtype=torch.float64)
        cu = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()], dtype=torch.int32)
        scale = float(torch.rand((), generator=gen)) + 0.1
        got = per_sequence_attention(q, k, v, cu, scale)
        want = block_causal_reference(q, k, v, lengths, scale)
        assert torch.allclose(got, want, atol=1e-10), (case, lengths, heads, kv_heads)


def test_calls_without_sequence_bounds_are_sdpa_exactly():
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    module = torch.nn.Module()
    q, k = torch.randn(2, 4, 6, 8), torch.randn(2, 4, 6, 8)
    mask = torch.ones(2, 1, 6, 6, dtype=torch.bool).tril()
    mask[0, :, :, :2] = False  # left padding
    for attn_mask in (None, mask):
        got, _ = varlen_attention_forward(module, q, k, k, attn_mask, scaling=0.3)
        want, _ = sdpa_attention_forward(module, q, k, k, attn_mask, scaling=0.3)
        assert torch.equal(got, want)


def test_mask_is_none_for_causal_calls_and_sdpa_s_otherwise():
    import inspect

    from transformers.masking_utils import sdpa_mask

    # The arguments transformers passes (their names vary across versions).
    args = {"batch_size": 1, "cache_position": torch.arange(4), "kv_length": 4}
    if "q_length" in inspect.signature(sdpa_mask).parameters:
        args["q_length"] = 4
    assert varlen_mask(**args, attention_mask=None, allow_is_causal_skip=True) is None
    padding = torch.tensor([[0, 1, 1, 1]], dtype=torch.bool)
    got = varlen_mask(**args, attention_mask=padding)
    want = sdpa_mask(**args, attention_mask=padding)
    assert torch.equal(got, want)


@pytest.fixture(scope="module")
def models(tiny_qwen2_path):
    """The tiny Qwen2 (grouped-query attention) with varlen and with transformers' SDPA."""
    varlen = load_causal_lm(str(tiny_qwen2_path), attention=register()).eval()
    sdpa = load_causal_lm(str(tiny_qwen2_path), attention="sdpa").eval()
    assert uses_varlen(varlen) and not uses_varlen(sdpa)
    return varlen, sdpa


def _batch(lengths: list[int], vocab: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    ids = torch.zeros(len(lengths), max(lengths), dtype=torch.long)
    for row, n in enumerate(lengths):
        ids[row, :n] = torch.randint(3, vocab, (n,), generator=gen)
    return ids, torch.tensor(lengths)


def test_packed_varlen_log_probs_and_gradients_equal_the_padded_sdpa_pass(models):
    varlen, sdpa = models
    vocab = varlen.config.vocab_size
    for seed in range(5):
        lengths = torch.randint(2, 20, (5,), generator=torch.Generator().manual_seed(seed)).tolist()
        ids, lens = _batch(lengths, vocab, seed)
        reference = padded_logprobs(sdpa, ids, lens)
        packed = packed_logprobs(varlen, ids, lens, list(range(len(lengths))), sequence_bounds=True)
        assert torch.allclose(packed, reference, atol=1e-5), seed
    # Gradients: the same loss through both paths gives the same parameter gradients.
    ids, lens = _batch([7, 12, 3], vocab, 9)
    grads = []
    for model, packed in ((varlen, True), (sdpa, False)):
        model.zero_grad()
        if packed:
            out = packed_logprobs(model, ids, lens, [0, 1, 2], sequence_bounds=True)
        else:
            out = padded_logprobs(model, ids, lens)
        out.sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
        model.zero_grad()
    assert torch.allclose(grads[0], grads[1], atol=1e-5)


def test_padded_log_probs_without_a_mask_equal_the_masked_pass(models):
    _, sdpa = models
    ids, lens = _batch([3, 9, 6], sdpa.config.vocab_size, 4)
    from nemo_rl.training.logprobs import length_mask, token_logprobs

    masked = sdpa(input_ids=ids, attention_mask=length_mask(lens, ids.shape[1]).long()).logits
    want = token_logprobs(masked, ids) * length_mask(lens, ids.shape[1])
    assert torch.allclose(padded_logprobs(sdpa, ids, lens), want, atol=1e-6)


def test_left_padded_generation_is_unchanged_by_varlen(models):
    varlen, sdpa = models
    ids = torch.tensor([[0, 0, 5, 6, 7], [4, 5, 6, 7, 8]])
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    outs = [m.generate(input_ids=ids, attention_mask=mask, max_new_tokens=6, do_sample=False,
                       pad_token_id=0) for m in (varlen, sdpa)]
    assert torch.equal(outs[0], outs[1])


def test_training_backend_packs_with_varlen_and_matches_sdpa(tiny_qwen2_path):
    from nemo_rl.algorithms.sft import NLLLoss
    from nemo_rl.infra.cluster import InlineCluster
    from nemo_rl_dtensor import DTensorTrainingBackend

    ids, lens = _batch([5, 11, 8, 3], 60, 2)
    mask = (torch.arange(ids.shape[1]) < lens[:, None]).float()
    mask[:, 0] = 0
    batch = BatchedDataDict(input_ids=ids, input_lengths=lens, token_mask=mask, sample_mask=torch.ones(4))
    losses = {}
    for attention in ("varlen", "sdpa"):
        backend = DTensorTrainingBackend()
        backend.setup(PolicyConfig(model_name=str(tiny_qwen2_path), precision="float32",
                                   sequence_packing=True, max_tokens_per_microbatch=16,
                                   dtensor={"attention": attention}), InlineCluster(device="cpu"))
        try:
            losses[attention] = [backend.train_step(batch, NLLLoss())["loss"] for _ in range(2)]
        finally:
            backend.shutdown()
    assert losses["varlen"] == pytest.approx(losses["sdpa"], rel=1e-5)


def test_choices():
    assert resolve_attention("auto", "cpu", torch.bfloat16, None) is None
    assert resolve_attention("eager", "cuda", torch.bfloat16, None) == "eager"
    with pytest.raises(ValueError, match="policy.dtensor.attention='flash'"):
        resolve_attention("flash", "cuda", torch.bfloat16, None)
    with pytest.raises(ValueError, match="attention"):
        PolicyConfig(dtensor={"attention": "flash"})


@pytest.mark.gpu
def test_the_cuda_kernel_matches_the_per_sequence_reference(monkeypatch):
    import nemo_rl_dtensor.attention as attention

    reference = attention.per_sequence_attention

    def no_fallback(*args, **kwargs):
        raise AssertionError("the varlen kernel was not used")

    monkeypatch.setattr(attention, "per_sequence_attention", no_fallback)
    gen = torch.Generator().manual_seed(0)
    for heads, kv_heads in ((12, 2), (4, 4)):
        lengths = [700, 1, 333, 1024]
        n = sum(lengths)
        q = torch.randn(1, heads, n, 128, generator=gen).cuda().bfloat16().requires_grad_()
        k = torch.randn(1, kv_heads, n, 128, generator=gen).cuda().bfloat16().requires_grad_()
        v = torch.randn(1, kv_heads, n, 128, generator=gen).cuda().bfloat16().requires_grad_()
        cu = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()], dtype=torch.int32).cuda()
        got, _ = varlen_attention_forward(torch.nn.Module(), q, k, v, None, scaling=128 ** -0.5,
                                          cu_seq_lens_q=cu, max_length_q=max(lengths))
        want = reference(q.float(), k.float(), v.float(), cu, 128 ** -0.5)
        assert (got.float() - want).abs().max() < 2e-2
        (g_got,) = torch.autograd.grad(got.float().square().sum(), q)
        (g_want,) = torch.autograd.grad(want.square().sum(), q)
        assert torch.allclose(g_got.float(), g_want.float(), atol=5e-2, rtol=5e-2)
        # Under autocast, query and key arrive in float32 (rotary embeddings); still the kernel.
        with torch.autocast("cuda", dtype=torch.bfloat16):
            mixed, _ = varlen_attention_forward(torch.nn.Module(), q.float(), k.float(), v, None,
                                                cu_seq_lens_q=cu, max_length_q=max(lengths))
        assert mixed.dtype == torch.bfloat16 and (mixed.float() - want).abs().max() < 2e-2
