"""GPU: the compiled log-prob kernels (inductor, `policy.dtensor.compile`) against the chunked
eager ones on bf16 logits of a real vocabulary size, values and gradients."""

from __future__ import annotations

import pytest
import torch
from nemo_rl.training import selected_logprobs

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("rows", [1000, 2317])
def test_compiled_kernels_give_the_chunked_values_and_gradients(rows):
    gen = torch.Generator(device="cuda").manual_seed(rows)
    logits = (torch.randn(rows, 151_936, generator=gen, device="cuda") * 3).bfloat16()
    targets = torch.randint(0, 151_936, (rows,), generator=gen, device="cuda")
    weights = torch.randn(rows, generator=gen, device="cuda")
    results = []
    for compiled in (False, True):
        leaf = logits.clone().requires_grad_()
        values = selected_logprobs(leaf, targets, compiled=compiled)
        (values * weights).sum().backward()
        results.append((values, leaf.grad))
    (eager_values, eager_grad), (fused_values, fused_grad) = results
    brute = torch.log_softmax(logits.float(), -1).gather(-1, targets[:, None]).squeeze(-1)
    assert fused_values.dtype == torch.float32 and fused_grad.dtype == torch.bfloat16
    assert torch.allclose(fused_values, brute, atol=1e-4)
    assert torch.allclose(fused_values, eager_values, atol=1e-4)
    # Both round the same float32 gradient to bf16; summation order may flip the last bit.
    assert torch.allclose(fused_grad.float(), eager_grad.float(), atol=1e-3, rtol=1e-2)


def test_compiled_training_matches_eager_training_on_packed_bf16_rows(tmp_path):
    """`policy.dtensor.compile` end to end with inductor: compiled layers, the compiled
    log-softmax and the varlen kernel on packed rows of changing length train with eager's
    losses and gradient norms (bf16: equal to a few parts in a thousand)."""
    from nemo_rl.algorithms.sft import NLLLoss
    from nemo_rl.config import PolicyConfig
    from nemo_rl.data import BatchedDataDict
    from nemo_rl.infra.cluster import InlineCluster
    from nemo_rl_dtensor import DTensorTrainingBackend
    from nemo_rl_dtensor.testing import QWEN2_0_5B_SHAPE, build_tiny_model

    path = build_tiny_model(tmp_path / "qwen2-0.5b", **QWEN2_0_5B_SHAPE)
    gen = torch.Generator().manual_seed(0)
    lengths = torch.randint(40, 300, (12,), generator=gen)
    ids = torch.randint(10, 250, (12, 300), generator=gen) * (torch.arange(300) < lengths[:, None])
    mask = (torch.arange(300) < lengths[:, None]).float()
    mask[:, 0] = 0
    batch = BatchedDataDict(input_ids=ids, input_lengths=lengths, token_mask=mask,
                            sample_mask=torch.ones(12))
    runs = {}
    for compiled in (False, True):
        backend = DTensorTrainingBackend()
        backend.setup(PolicyConfig(model_name=str(path), optimizer={"lr": 1e-5, "weight_decay": 0.0},
                                   sequence_packing=True, max_tokens_per_microbatch=1024,
                                   train_global_batch_size=12, max_total_sequence_length=300,
                                   dtensor={"compile": compiled}), InlineCluster())
        try:
            runs[compiled] = [backend.train_step(batch, NLLLoss()) for _ in range(3)]
        finally:
            backend.shutdown()
    for eager, fused in zip(runs[False], runs[True], strict=True):
        assert fused["loss"] == pytest.approx(eager["loss"], rel=5e-3)
        assert fused["grad_norm"] == pytest.approx(eager["grad_norm"], rel=5e-2)
