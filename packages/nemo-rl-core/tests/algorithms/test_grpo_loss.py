"""ClippedPGLoss and kl_estimate against hand-computed values, gradients included."""

from __future__ import annotations

import math
import pickle

import pytest
import torch
from nemo_rl.algorithms.grpo import ClippedPGLoss, GRPOLossConfig, kl_estimate

LN = math.log


def _cfg(**overrides) -> GRPOLossConfig:
    return GRPOLossConfig(**{"kl_penalty": 0.0, **overrides})


def _batch(prev, advantages, token_mask, sample_mask=None, gen=None, ref=None) -> dict:
    prev = torch.tensor(prev, dtype=torch.float32)
    batch = {
        "prev_logprobs": prev,
        "generation_logprobs": prev.clone() if gen is None else torch.tensor(gen),
        "advantages": torch.tensor(advantages, dtype=torch.float32),
        "token_mask": torch.tensor(token_mask),
        "sample_mask": torch.ones(prev.shape[0])
        if sample_mask is None
        else torch.tensor(sample_mask, dtype=torch.float32),
    }
    if ref is not None:
        batch["reference_logprobs"] = torch.tensor(ref)
    return batch


def _floats(metrics: dict) -> dict[str, float]:
    """The loss's metrics as floats, after checking they are detached 0-dim tensors (the backend
    reads them to the host once per update, not once per micro-batch)."""
    for name, value in metrics.items():
        assert isinstance(value, torch.Tensor) and value.dim() == 0, name
        assert not value.requires_grad, name
    return {name: float(value) for name, value in metrics.items()}


def _run(cfg, logprobs, batch, tokens, seqs=1):
    lp = torch.tensor(logprobs, dtype=torch.float32, requires_grad=True)
    loss, metrics = ClippedPGLoss(cfg)(lp, batch, tokens, seqs)
    loss.backward()
    return loss.item(), _floats(metrics), lp.grad


# One sequence, response tokens 1..3, prev log-prob -1 everywhere. The policy's log-probs give
# ratios r = 1.5, 0.5 and 1.1 on the three response tokens.
PREV = [[-1.0, -1.0, -1.0, -1.0]]
LOGP = [[0.0, -1 + LN(1.5), -1 + LN(0.5), -1 + LN(1.1)]]
MASK = [[0, 1, 1, 1]]


def test_clipped_surrogate_positive_advantage() -> None:
    # A = +1, clip [0.8, 1.2]. pg = max(-A r, -A clamp(r)):
    #   r=1.5: max(-1.5, -1.2) = -1.2 (clipped, zero gradient)
    #   r=0.5: max(-0.5, -0.8) = -0.5 (pessimistic side keeps r, gradient -A r = -0.5)
    #   r=1.1: max(-1.1, -1.1) = -1.1 (gradient -1.1)
    # L = (-1.2 - 0.5 - 1.1) / 3 = -0.933333; grads / 3 tokens.
    loss, metrics, grad = _run(_cfg(), LOGP, _batch(PREV, [1.0], MASK), tokens=3)
    assert loss == pytest.approx(-2.8 / 3)
    torch.testing.assert_close(grad, torch.tensor([[0.0, 0.0, -0.5 / 3, -1.1 / 3]]))
    assert metrics["loss"] == pytest.approx(-2.8 / 3)
    assert metrics["pg_loss"] == pytest.approx(-2.8 / 3)
    assert metrics["kl_loss"] == 0.0
    assert metrics["clip_fraction"] == pytest.approx(2 / 3)  # 1.5 and 0.5 lie outside [0.8, 1.2]
    assert metrics["ratio_mean"] == pytest.approx((1.5 + 0.5 + 1.1) / 3)


