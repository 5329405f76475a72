"""Temperature, top-k and top-p filtering: hand-computed cases and a float64 brute force."""

from __future__ import annotations

import math
import random

import torch
from nemo_rl_dtensor.token_sampling import filtered_scores, next_tokens

INF = float("inf")


def test_hand_computed_filters():
    logits = torch.tensor([[3.0, 1.0, 1.0, 0.0]])
    # Temperature 2 halves every score.
    assert filtered_scores(logits, 2.0, None, 1.0).tolist() == [[1.5, 0.5, 0.5, 0.0]]
    # top-k 2: the second-largest score (1.0) is shared, so both tied tokens stay.
    assert filtered_scores(logits, 1.0, 2, 1.0).tolist() == [[3.0, 1.0, 1.0, -INF]]
    # probabilities of [ln 6, ln 3, ln 1] are [0.6, 0.3, 0.1]; top-p 0.85: cumulative from the
    # least likely is [0.1, 0.4, 1.0], and 0.1 <= 0.15 drops only the last token.
    probs = torch.tensor([[math.log(6.0), math.log(3.0), 0.0]])
    assert filtered_scores(probs, 1.0, None, 0.85).isinf().tolist() == [[False, False, True]]
    # A tiny top-p still keeps the most likely token.
    assert filtered_scores(probs, 1.0, None, 1e-6).isinf().tolist() == [[False, True, True]]
    # Banned ids are removed before everything else, greedy included.
    assert next_tokens(logits, 0.0, None, 1.0, banned=torch.tensor([0])).tolist() == [1]


def brute_force_kept(row: list[float], temperature: float, top_k: int | None, top_p: float):
    """Indices that survive, computed one token at a time in float64."""
    scores = [x / temperature for x in row]
    kept = set(range(len(scores)))
    if top_k is not None and top_k < len(scores):
        kth = sorted(scores, reverse=True)[top_k - 1]
        kept = {i for i in kept if scores[i] >= kth}
    if top_p < 1.0:
        peak = max(scores[i] for i in kept)
        weights = {i: math.exp(scores[i] - peak) for i in kept}
        total = sum(weights.values())
        order = sorted(kept, key=lambda i: scores[i])  # least likely first
        cumulative, dropped, margins = 0.0, set(), []
        for i in order[:-1]:
            cumulative += weights[i] / total
            margins.append(abs(cumulative - (1.0 - top_p)))
            if cumulative <= 1.0 - top_p:
                dropped.add(i)
        if margins and min(margins) < 1e-5:
            return None  # float32 rounding may fall either side of the threshold
        if any(scores[i] == scores[j] and (i in dropped) != (j in dropped) for i in kept for j in kept):
            return None  # the threshold splits equal scores: which of them stays is arbitrary
        kept -= dropped
    return kept


def test_filters_match_a_float64_brute_force_over_random_cases():
    rng = random.Random(0)
    checked = 0
    for _ in range(2000):
        vocab = rng.randint(1, 12)
        # Integers over 4 make ties at the k-th score common.
        row = [rng.randint(-8, 8) / 4 for _ in range(vocab)]
        temperature = rng.choice([0.3, 0.7, 1.0, 1.5])
        top_k = rng.choice([None, 1, 2, 3, 5, 20])
        top_p = rng.choice([1.0, 0.95, 0.8, 0.5, 0.2, 0.01])
        expected = brute_force_kept(row, temperature, top_k, top_p)
        if expected is None:
            continue
        out = filtered_scores(torch.tensor([row]), temperature, top_k, top_p)[0]
        assert {i for i in range(vocab) if not out[i].isinf()} == expected, (row, temperature, top_k, top_p)
        for i in expected:
            assert abs(out[i].item() - row[i] / temperature) < 1e-5
        checked += 1
    assert checked > 1200, checked


def test_draws_stay_inside_the_kept_set_and_follow_its_probabilities():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 50, generator=gen)
    scores = filtered_scores(logits, 0.8, 10, 0.7)
    draws = torch.stack([next_tokens(logits, 0.8, 10, 0.7, generator=gen) for _ in range(4000)])
    assert not scores.gather(1, draws.T).isinf().any()
    # Row 0's empirical frequencies match softmax(scores) within sampling noise.
    probs = scores[0].softmax(-1)
    counts = torch.bincount(draws[:, 0], minlength=50).float() / draws.shape[0]
    assert (counts - probs).abs().max() < 0.03
    # Greedy is the argmax, whatever the filters.
    assert torch.equal(next_tokens(logits, 0.0, 3, 0.1), logits.argmax(-1))
