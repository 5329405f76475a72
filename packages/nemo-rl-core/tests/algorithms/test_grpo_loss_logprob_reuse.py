"""ClippedPGLoss on a batch without prev_logprobs (`reuse_training_logprobs`): it must equal the
loss with prev_logprobs = the training forward's own log-probs, value, gradient and metrics.

With one optimizer update per rollout the weights that would compute prev_logprobs are those of
the training forward, so the explicit batch below (prev_logprobs = logprobs on every trained
token; anything on padding, as a real pass may write there) is exactly what the skipped pass
would have given.
"""

from __future__ import annotations

import math

import pytest
import torch
from nemo_rl.algorithms.grpo import ClippedPGLoss, GRPOLossConfig

F64 = torch.float64
NUM_BATCHES = 400
LN = math.log


def _run(cfg: GRPOLossConfig, logprobs: torch.Tensor, batch: dict, tokens: int, seqs: int):
    lp = logprobs.clone().requires_grad_(True)
    loss, metrics = ClippedPGLoss(cfg)(lp, batch, tokens, seqs)
    loss.backward()
    return loss.detach(), {k: float(v) for k, v in metrics.items()}, lp.grad


def test_reuse_by_hand_with_importance_weights() -> None:
    # One sequence, response tokens 1-2, A = +1. Without prev_logprobs every ratio is 1 (pg = -1
    # per token, unclipped), and the importance log-weights are logprobs - generation_logprobs:
    # ln 2 and -ln 2, so w = 2 and 0.5. L = (2 x -1 + 0.5 x -1) / 2 = -1.25; the gradient of
    # w x -A x r with r = exp(lp - detach(lp)) is w x -A x 1 / 2 tokens: -1 and -0.25.
    cfg = GRPOLossConfig(kl_penalty=0.0, use_importance_sampling_correction=True)
    batch = {
        "generation_logprobs": torch.tensor([[0.0, -1 - LN(2), -2 + LN(2)]], dtype=F64),
        "advantages": torch.tensor([1.0], dtype=F64),
        "token_mask": torch.tensor([[0, 1, 1]]),
        "sample_mask": torch.tensor([1.0], dtype=F64),
    }
    logprobs = torch.tensor([[float("-inf"), -1.0, -2.0]], dtype=F64)
    loss, metrics, grad = _run(cfg, logprobs, batch, tokens=2, seqs=1)
    assert loss.item() == pytest.approx(-1.25, abs=1e-12)
    torch.testing.assert_close(grad, torch.tensor([[0.0, -1.0, -0.25]], dtype=F64))
    assert metrics["ratio_mean"] == 1.0 and metrics["clip_fraction"] == 0.0
    # The generation-vs-training mismatch is still reported, from the training log-probs.
    assert metrics["generation_logprob_error"] == pytest.approx(LN(2))
    assert metrics["importance_weight_mean"] == pytest.approx(1.25)


def _random_config(gen: torch.Generator) -> GRPOLossConfig:
    def pick(options):
        return options[int(torch.randint(len(options), (1,), generator=gen))]

    gspo = pick([False, False, True])
    cispo = not gspo and pick([False, False, False, True])
    kind = pick([None, "tis", "icepop"] + ([] if gspo else ["seq-mask-tis"]))
    correction = kind is not None or pick([False, True])
    return GRPOLossConfig(
        ratio_clip_min=pick([0.1, 0.2]),
        ratio_clip_max=pick([0.2, 0.28]),
        ratio_clip_c=None if cispo else pick([None, 1.05, 3.0]),
        kl_penalty=pick([0.0, 0.05]),
        kl_type=pick(["k1", "k2", "k3"]),
        token_level_loss=pick([True, False]),
        sequence_level_importance_ratios=gspo,
        use_importance_sampling_correction=correction,
        truncated_importance_sampling_type=kind,
        truncated_importance_sampling_ratio=pick([1.2, 2.0]) if kind else None,
        truncated_importance_sampling_ratio_min=pick([None, 0.8]) if kind else None,
        use_cispo=cispo,
    )