def test_clipped_surrogate_negative_advantage() -> None:
    # A = -1: pg = max(r, clamp(r)): 1.5 -> 1.5 (grad 1.5), 0.5 -> 0.8 (clipped, grad 0), 1.1 -> 1.1
    # L = (1.5 + 0.8 + 1.1) / 3 = 1.133333
    loss, _, grad = _run(_cfg(), LOGP, _batch(PREV, [-1.0], MASK), tokens=3)
    assert loss == pytest.approx(3.4 / 3)
    torch.testing.assert_close(grad, torch.tensor([[0.0, 1.5 / 3, 0.0, 1.1 / 3]]))


def test_asymmetric_clip_higher() -> None:
    # DAPO clip-higher: clip [0.8, 1.6] with A = +1: r = 1.5 is now inside -> -1.5 (grad -1.5).
    # L = (-1.5 - 0.5 - 1.1) / 3 = -1.033333; only r = 0.5 is outside the range.
    loss, metrics, grad = _run(_cfg(ratio_clip_max=0.6), LOGP, _batch(PREV, [1.0], MASK), 3)
    assert loss == pytest.approx(-3.1 / 3)
    torch.testing.assert_close(grad, torch.tensor([[0.0, -1.5 / 3, -0.5 / 3, -1.1 / 3]]))
    assert metrics["clip_fraction"] == pytest.approx(1 / 3)


def test_dual_clip_caps_negative_advantage_loss() -> None:
    # Two sequences, one token each, r = 5 on both (log ratio ln 5). c = 3.
    # seq 0, A = -1: max(5, 1.2) = 5 -> min(5, -c A = 3) = 3, constant: zero gradient.
    # seq 1, A = +1: max(-5, -1.2) = -1.2; the dual clip does not touch positive advantages.
    # L = (3 - 1.2) / 2 = 0.9
    prev = [[0.0, -2.0], [0.0, -2.0]]
    logp = [[0.0, -2.0 + LN(5)], [0.0, -2.0 + LN(5)]]
    batch = _batch(prev, [-1.0, 1.0], [[0, 1], [0, 1]])
    loss, _, grad = _run(_cfg(ratio_clip_c=3.0), logp, batch, tokens=2, seqs=2)
    assert loss == pytest.approx(0.9)
    assert grad.abs().max().item() == 0.0  # both tokens are clipped
    # Without the dual clip the negative-advantage token costs 5: (5 - 1.2) / 2 = 1.9
    assert _run(_cfg(), logp, batch, tokens=2, seqs=2)[0] == pytest.approx(1.9)


def test_cispo_weights_logprob_by_detached_clipped_ratio() -> None:
    # A = 2, r = 1.5 -> clamp 1.2 and r = 0.5 -> clamp 0.8; pg = -A * clamp(r) * logp:
    #   logp = -1 + ln 1.5 = -0.594535 -> -2 * 1.2 * -0.594535 = 1.426884
    #   logp = -1 + ln 0.5 = -1.693147 -> -2 * 0.8 * -1.693147 = 2.709035
    # L = (1.426884 + 2.709035) / 2 = 2.067960; grad = -A clamp(r) / 2 = -1.2 and -0.8: even the
    # clipped tokens keep a gradient, which is CISPO's point.
    logp = [[0.0, -1 + LN(1.5), -1 + LN(0.5)]]
    batch = _batch([[-1.0, -1.0, -1.0]], [2.0], [[0, 1, 1]])
    loss, metrics, grad = _run(_cfg(use_cispo=True), logp, batch, tokens=2)
    assert loss == pytest.approx(2.067960, abs=1e-5)
    torch.testing.assert_close(grad, torch.tensor([[0.0, -1.2, -0.8]]))
    assert metrics["clip_fraction"] == pytest.approx(1.0)


