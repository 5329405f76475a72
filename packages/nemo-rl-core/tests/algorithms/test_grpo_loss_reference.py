"""ClippedPGLoss against a brute-force reference over random batches and options.

The reference walks the batch sample by sample and token by token in Python floats (float64),
and writes each token's gradient from the formulas by hand, so it shares no code or autograd
trick with the loss. Random: shapes, prompt and response lengths, sample masks, per-sequence or
per-token advantages, padding garbage (-inf included), and every loss option.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import pytest
import torch
from nemo_rl.algorithms.grpo import ClippedPGLoss, GRPOLossConfig

NUM_BATCHES = 300


@dataclass
class Case:
    cfg: GRPOLossConfig
    lp: list[list[float]]
    prev: list[list[float]]
    gen: list[list[float]]
    ref: list[list[float]]
    adv: list[list[float]]  # [B, T] (expanded when the batch gives one value per sequence)
    per_sequence_adv: bool
    token_mask: list[list[int]]
    sample_mask: list[int]
    tokens: int
    seqs: int


def _kl_and_grad(lp: float, ref: float, cfg: GRPOLossConfig) -> tuple[float, float]:
    """KL estimate and its gradient with respect to lp, the sampling term included."""
    d = ref - lp
    if cfg.kl_input_clamp is not None and abs(d) > cfg.kl_input_clamp:
        d = math.copysign(cfg.kl_input_clamp, d)
        clamped_in = True
    else:
        clamped_in = False
    if cfg.kl_type == "k1":
        k, dk = -d, 1.0
    elif cfg.kl_type == "k2":
        k, dk = d * d / 2, -d
    else:
        k, dk = math.exp(d) - 1 - d, 1 - math.exp(d)
    if cfg.kl_output_clamp is not None and abs(k) > cfg.kl_output_clamp:
        return math.copysign(cfg.kl_output_clamp, k), 0.0
    return k, 0.0 if clamped_in else dk + k  # pathwise + score-function term


def _weights(case: Case, i: int, valid: list[int]) -> list[float]:
    """Importance weight of each valid token of sequence i."""
    cfg = case.cfg
    if not cfg.use_importance_sampling_correction:
        return [1.0] * len(valid)
    log_w = [case.prev[i][t] - case.gen[i][t] for t in valid]
    kind, high = cfg.truncated_importance_sampling_type, cfg.truncated_importance_sampling_ratio
    low = cfg.truncated_importance_sampling_ratio_min or 0.0
    raw = (
        [math.exp(sum(log_w))] * len(valid)
        if cfg.sequence_level_importance_ratios
        else [math.exp(x) for x in log_w]
    )
    if kind == "tis":
        return [min(max(w, low), high) for w in raw]
    if kind == "icepop":
        return [w if low <= w <= high else 0.0 for w in raw]
    if kind == "seq-mask-tis":
        geo = math.exp(sum(log_w) / len(log_w))
        return raw if low <= geo <= high else [0.0] * len(raw)
    return raw


def reference(case: Case) -> tuple[float, list[list[float]]]:
    cfg = case.cfg
    lo, hi = 1 - cfg.ratio_clip_min, 1 + cfg.ratio_clip_max
    loss = 0.0
    grad = [[0.0] * len(row) for row in case.lp]
    for i, row in enumerate(case.lp):
        valid = [t for t, m in enumerate(case.token_mask[i]) if m and case.sample_mask[i]]
        if not valid:
            continue
        n = len(valid)
        # Each token's share of the loss: 1 / tokens, or 1 / (n seqs) for the sequence level.
        share = 1 / case.tokens if cfg.token_level_loss else 1 / (n * case.seqs)
        weights = _weights(case, i, valid)
        if cfg.sequence_level_importance_ratios:
            seq_ratio = math.exp(sum(row[t] - case.prev[i][t] for t in valid) / n)
        for w, t in zip(weights, valid, strict=True):
            a = case.adv[i][t]
            r = (
                seq_ratio
                if cfg.sequence_level_importance_ratios
                else math.exp(row[t] - case.prev[i][t])
            )
            rc = min(max(r, lo), hi)
            if cfg.use_cispo:
                pg, dpg_dlp = -a * rc * row[t], -a * rc
                dpg_dr = 0.0
            else:
                unclipped = -a * r >= -a * rc
                pg = max(-a * r, -a * rc)
                dpg_dr = -a if unclipped else 0.0
                dpg_dlp = 0.0
            if cfg.ratio_clip_c is not None and a < 0 and pg > -cfg.ratio_clip_c * a:
                pg, dpg_dr, dpg_dlp = -cfg.ratio_clip_c * a, 0.0, 0.0
            loss += share * w * pg
            # dr/dlp: r itself per token; r / n on every token of the sequence for GSPO.
            if cfg.sequence_level_importance_ratios:
                for u in valid:
                    grad[i][u] += share * w * dpg_dr * r / n
            else:
                grad[i][t] += share * w * dpg_dr * r
            grad[i][t] += share * w * dpg_dlp
            if cfg.kl_penalty > 0:
                k, dk = _kl_and_grad(row[t], case.ref[i][t], cfg)
                loss += share * cfg.kl_penalty * k
                grad[i][t] += share * cfg.kl_penalty * dk
    return loss, grad


def _random_config(rng: random.Random) -> GRPOLossConfig:
    gspo = rng.random() < 0.35
    cispo = not gspo and rng.random() < 0.2
    kind = rng.choice([None, "tis", "icepop"] + ([] if gspo else ["seq-mask-tis"]))
    correction = kind is not None or rng.random() < 0.5
    return GRPOLossConfig(
        ratio_clip_min=rng.choice([0.1, 0.2]),
        ratio_clip_max=rng.choice([0.2, 0.28]),
        ratio_clip_c=None if cispo else rng.choice([None, 1.05, 3.0]),
        kl_penalty=rng.choice([0.0, 0.05, 0.3]),
        kl_type=rng.choice(["k1", "k2", "k3"]),
        kl_input_clamp=rng.choice([None, 20.0, 0.5]),
        kl_output_clamp=rng.choice([None, 10.0, 0.3]),
        token_level_loss=rng.random() < 0.5,
        sequence_level_importance_ratios=gspo,
        use_importance_sampling_correction=correction,
        truncated_importance_sampling_type=kind,
        truncated_importance_sampling_ratio=rng.choice([1.2, 2.0]) if kind else None,
        truncated_importance_sampling_ratio_min=rng.choice([None, 0.8]) if kind else None,
        use_cispo=cispo,
    )


def _random_case(rng: random.Random) -> Case:
    cfg = _random_config(rng)
    b, t = rng.randint(1, 4), rng.randint(2, 7)
    token_mask, sample_mask = [], []
    for _ in range(b):
        prompt = rng.randint(1, t - 1)
        length = rng.randint(0, t - prompt)  # 0: a sequence without response tokens
        token_mask.append([1 if prompt <= j < prompt + length else 0 for j in range(t)])
        sample_mask.append(0 if rng.random() < 0.15 else 1)

    def garbage() -> float:
        return rng.choice([float("-inf"), rng.uniform(-50, 50)])

    lp, prev, gen, ref = [], [], [], []
    for i in range(b):
        rows = ([], [], [], [])
        for j in range(t):
            if token_mask[i][j]:
                x = rng.uniform(-3.0, -0.05)
                p = x + rng.gauss(0, 0.25)
                values = (x, p, p + rng.gauss(0, 0.3), x + rng.gauss(0, 0.8))
            else:
                values = (garbage(), rng.uniform(-50, 50), garbage(), garbage())
            for row, v in zip(rows, values, strict=True):
                row.append(v)
        for table, row in zip((lp, prev, gen, ref), rows, strict=True):
            table.append(row)
    per_sequence = rng.random() < 0.5
    if per_sequence:
        adv = [[a] * t for a in (rng.gauss(0, 1) for _ in range(b))]
    else:
        adv = [[rng.gauss(0, 1) for _ in range(t)] for _ in range(b)]
    local_tokens = sum(sum(m) * s for m, s in zip(token_mask, sample_mask, strict=True))
    return Case(
        cfg,
        lp,
        prev,
        gen,
        ref,
        adv,
        per_sequence,
        token_mask,
        sample_mask,
        tokens=local_tokens + rng.choice([0, 0, 3]),
        seqs=sum(sample_mask) + rng.choice([0, 0, 2]),
    )


def _run_loss(case: Case) -> tuple[float, torch.Tensor]:
    f64 = torch.float64
    adv = torch.tensor(
        [row[0] for row in case.adv] if case.per_sequence_adv else case.adv, dtype=f64
    )
    batch = {
        "prev_logprobs": torch.tensor(case.prev, dtype=f64),
        "generation_logprobs": torch.tensor(case.gen, dtype=f64),
        "reference_logprobs": torch.tensor(case.ref, dtype=f64),
        "advantages": adv,
        "token_mask": torch.tensor(case.token_mask),
        "sample_mask": torch.tensor(case.sample_mask, dtype=f64),
    }
    lp = torch.tensor(case.lp, dtype=f64, requires_grad=True)
    loss, _ = ClippedPGLoss(case.cfg)(lp, batch, case.tokens, case.seqs)
    loss.backward()
    return loss.item(), lp.grad


@pytest.mark.parametrize("chunk", range(6))
def test_loss_and_gradients_match_the_brute_force_reference(chunk: int) -> None:
    per_chunk = NUM_BATCHES // 6
    for index in range(chunk * per_chunk, (chunk + 1) * per_chunk):
        case = _random_case(random.Random(index))
        expected_loss, expected_grad = reference(case)
        loss, grad = _run_loss(case)
        where = f"case {index}: {case.cfg!r}"
        assert loss == pytest.approx(expected_loss, rel=1e-9, abs=1e-12), where
        torch.testing.assert_close(
            grad,
            torch.tensor(expected_grad, dtype=torch.float64),
            rtol=1e-9,
            atol=1e-12,
            msg=lambda m, where=where: f"{where}\n{m}",
        )


def test_the_random_cases_cover_every_variant() -> None:
    # A guard against a generator that silently stopped producing some option.
    cfgs = [_random_case(random.Random(i)).cfg for i in range(NUM_BATCHES)]
    gspo_is = [
        c
        for c in cfgs
        if c.sequence_level_importance_ratios and c.use_importance_sampling_correction
    ]
    assert {c.truncated_importance_sampling_type for c in gspo_is} == {None, "tis", "icepop"}
    assert any(c.truncated_importance_sampling_type == "seq-mask-tis" for c in cfgs)
    assert {c.kl_type for c in cfgs if c.kl_penalty > 0} == {"k1", "k2", "k3"}
    assert any(c.kl_penalty > 0 and c.kl_input_clamp == 0.5 for c in cfgs)
    assert any(c.use_cispo for c in cfgs) and any(c.ratio_clip_c == 1.05 for c in cfgs)
    assert {c.token_level_loss for c in cfgs} == {True, False}
