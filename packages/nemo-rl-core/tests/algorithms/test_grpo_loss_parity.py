"""Where ClippedPGLoss follows NeMo RL's semantics, by hand: GSPO's one importance weight per
sequence, and the KL penalty's gradient with its sampling (score-function) term."""

from __future__ import annotations

import math

import pytest
import torch
from nemo_rl.algorithms.grpo import ClippedPGLoss, GRPOLossConfig, kl_estimate
from nemo_rl.algorithms.grpo.importance import importance_weights

LN = math.log
F64 = torch.float64


def _t(values) -> torch.Tensor:
    return torch.tensor(values, dtype=F64)


def _run(cfg: GRPOLossConfig, logprobs, batch: dict, tokens: int, seqs: int):
    lp = _t(logprobs).requires_grad_(True)
    loss, metrics = ClippedPGLoss(cfg)(lp, batch, tokens, seqs)
    loss.backward()
    return loss.item(), metrics, lp.grad


# --- GSPO with importance-sampling correction ---------------------------------------------------
# Two sequences; column 0 is the prompt. prev = -1 everywhere.
#   seq 0: response columns 1-3, log-weights prev - gen = ln 2, ln 0.5, ln 1.5 -> one weight
#          2 x 0.5 x 1.5 = 1.5; log-ratios ln 2, 0, -ln 2 -> GSPO ratio exp(0) = 1; A = +1.
#   seq 1: response columns 1-2 (column 3 is padding whose prev - gen = 5 must not count),
#          log-weights ln 4, ln 0.75 -> weight 3; log-ratios ln 1.1 twice -> ratio 1.1; A = -1.
# Both ratios lie inside [0.8, 1.2], so pg = -A r on every token: -1 (seq 0) and 1.1 (seq 1).
GSPO_PREV = [[-1.0] * 4, [-1.0] * 4]
GSPO_GEN = [
    [-1.0, -1 - LN(2), -1 - LN(0.5), -1 - LN(1.5)],
    [-1.0, -1 - LN(4), -1 - LN(0.75), -6.0],
]
GSPO_LOGP = [
    [-1.0, -1 + LN(2), -1.0, -1 - LN(2)],
    [-1.0, -1 + LN(1.1), -1 + LN(1.1), 0.0],
]
GSPO_MASK = [[0, 1, 1, 1], [0, 1, 1, 0]]


def _gspo(token_level_loss: bool = False, **overrides):
    cfg = GRPOLossConfig(
        kl_penalty=0.0,
        sequence_level_importance_ratios=True,
        use_importance_sampling_correction=True,
        token_level_loss=token_level_loss,
        **overrides,
    )
    batch = {
        "prev_logprobs": _t(GSPO_PREV),
        "generation_logprobs": _t(GSPO_GEN),
        "advantages": _t([1.0, -1.0]),
        "token_mask": _t(GSPO_MASK),
        "sample_mask": _t([1.0, 1.0]),
    }
    return _run(cfg, GSPO_LOGP, batch, tokens=5, seqs=2)


def test_gspo_importance_weight_is_one_per_sequence() -> None:
    # Sequence-level loss: mean over tokens of w pg per sequence, over 2 sequences:
    #   L = (1.5 x -1 + 3 x 1.1) / 2 = 0.9.
    # d(w pg)/dlogp_t = w (-A) r / n on each of the n tokens (the ratio averages n log-ratios),
    # then / n for the token mean and / 2 sequences:
    #   seq 0: 1.5 x -1 x 1 / 3 / 2 = -0.25;  seq 1: 3 x 1 x 1.1 / 2 / 2 = 0.825.
    # (Per-token weights would give L = (-(2 + 0.5 + 1.5) / 3 + (4 + 0.75) x 1.1 / 2) / 2.)
    loss, metrics, grad = _gspo()
    assert loss == pytest.approx(0.9, abs=1e-12)
    expected = _t([[0.0, -0.25, -0.25, -0.25], [0.0, 0.825, 0.825, 0.0]])
    torch.testing.assert_close(grad, expected)
    # The mismatch metric stays per token: (2 + 0.5 + 1.5 + 4 + 0.75) / 5 = 1.75.
    assert metrics["importance_weight_mean"] == pytest.approx(1.75)


def test_gspo_importance_weight_with_token_level_loss() -> None:
    # L = (3 tokens x 1.5 x -1 + 2 tokens x 3 x 1.1) / 5 = (-4.5 + 6.6) / 5 = 0.42.
    # Token u of sequence i: sum over its n tokens of w (-A) (r / n) / 5 = w (-A) r / 5:
    #   seq 0: -1.5 / 5 = -0.3;  seq 1: 3.3 / 5 = 0.66.
    loss, _, grad = _gspo(token_level_loss=True)
    assert loss == pytest.approx(0.42, abs=1e-12)
    torch.testing.assert_close(grad, _t([[0.0, -0.3, -0.3, -0.3], [0.0, 0.66, 0.66, 0.0]]))