def test_gspo_uses_one_ratio_per_sequence() -> None:
    # Log ratios ln 2 and 0 on the two response tokens: mean ln(2)/2, r = sqrt(2) = 1.414214 for
    # both. Clip [0.8, 1.5] leaves it alone; A = 1 -> pg = -sqrt(2) on both tokens.
    # Sequence-level loss: mean over the tokens (-sqrt 2) / 1 sequence = -1.414214.
    # d(-r)/d logp_t = -r * (1/2) = -0.707107 on each token (the ratio averages both).
    logp = [[0.0, -1.0 + LN(2), -1.0]]
    batch = _batch([[-1.0, -1.0, -1.0]], [1.0], [[0, 1, 1]])
    cfg = _cfg(sequence_level_importance_ratios=True, ratio_clip_max=0.5, token_level_loss=False)
    loss, metrics, grad = _run(cfg, logp, batch, tokens=2)
    assert loss == pytest.approx(-math.sqrt(2))
    torch.testing.assert_close(grad, torch.tensor([[0.0, -math.sqrt(2) / 2, -math.sqrt(2) / 2]]))
    assert metrics["ratio_mean"] == pytest.approx(math.sqrt(2))


def test_kl_estimators_by_hand() -> None:
    # d = ref - logp = [-1, 1]
    logp, ref = torch.tensor([-1.0, -2.0]), torch.tensor([-2.0, -1.0])
    torch.testing.assert_close(kl_estimate(logp, ref, "k1"), torch.tensor([1.0, -1.0]))  # -d
    torch.testing.assert_close(kl_estimate(logp, ref, "k2"), torch.tensor([0.5, 0.5]))  # d^2/2
    # exp(d) - 1 - d: e^-1 - 1 + 1 = 0.367879; e - 1 - 1 = 0.718282
    torch.testing.assert_close(
        kl_estimate(logp, ref, "k3"), torch.tensor([math.exp(-1), math.e - 2])
    )
    # input clamp 0.5: d -> [-0.5, 0.5]; k3 = e^-0.5 - 0.5 = 0.106531, e^0.5 - 1.5 = 0.148721
    torch.testing.assert_close(
        kl_estimate(logp, ref, "k3", input_clamp=0.5),
        torch.tensor([math.exp(-0.5) - 0.5, math.exp(0.5) - 1.5]),
    )
    # output clamp 2: d = [-3, 1], k2 = [4.5, 0.5] -> [2, 0.5]
    torch.testing.assert_close(
        kl_estimate(torch.tensor([0.0, -2.0]), torch.tensor([-3.0, -1.0]), "k2", output_clamp=2.0),
        torch.tensor([2.0, 0.5]),
    )
    with pytest.raises(ValueError, match="kl_type"):
        kl_estimate(logp, ref, "k4")  # type: ignore[arg-type]


def test_kl_penalty_adds_to_the_loss_with_its_gradient() -> None:
    # A = 0 so pg = 0. d = ref - logp = [-1, 1] on two response tokens; k3 = [0.367879, 0.718282],
    # mean 0.543081; L = 0.1 * 0.543081 = 0.0543081.
    # Gradient per token: pathwise dk3/dlogp = 1 - e^d, plus the sampling term k3 = e^d - 1 - d:
    # together -d = [1, -1]; times 0.1 / 2 tokens. (The pathwise term alone would give
    # [0.632121, -1.718282] * 0.05.)
    logp = [[0.0, -1.0, -2.0]]
    batch = _batch([[0.0, -1.0, -2.0]], [0.0], [[0, 1, 1]], ref=[[0.0, -2.0, -1.0]])
    loss, metrics, grad = _run(_cfg(kl_penalty=0.1, kl_type="k3"), logp, batch, tokens=2)
    assert loss == pytest.approx(0.1 * (math.exp(-1) + math.e - 2) / 2)
    assert metrics["kl"] == pytest.approx((math.exp(-1) + math.e - 2) / 2)
    assert metrics["kl_loss"] == pytest.approx(loss)
    torch.testing.assert_close(grad, torch.tensor([[0.0, 0.05, -0.05]]))


# Importance correction: the policy equals prev (r = 1), A = 1 -> pg = -1 per token; the weights
# w = exp(prev - generation) are 3, 0.5 and 1.5.
IS_PREV = [[0.0, -1.0, -1.0, -1.0]]
IS_GEN = [[0.0, -1.0 - LN(3), -1.0 - LN(0.5), -1.0 - LN(1.5)]]


