"""`selected_logprobs` (chunked log-softmax of the chosen token with its own backward) against
the brute-force autograd formula in float64, over many random shapes, dtypes and chunk sizes."""

from __future__ import annotations

import nemo_rl.training.chunked_logprobs as impl
import pytest
import torch
from nemo_rl.training import selected_logprobs, token_logprobs


def brute_force(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return torch.log_softmax(logits.double(), -1).gather(-1, targets[:, None]).squeeze(-1)


@pytest.mark.parametrize("chunk_elements", [1, 7, 64, 1 << 27])
def test_values_and_gradients_match_brute_force(monkeypatch, chunk_elements):
    monkeypatch.setattr(impl, "CHUNK_ELEMENTS", chunk_elements)
    gen = torch.Generator().manual_seed(chunk_elements)
    for case in range(250):
        rows = int(torch.randint(1, 20, (1,), generator=gen))
        vocab = int(torch.randint(1, 40, (1,), generator=gen))
        scale = float(torch.rand((), generator=gen)) * 30
        logits = (torch.randn(rows, vocab, generator=gen, dtype=torch.float64) * scale)
        targets = torch.randint(0, vocab, (rows,), generator=gen)
        weights = torch.randn(rows, generator=gen, dtype=torch.float64)
        mine = logits.clone().requires_grad_()
        ref = logits.clone().requires_grad_()
        got = selected_logprobs(mine, targets)
        want = brute_force(ref, targets)
        assert got.dtype == torch.float32
        assert torch.allclose(got.double(), want, atol=1e-4, rtol=1e-5), case
        (got.double() * weights).sum().backward()
        (want * weights).sum().backward()
        assert torch.allclose(mine.grad, ref.grad, atol=1e-5, rtol=1e-4), case


def test_bfloat16_logits_get_a_bfloat16_gradient_equal_to_the_float32_formula():
    gen = torch.Generator().manual_seed(3)
    logits = (torch.randn(64, 1000, generator=gen) * 4).bfloat16().requires_grad_()
    targets = torch.randint(0, 1000, (64,), generator=gen)
    ref = logits.detach().float().requires_grad_()
    got = selected_logprobs(logits, targets)
    want = torch.log_softmax(ref, -1).gather(-1, targets[:, None]).squeeze(-1)
    assert torch.allclose(got, want, atol=1e-5)
    got.sum().backward()
    want.sum().backward()
    assert logits.grad.dtype == torch.bfloat16
    assert torch.allclose(logits.grad.float(), ref.grad, atol=1e-2)


def test_token_logprobs_equals_the_shifted_brute_force():
    gen = torch.Generator().manual_seed(1)
    for _ in range(100):
        batch, width, vocab = (int(torch.randint(1, 6, (1,), generator=gen)) for _ in range(3))
        logits = torch.randn(batch, width, vocab + 1, generator=gen, dtype=torch.float64)
        ids = torch.randint(0, vocab + 1, (batch, width), generator=gen)
        want = torch.zeros(batch, width, dtype=torch.float64)
        for b in range(batch):
            for t in range(1, width):
                want[b, t] = torch.log_softmax(logits[b, t - 1], -1)[ids[b, t]]
        assert torch.allclose(token_logprobs(logits, ids).double(), want, atol=1e-5)


def test_shapes_are_checked():
    with pytest.raises(ValueError, match="must be \\[N, V\\]"):
        selected_logprobs(torch.zeros(2, 3, 4), torch.zeros(2, dtype=torch.long))


def test_compiled_kernels_match_brute_force(monkeypatch):
    """`compiled=True` traces the fused forward and backward through dynamo (`aot_eager` here:
    inductor on the CPU needs minutes of C++ compilation; the GPU suite runs inductor) and gives
    the brute-force values and gradients, over random shapes, scales and dtypes."""
    monkeypatch.setattr(impl, "COMPILE_BACKEND", "aot_eager")
    gen = torch.Generator().manual_seed(11)
    for case in range(40):
        rows = int(torch.randint(1, 30, (1,), generator=gen))
        vocab = int(torch.randint(2, 50, (1,), generator=gen))
        scale = float(torch.rand((), generator=gen)) * 30
        dtype = (torch.float64, torch.float32)[case % 2]
        logits = torch.randn(rows, vocab, generator=gen, dtype=torch.float64) * scale
        targets = torch.randint(0, vocab, (rows,), generator=gen)
        weights = torch.randn(rows, generator=gen, dtype=torch.float64)
        mine = logits.to(dtype).clone().requires_grad_()
        ref = logits.clone().requires_grad_()
        got = selected_logprobs(mine, targets, compiled=True)
        want = brute_force(ref, targets)
        assert got.dtype == torch.float32
        assert torch.allclose(got.double(), want, atol=1e-4, rtol=1e-5), case
        (got.double() * weights).sum().backward()
        (want * weights).sum().backward()
        assert mine.grad.dtype == dtype
        assert torch.allclose(mine.grad.double(), ref.grad, atol=1e-5, rtol=1e-4), case


def test_compiled_and_chunked_bfloat16_gradients_agree(monkeypatch):
    monkeypatch.setattr(impl, "COMPILE_BACKEND", "aot_eager")
    gen = torch.Generator().manual_seed(5)
    logits = (torch.randn(48, 500, generator=gen) * 4).bfloat16()
    targets = torch.randint(0, 500, (48,), generator=gen)
    grads = []
    for compiled in (False, True):
        leaf = logits.clone().requires_grad_()
        values = selected_logprobs(leaf, targets, compiled=compiled)
        values.sum().backward()
        grads.append((values, leaf.grad))
    assert torch.equal(grads[0][0], grads[1][0])
    assert grads[1][1].dtype == torch.bfloat16
    assert torch.allclose(grads[0][1].float(), grads[1][1].float(), atol=1e-2)
