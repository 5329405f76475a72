"""Fused RMSNorm (`fuse_rms_norms`): the same outputs and gradients as HF's own layers."""

from __future__ import annotations

import pytest
import torch
from nemo_rl_dtensor.fused_norms import fuse_rms_norms, fused_rms_norm_forward
from nemo_rl_dtensor.model_loading import load_causal_lm


def test_fused_forward_matches_hf_rms_norm_over_random_inputs():
    from transformers.models.qwen2.modeling_qwen2 import Qwen2RMSNorm

    gen = torch.Generator().manual_seed(0)
    for case in range(200):
        width = int(torch.randint(1, 64, (1,), generator=gen))
        norm = Qwen2RMSNorm(width, eps=float(torch.rand((), generator=gen)) * 1e-3 + 1e-8)
        with torch.no_grad():
            norm.weight.copy_(torch.randn(width, generator=gen))
        x = torch.randn(3, width, generator=gen) * float(torch.rand((), generator=gen) * 100 + 1e-3)
        for dtype, tol in ((torch.float32, 1e-5), (torch.bfloat16, 2e-2)):
            xin = x.to(dtype).requires_grad_()
            xref = x.to(dtype).requires_grad_()
            got, want = fused_rms_norm_forward(norm, xin), norm(xref)
            assert got.dtype == want.dtype and torch.allclose(got.float(), want.float(), atol=tol, rtol=tol), case
            if dtype == torch.float32:
                (gx,) = torch.autograd.grad(got.sum(), xin)
                (gr,) = torch.autograd.grad(want.sum(), xref)
                assert torch.allclose(gx, gr, atol=1e-4, rtol=1e-4), case


def test_an_rms_norm_with_other_math_keeps_its_forward():
    class GemmaStyleRMSNorm(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight, self.eps = torch.nn.Parameter(torch.zeros(8)), 1e-6

        def forward(self, x):
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * (1 + self.weight)

    norm = GemmaStyleRMSNorm()
    assert fuse_rms_norms(torch.nn.Sequential(norm)) == 0
    assert "forward" not in vars(norm)


def test_models_give_the_same_logits_and_gradients_after_fusing(tiny_model_path, tiny_qwen2_path):
    ids = torch.randint(3, 60, (2, 17), generator=torch.Generator().manual_seed(1))
    for path in (tiny_model_path, tiny_qwen2_path):
        plain, fused = load_causal_lm(str(path)), load_causal_lm(str(path))
        layers = plain.config.num_hidden_layers
        assert fuse_rms_norms(fused) == 2 * layers + 1  # two per layer and the final norm
        out_plain, out_fused = plain(input_ids=ids).logits, fused(input_ids=ids).logits
        assert torch.allclose(out_plain, out_fused, atol=1e-5)
        out_plain.square().mean().backward()
        out_fused.square().mean().backward()
        for (name, a), (_, b) in zip(plain.named_parameters(), fused.named_parameters(), strict=True):
            assert torch.allclose(a.grad, b.grad, atol=1e-5, rtol=1e-4), name


def test_compiled_decoder_layers_train_like_eager_ones_and_generation_stays_eager(
    tiny_qwen2_path, monkeypatch
):
    """`policy.dtensor.compile`: dynamo traces the layers (varlen keywords, packed rows of
    changing length) and trains with the same losses as eager, and the shared module still
    generates (eagerly) after compiled training steps. The backend is `aot_eager` here (tracing
    and autograd, no code generation: inductor takes minutes on a small CPU); the GPU benchmark
    runs inductor. The log-softmax over the vocabulary is compiled too, with the same backend."""
    import nemo_rl.training.chunked_logprobs as chunked

    original = torch.nn.Module.compile
    monkeypatch.setattr(torch.nn.Module, "compile",
                        lambda self, **kw: original(self, **{**kw, "backend": "aot_eager"}))
    monkeypatch.setattr(chunked, "COMPILE_BACKEND", "aot_eager")
    from nemo_rl.algorithms.sft import NLLLoss
    from nemo_rl.config import GenerationConfig, PolicyConfig, SamplingParams
    from nemo_rl.data import BatchedDataDict
    from nemo_rl.infra.cluster import InlineCluster
    from nemo_rl_dtensor import DTensorTrainingBackend, HFGenerationBackend

    gen = torch.Generator().manual_seed(3)
    lengths = torch.tensor([9, 14, 5, 12])
    ids = torch.randint(3, 60, (4, 14), generator=gen) * (torch.arange(14) < lengths[:, None])
    mask = (torch.arange(14) < lengths[:, None]).float()
    mask[:, 0] = 0
    batch = BatchedDataDict(input_ids=ids, input_lengths=lengths, token_mask=mask, sample_mask=torch.ones(4))
    losses = {}
    for compiled in (False, True):
        torch._dynamo.reset()
        backend = DTensorTrainingBackend()
        backend.setup(PolicyConfig(model_name=str(tiny_qwen2_path), precision="float32",
                                   sequence_packing=True, max_tokens_per_microbatch=24,
                                   dtensor={"compile": compiled}), InlineCluster(device="cpu"))
        try:
            losses[compiled] = [backend.train_step(batch, NLLLoss())["loss"] for _ in range(3)]
            if compiled:
                generation = HFGenerationBackend()
                generation.setup(GenerationConfig(model_name=str(tiny_qwen2_path)), InlineCluster(device="cpu"))
                generation.share_module(backend.inline_module())
                out = generation.generate(batch.select_keys(["input_ids", "input_lengths"]),
                                          SamplingParams(temperature=0.0, max_new_tokens=4))
                assert out["output_ids"].shape == (4, 4)
        finally:
            backend.shutdown()
    assert losses[True] == pytest.approx(losses[False], rel=1e-4)