def test_gspo_tis_clamps_the_sequence_weight() -> None:
    # Upper bound 2: seq 1's weight 3 -> 2, seq 0's 1.5 stays. L = (-1.5 + 2 x 1.1) / 2 = 0.35;
    # seq 1's gradient 2 x 1.1 / 2 / 2 = 0.55. Both of seq 1's tokens count as truncated: 2 / 5.
    loss, metrics, grad = _gspo(
        truncated_importance_sampling_type="tis", truncated_importance_sampling_ratio=2.0
    )
    assert loss == pytest.approx(0.35, abs=1e-12)
    torch.testing.assert_close(grad, _t([[0.0, -0.25, -0.25, -0.25], [0.0, 0.55, 0.55, 0.0]]))
    assert metrics["importance_weight_truncated_fraction"] == pytest.approx(0.4)
    # With the lower bound 1.6, seq 0's weight rises to 1.6 as well: L = (-1.6 + 2.2) / 2 = 0.3,
    # seq 0's gradient -1.6 / 3 / 2; every token is truncated.
    loss, metrics, grad = _gspo(
        truncated_importance_sampling_type="tis",
        truncated_importance_sampling_ratio=2.0,
        truncated_importance_sampling_ratio_min=1.6,
    )
    assert loss == pytest.approx(0.3, abs=1e-12)
    torch.testing.assert_close(grad[0, 1:], torch.full((3,), -1.6 / 6, dtype=F64))
    assert metrics["importance_weight_truncated_fraction"] == pytest.approx(1.0)


def test_gspo_icepop_drops_whole_sequences() -> None:
    # Range [1, 2]: seq 0 (1.5) is kept, seq 1 (3) is dropped: L = (-1.5 + 0) / 2 = -0.75.
    loss, metrics, grad = _gspo(
        truncated_importance_sampling_type="icepop",
        truncated_importance_sampling_ratio=2.0,
        truncated_importance_sampling_ratio_min=1.0,
    )
    assert loss == pytest.approx(-0.75, abs=1e-12)
    torch.testing.assert_close(grad, _t([[0.0, -0.25, -0.25, -0.25], [0.0, 0.0, 0.0, 0.0]]))
    assert metrics["importance_weight_truncated_fraction"] == pytest.approx(0.4)


def test_gspo_refuses_seq_mask_tis() -> None:
    with pytest.raises(ValueError, match="'tis' or 'icepop' with GSPO"):
        _gspo(
            truncated_importance_sampling_type="seq-mask-tis",
            truncated_importance_sampling_ratio=2.0,
            truncated_importance_sampling_ratio_min=0.5,
        )