def _is_run(**overrides):
    batch = _batch(IS_PREV, [1.0], MASK, gen=IS_GEN)
    return _run(_cfg(use_importance_sampling_correction=True, **overrides), IS_PREV, batch, 3)


def test_importance_correction_untruncated_and_mismatch_metrics() -> None:
    # L = -(3 + 0.5 + 1.5) / 3 = -5/3; |prev - gen| mean = (ln 3 + ln 2 + ln 1.5) / 3 = 0.732408
    loss, metrics, grad = _is_run()
    assert loss == pytest.approx(-5 / 3)
    torch.testing.assert_close(grad, torch.tensor([[0.0, -3 / 3, -0.5 / 3, -1.5 / 3]]))
    assert metrics["importance_weight_mean"] == pytest.approx(5 / 3)
    assert metrics["generation_logprob_error"] == pytest.approx((LN(3) + LN(2) + LN(1.5)) / 3)


def test_importance_correction_off_ignores_the_weights() -> None:
    # w = 1: L = -3 / 3 = -1; the mismatch metrics are still reported.
    batch = _batch(IS_PREV, [1.0], MASK, gen=IS_GEN)
    loss, metrics, _ = _run(_cfg(), IS_PREV, batch, 3)
    assert loss == pytest.approx(-1.0)
    assert metrics["importance_weight_mean"] == pytest.approx(5 / 3)


def test_tis_clamps_the_weights() -> None:
    # max 2, no min -> w = [2, 0.5, 1.5]: L = -4/3, one of three truncated, gradient w-weighted.
    loss, metrics, grad = _is_run(
        truncated_importance_sampling_type="tis", truncated_importance_sampling_ratio=2.0
    )
    assert loss == pytest.approx(-4 / 3)
    torch.testing.assert_close(grad, torch.tensor([[0.0, -2 / 3, -0.5 / 3, -1.5 / 3]]))
    assert metrics["importance_weight_truncated_fraction"] == pytest.approx(1 / 3)
    # min 0.6 as well -> w = [2, 0.6, 1.5]: L = -4.1/3, two of three truncated.
    loss, metrics, _ = _is_run(
        truncated_importance_sampling_type="tis",
        truncated_importance_sampling_ratio=2.0,
        truncated_importance_sampling_ratio_min=0.6,
    )
    assert loss == pytest.approx(-4.1 / 3)
    assert metrics["importance_weight_truncated_fraction"] == pytest.approx(2 / 3)


def test_icepop_zeroes_out_of_range_tokens() -> None:
    # [0.6, 2]: w = [0, 0, 1.5] -> L = -1.5 / 3 = -0.5; gradient only on the kept token.
    loss, metrics, grad = _is_run(
        truncated_importance_sampling_type="icepop",
        truncated_importance_sampling_ratio=2.0,
        truncated_importance_sampling_ratio_min=0.6,
    )
    assert loss == pytest.approx(-0.5)
    torch.testing.assert_close(grad, torch.tensor([[0.0, 0.0, 0.0, -0.5]]))
    assert metrics["importance_weight_truncated_fraction"] == pytest.approx(2 / 3)


def test_seq_mask_tis_drops_whole_sequences() -> None:
    # seq 0: log weights ln 3, ln 0.5 -> exp(mean) = sqrt(1.5) = 1.2247 in [0.5, 2]: kept with its
    #   per-token weights 3 and 0.5;
    # seq 1: ln 4, ln 2 -> exp(ln(8)/2) = sqrt(8) = 2.83 > 2: dropped.
    # A = 1, r = 1: L = -(3 + 0.5 + 0 + 0) / 4 = -0.875; two of four tokens dropped.
    prev = [[0.0, -1.0, -1.0], [0.0, -1.0, -1.0]]
    gen = [[0.0, -1 - LN(3), -1 - LN(0.5)], [0.0, -1 - LN(4), -1 - LN(2)]]
    batch = _batch(prev, [1.0, 1.0], [[0, 1, 1], [0, 1, 1]], gen=gen)
    cfg = _cfg(
        use_importance_sampling_correction=True,
        truncated_importance_sampling_type="seq-mask-tis",
        truncated_importance_sampling_ratio=2.0,
        truncated_importance_sampling_ratio_min=0.5,
    )
    loss, metrics, grad = _run(cfg, prev, batch, tokens=4, seqs=2)
    assert loss == pytest.approx(-0.875)
    torch.testing.assert_close(grad, torch.tensor([[0.0, -0.75, -0.125], [0.0, 0.0, 0.0]]))
    assert metrics["importance_weight_truncated_fraction"] == pytest.approx(0.5)


