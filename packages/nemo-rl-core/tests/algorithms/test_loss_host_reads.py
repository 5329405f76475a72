"""The built-in losses never read a device tensor on the host (no `.item()`, `float()`,
`torch.equal`), so a training backend's micro-batch loop never waits on the GPU for them.

Tensors on torch's `meta` device have a shape but no values: every host read of one raises. The
losses run here on meta tensors, forward and backward, with the global counts as Python
numbers (as backends pass them); their checks against host values are covered on CPU by the
loss tests, and still fire there (last test).
"""

from __future__ import annotations

import pytest
import torch
from nemo_rl.algorithms.dpo import DPOLoss
from nemo_rl.algorithms.grpo import ClippedPGLoss, GRPOLossConfig
from nemo_rl.algorithms.sft import NLLLoss

META = torch.device("meta")
B, T = 4, 6

LOSSES = {
    "nll": NLLLoss(),
    "dpo": DPOLoss(beta=0.1, sft_loss_weight=0.1, preference_average_log_probs=True),
    "grpo": ClippedPGLoss(GRPOLossConfig(kl_penalty=0.05)),
    "grpo-sequence-level": ClippedPGLoss(GRPOLossConfig(token_level_loss=False, ratio_clip_c=3.0)),
    "grpo-tis": ClippedPGLoss(GRPOLossConfig(
        use_importance_sampling_correction=True, truncated_importance_sampling_type="tis",
        truncated_importance_sampling_ratio=2.0,
    )),
    "gspo-icepop": ClippedPGLoss(GRPOLossConfig(
        sequence_level_importance_ratios=True, use_importance_sampling_correction=True,
        truncated_importance_sampling_type="icepop", truncated_importance_sampling_ratio=2.0,
    )),
    "cispo-seq-mask-tis": ClippedPGLoss(GRPOLossConfig(
        use_cispo=True, use_importance_sampling_correction=True,
        truncated_importance_sampling_type="seq-mask-tis", truncated_importance_sampling_ratio=2.0,
    )),
}


def _batch(device: torch.device, with_prev: bool = True) -> dict[str, torch.Tensor]:
    batch = {
        "generation_logprobs": torch.full((B, T), -1.0),
        "reference_logprobs": torch.full((B, T), -1.2),
        "advantages": torch.tensor([1.0, -1.0, 0.5, -0.5]),
        "token_mask": torch.tensor([[0, 1, 1, 1, 0, 0]] * B),
        "sample_mask": torch.ones(B),
    }
    if with_prev:
        batch["prev_logprobs"] = torch.full((B, T), -0.9)
    return {key: value.to(device) for key, value in batch.items()}


@pytest.mark.parametrize("with_prev", [True, False], ids=["prev", "reused"])
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_no_host_read_of_a_device_tensor(name, with_prev):
    logprobs = torch.zeros(B, T, device=META, requires_grad=True)
    loss, metrics = LOSSES[name](logprobs, _batch(META, with_prev), 9, 4)
    loss.backward()  # would raise at the first host read of a meta value
    assert loss.device == META and logprobs.grad is not None
    for key, value in metrics.items():
        assert isinstance(value, torch.Tensor) and value.dim() == 0, key
        assert value.device == META and not value.requires_grad, key


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_host_checks_still_run_on_cpu(name):
    # 4 sequences of 3 response tokens each: a global count of 1 cannot cover them.
    logprobs = torch.zeros(B, T, requires_grad=True)
    with pytest.raises(ValueError, match="global_valid_(tokens|seqs)"):
        LOSSES[name](logprobs, _batch(torch.device("cpu")), 1, 2 if name == "dpo" else 1)