def _random_case(index: int):
    """(config, logprobs, batch without prev_logprobs, prev_logprobs, tokens, seqs)."""
    gen = torch.Generator().manual_seed(index)
    cfg = _random_config(gen)
    b = int(torch.randint(1, 5, (1,), generator=gen))
    t = int(torch.randint(2, 9, (1,), generator=gen))
    token_mask = torch.zeros(b, t, dtype=torch.long)
    for i in range(b):
        prompt = int(torch.randint(1, t, (1,), generator=gen))
        length = int(torch.randint(0, t - prompt + 1, (1,), generator=gen))  # 0: no response
        token_mask[i, prompt : prompt + length] = 1
    sample_mask = (torch.rand(b, generator=gen, dtype=F64) > 0.15).to(F64)
    valid = (token_mask * sample_mask.unsqueeze(-1)) > 0
    logprobs = -3.0 * torch.rand(b, t, generator=gen, dtype=F64) - 0.05

    def noisy(scale: float) -> torch.Tensor:
        return logprobs + scale * torch.randn(b, t, generator=gen, dtype=F64)

    garbage = torch.where(
        torch.rand(b, t, generator=gen) < 0.5,
        torch.full((b, t), float("-inf"), dtype=F64),
        100 * torch.rand(b, t, generator=gen, dtype=F64) - 50,
    )
    # Padding holds garbage in the training forward's log-probs and other garbage in prev.
    prev = torch.where(valid, logprobs, 100 * torch.rand(b, t, generator=gen, dtype=F64) - 50)
    logprobs = torch.where(valid, logprobs, garbage)
    if bool(torch.rand(1, generator=gen) < 0.5):
        advantages = torch.randn(b, generator=gen, dtype=F64)
    else:
        advantages = torch.randn(b, t, generator=gen, dtype=F64)
    batch = {
        "generation_logprobs": torch.where(valid, noisy(0.4), garbage),
        "reference_logprobs": torch.where(valid, noisy(0.8), garbage),
        "advantages": advantages,
        "token_mask": token_mask,
        "sample_mask": sample_mask,
    }
    tokens = int(valid.sum()) + int(torch.randint(0, 4, (1,), generator=gen))
    seqs = int(sample_mask.sum()) + int(torch.randint(0, 3, (1,), generator=gen))
    return cfg, logprobs, batch, prev, tokens, seqs


@pytest.mark.parametrize("chunk", range(4))
def test_reuse_equals_explicit_prev_logprobs(chunk: int) -> None:
    per_chunk = NUM_BATCHES // 4
    for index in range(chunk * per_chunk, (chunk + 1) * per_chunk):
        cfg, logprobs, batch, prev, tokens, seqs = _random_case(index)
        where = f"case {index}: {cfg!r}"
        explicit = _run(cfg, logprobs, {**batch, "prev_logprobs": prev}, tokens, seqs)
        reused = _run(cfg, logprobs, batch, tokens, seqs)
        assert torch.isfinite(reused[0]), where
        torch.testing.assert_close(reused[0], explicit[0], rtol=0, atol=1e-6, msg=where)
        torch.testing.assert_close(
            reused[2], explicit[2], rtol=0, atol=1e-6, msg=lambda m, w=where: f"{w}\n{m}"
        )
        assert reused[1].keys() == explicit[1].keys(), where
        for name, value in explicit[1].items():
            assert reused[1][name] == pytest.approx(value, abs=1e-6), f"{where}: {name}"


def test_the_random_cases_cover_every_variant() -> None:
    # A guard against a generator that silently stopped producing some option.
    cases = [_random_case(i) for i in range(NUM_BATCHES)]
    cfgs = [c[0] for c in cases]
    assert any(c.sequence_level_importance_ratios for c in cfgs)
    assert any(c.use_cispo for c in cfgs) and any(c.ratio_clip_c is not None for c in cfgs)
    assert {c.truncated_importance_sampling_type for c in cfgs} == {
        None, "tis", "icepop", "seq-mask-tis"
    }
    assert any(c.use_importance_sampling_correction and c.sequence_level_importance_ratios
               for c in cfgs)
    assert {c.token_level_loss for c in cfgs} == {True, False}
    assert any(c.kl_penalty > 0 for c in cfgs)
    assert {c[2]["advantages"].dim() for c in cases} == {1, 2}