# Four sequences, ratio 1, per-token advantages, so pg = -A per token:
#   seq 0: three tokens, A = 1, 2, 6 -> mean -3;  seq 1: one token, A = 4 -> -4;
#   seq 2: sample_mask 0 (ignored);                seq 3: no response token (adds 0).
SEQ_PREV = [[0.0, -1.0, -1.0, -1.0]] * 4
SEQ_ADV = [[0, 1, 2, 6], [0, 4, 0, 0], [0, 9, 9, 9], [0, 9, 9, 9]]
SEQ_MASK = [[0, 1, 1, 1], [0, 1, 0, 0], [0, 1, 1, 1], [0, 0, 0, 0]]
SEQ_SAMPLE = [1.0, 1.0, 0.0, 1.0]


def test_sequence_level_loss_averages_within_then_across_sequences() -> None:
    # L = (-3 - 4 + 0) / 3 valid sequences = -7/3. Gradient of seq 0's tokens: -A / 3 tokens / 3 seqs.
    batch = _batch(SEQ_PREV, SEQ_ADV, SEQ_MASK, sample_mask=SEQ_SAMPLE)
    loss, _, grad = _run(_cfg(token_level_loss=False), SEQ_PREV, batch, tokens=4, seqs=3)
    assert loss == pytest.approx(-7 / 3)
    torch.testing.assert_close(grad[0], torch.tensor([0.0, -1 / 9, -2 / 9, -6 / 9]))
    assert grad[2].abs().max().item() == 0.0


def test_token_level_loss_averages_over_all_tokens() -> None:
    # L = (-1 - 2 - 6 - 4) / 4 tokens = -3.25
    batch = _batch(SEQ_PREV, SEQ_ADV, SEQ_MASK, sample_mask=SEQ_SAMPLE)
    assert _run(_cfg(), SEQ_PREV, batch, tokens=4, seqs=3)[0] == pytest.approx(-3.25)


@pytest.mark.parametrize("token_level", [True, False])
def test_micro_batch_losses_and_metrics_sum_to_the_full_batch(token_level: bool) -> None:
    # Same data as above with varied ratios; the full batch vs. two micro-batches of two rows.
    logp = [[0.0, -0.5, -1.5, -1.0], [0.0, -0.7, -1.0, -1.0], [0.0, -1.0, -1.0, -1.0]] * 2
    logp = logp[:4]
    batch = _batch(
        SEQ_PREV, SEQ_ADV, SEQ_MASK, sample_mask=SEQ_SAMPLE, ref=[[0.0, -1.2, -1.1, -0.9]] * 4
    )
    cfg = _cfg(kl_penalty=0.05, token_level_loss=token_level)
    full_loss, full_metrics, _ = _run(cfg, logp, batch, tokens=4, seqs=3)
    parts = [
        _run(cfg, logp[i : i + 2], {k: v[i : i + 2] for k, v in batch.items()}, tokens=4, seqs=3)
        for i in (0, 2)
    ]
    assert parts[0][0] + parts[1][0] == pytest.approx(full_loss)
    for name, value in full_metrics.items():
        assert parts[0][1][name] + parts[1][1][name] == pytest.approx(value, abs=1e-6), name