def test_importance_weights_overflow_and_padding() -> None:
    # Sequence 0: three tokens of log-weight 40 -> exp(120) overflows float32. Untruncated it is
    # dropped (weight 0); "tis" clamps it to the bound. Sequence 1 has log-weights ln 2 and a
    # padded ln 100 that the mask excludes.
    log_w = torch.tensor([[40.0, 40.0, 40.0], [LN(2), LN(100), 0.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    weights, truncated = importance_weights(log_w, mask, sequence_level=True)
    torch.testing.assert_close(weights, torch.tensor([[0.0] * 3, [2.0] * 3]))
    assert not truncated.any()
    weights, truncated = importance_weights(log_w, mask, sequence_level=True, kind="tis", high=5.0)
    torch.testing.assert_close(weights, torch.tensor([[5.0] * 3, [2.0] * 3]))
    assert truncated.tolist() == [[True] * 3, [False] * 3]
    with pytest.raises(ValueError, match="one weight"):
        importance_weights(log_w, mask, sequence_level=True, kind="seq-mask-tis", high=5.0)


# --- KL gradient with the sampling term ----------------------------------------------------------
# logp = [0, -1], ref = [-1, -0.5]: d = ref - logp = [-1, 0.5].
KL_LOGP, KL_REF = [0.0, -1.0], [-1.0, -0.5]


@pytest.mark.parametrize(
    ("kl_type", "value", "pathwise", "with_sampling"),
    [
        # k1 = -d; dk/dlogp = 1; plus k: 1 - d.
        ("k1", [1.0, -0.5], [1.0, 1.0], [2.0, 0.5]),
        # k2 = d^2 / 2; dk/dlogp = -d; plus k: d^2 / 2 - d.
        ("k2", [0.5, 0.125], [1.0, -0.5], [1.5, -0.375]),
        # k3 = e^d - 1 - d; dk/dlogp = 1 - e^d; plus k: -d.
        (
            "k3",
            [math.exp(-1), math.exp(0.5) - 1.5],
            [1 - math.exp(-1), 1 - math.exp(0.5)],
            [1.0, -0.5],
        ),
    ],
)
def test_kl_estimate_sampling_term_by_hand(kl_type, value, pathwise, with_sampling) -> None:
    for sampling_term, expected_grad in ((False, pathwise), (True, with_sampling)):
        lp = _t(KL_LOGP).requires_grad_(True)
        kl = kl_estimate(lp, _t(KL_REF), kl_type, sampling_term=sampling_term)
        torch.testing.assert_close(kl.detach(), _t(value))  # the value never changes
        kl.sum().backward()
        torch.testing.assert_close(lp.grad, _t(expected_grad))


def test_kl_input_clamp_silences_the_sampling_term() -> None:
    # logp = [-0.5, -4, 2], ref = -1: d = [-0.5, 3, -3], input clamp 1.5 -> [-0.5, 1.5, -1.5].
    # k3 = [e^-0.5 - 0.5, e^1.5 - 2.5, e^-1.5 + 0.5] = [0.106531, 1.981689, 0.723130].
    # Token 0 is unclamped: gradient -d = 0.5. Tokens 1 and 2 are clamped: the pathwise term is
    # already 0 and the sampling term is cut too (it would be k = 1.98 and 0.72).
    lp = _t([-0.5, -4.0, 2.0]).requires_grad_(True)
    kl = kl_estimate(lp, _t([-1.0] * 3), "k3", input_clamp=1.5, sampling_term=True)
    torch.testing.assert_close(
        kl.detach(), _t([math.exp(-0.5) - 0.5, math.exp(1.5) - 2.5, math.exp(-1.5) + 0.5])
    )
    kl.sum().backward()
    torch.testing.assert_close(lp.grad, _t([0.5, 0.0, 0.0]))
    # The output clamp (1.0) acts after the sampling factor: token 1's value is capped to 1 and
    # still has no gradient; token 0 is below the cap and keeps both terms.
    lp = _t([-0.5, -4.0]).requires_grad_(True)
    kl = kl_estimate(
        lp, _t([-1.0] * 2), "k3", input_clamp=1.5, output_clamp=1.0, sampling_term=True
    )
    torch.testing.assert_close(kl.detach(), _t([math.exp(-0.5) - 0.5, 1.0]))
    kl.sum().backward()
    torch.testing.assert_close(lp.grad, _t([0.5, 0.0]))


def _kl_gradient(cfg_overrides: dict, beta: float, token_level: bool) -> torch.Tensor:
    # Two sequences with pg, importance correction and the KL all active; only the KL's share
    # of the gradient depends on beta.
    batch = {
        "prev_logprobs": _t([[0.0, -0.2, -1.9, -1.5], [0.0, -0.9, -0.4, -0.4]]),
        "generation_logprobs": _t([[0.0, -0.6, -1.7, -1.2], [0.0, -1.0, -0.8, -0.3]]),
        "reference_logprobs": _t([[0.0, -0.8, -1.6, -1.4], [0.0, -1.5, -0.1, 5.0]]),
        "advantages": _t([0.7, -1.3]),
        "token_mask": _t([[0, 1, 1, 1], [0, 1, 1, 0]]),
        "sample_mask": _t([1.0, 1.0]),
    }
    cfg = GRPOLossConfig(
        kl_penalty=beta,
        token_level_loss=token_level,
        use_importance_sampling_correction=True,
        **cfg_overrides,
    )
    logp = [[0.0, -0.3, -2.1, -1.4], [0.0, -1.2, -0.3, 0.0]]
    return _run(cfg, logp, batch, tokens=5, seqs=2)[2]


@pytest.mark.parametrize("token_level", [True, False])
def test_kl_gradient_in_the_loss_includes_the_sampling_term(token_level: bool) -> None:
    # d = ref - logp: seq 0 [-0.5, 0.5, 0], seq 1 [-0.3, 0.2] (column 3 of seq 1 is padding).
    # k3 with its sampling term has gradient -d per token, not weighted by the importance
    # correction: beta x -d / 5 tokens (token level) or beta x -d / n_i / 2 seqs (sequence level).
    beta = 0.3
    kl_grad = _kl_gradient({}, beta, token_level) - _kl_gradient({}, 0.0, token_level)
    minus_d = _t([[0.0, 0.5, -0.5, 0.0], [0.0, 0.3, -0.2, 0.0]])
    scale = _t([[1 / 5], [1 / 5]]) if token_level else _t([[1 / 6], [1 / 4]])
    torch.testing.assert_close(kl_grad, beta * minus_d * scale)


def test_kl_gradient_in_the_loss_with_input_clamp() -> None:
    # Input clamp 0.4: |d| = 0.5 on seq 0's first two tokens, so they lose the KL gradient;
    # seq 0's third token (d = 0) and seq 1's (|d| <= 0.3) keep -d. k1 here: gradient 1 - d.
    beta = 0.3
    overrides = {"kl_input_clamp": 0.4, "kl_type": "k1"}
    kl_grad = _kl_gradient(overrides, beta, True) - _kl_gradient(overrides, 0.0, True)
    expected = _t([[0.0, 0.0, 0.0, 1.0], [0.0, 1.3, 0.8, 0.0]]) * beta / 5
    torch.testing.assert_close(kl_grad, expected)