def test_padding_may_hold_minus_infinity() -> None:
    # Garbage outside the mask must not leak NaN into the loss or the gradient.
    inf = float("-inf")
    logp = [[inf, -1 + LN(1.5), inf]]
    batch = _batch([[0.0, -1.0, float("nan")]], [1.0], [[0, 1, 0]], gen=[[inf, -1.0, inf]])
    batch["reference_logprobs"] = torch.tensor([[inf, -1.0, inf]])
    cfg = _cfg(kl_penalty=0.1, use_importance_sampling_correction=True)
    loss, metrics, grad = _run(cfg, logp, batch, tokens=1)
    # r = 1.5 clipped to 1.2: pg = -1.2; k3 with d = -ln 1.5: 1/1.5 - 1 + ln 1.5 = 0.072132
    assert loss == pytest.approx(-1.2 + 0.1 * (1 / 1.5 - 1 + LN(1.5)), abs=1e-6)
    assert torch.isfinite(grad).all()
    assert all(math.isfinite(v) for v in metrics.values())


def test_empty_micro_batch_gives_zero_loss_that_backpropagates() -> None:
    batch = _batch([[0.0, -1.0]], [1.0], [[0, 0]])
    loss, metrics, grad = _run(_cfg(), [[0.0, -1.0]], batch, tokens=0, seqs=0)
    assert loss == 0.0 and metrics["clip_fraction"] == 0.0
    assert grad.abs().max().item() == 0.0


def test_loss_is_picklable_and_gives_the_same_result() -> None:
    loss_fn = ClippedPGLoss(_cfg(ratio_clip_max=0.28))
    clone = pickle.loads(pickle.dumps(loss_fn))
    batch = _batch(PREV, [1.0], MASK)
    lp = torch.tensor(LOGP)
    assert clone(lp, batch, 3, 1)[0].item() == loss_fn(lp, batch, 3, 1)[0].item()


def test_bad_inputs_raise_one_clear_error() -> None:
    loss_fn = ClippedPGLoss(_cfg())
    lp = torch.tensor(LOGP)
    batch = _batch(PREV, [1.0], MASK)
    # (A batch without prev_logprobs is valid: see test_grpo_loss_logprob_reuse.py.)
    with pytest.raises(KeyError, match=r"batch\['advantages'\]"):
        loss_fn(lp, {k: v for k, v in batch.items() if k != "advantages"}, 3, 1)
    with pytest.raises(
        ValueError, match=r"batch\['token_mask'\] must be a tensor of shape \(1, 4\)"
    ):
        loss_fn(lp, {**batch, "token_mask": torch.ones(1, 3)}, 3, 1)
    with pytest.raises(ValueError, match=r"batch\['advantages'\] must be a tensor of shape \(1,\)"):
        loss_fn(lp, {**batch, "advantages": torch.ones(2)}, 3, 1)
    with pytest.raises(ValueError, match="logprobs must be \\[B, T\\]"):
        loss_fn(lp[0], batch, 3, 1)
    with pytest.raises(ValueError, match="global_valid_tokens \\(2\\) is smaller"):
        loss_fn(lp, batch, 2, 1)
    with pytest.raises(KeyError, match="reference_logprobs"):
        ClippedPGLoss(_cfg(kl_penalty=0.1))(lp, batch, 3, 1)
    with pytest.raises(KeyError, match="generation_logprobs"):
        ClippedPGLoss(_cfg(use_importance_sampling_correction=True))(
            lp, {k: v for k, v in batch.items() if k != "generation_logprobs"}, 3, 1
        )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"use_cispo": True, "ratio_clip_c": 3.0}, "use_cispo and loss.ratio_clip_c"),
        ({"use_cispo": True, "sequence_level_importance_ratios": True}, "choose one of CISPO"),
        (
            {
                "use_importance_sampling_correction": True,
                "truncated_importance_sampling_type": "icepop",
                "truncated_importance_sampling_ratio": 2.0,
                "truncated_importance_sampling_ratio_min": 3.0,
            },
            "ratio_min \\(3.0\\) is above",
        ),
    ],
)
def test_incompatible_options_are_refused(overrides, message) -> None:
    with pytest.raises(ValueError, match=message):
        ClippedPGLoss(_cfg(**overrides))
