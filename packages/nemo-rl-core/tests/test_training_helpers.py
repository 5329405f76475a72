"""Core helpers for training backends against brute-force references: token log-probs, the
global valid counts, and the learning-rate schedule's shape."""

from __future__ import annotations

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from nemo_rl.config import SchedulerConfig
from nemo_rl.data import BatchedDataDict
from nemo_rl.training import global_valid_counts, lr_multiplier, token_logprobs


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.integers(1, 3), st.integers(1, 5), st.integers(2, 6), st.integers(0, 10_000))
def test_token_logprobs_equal_a_per_position_softmax(batch, length, vocab, seed):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, length, vocab, generator=gen, dtype=torch.float64) * 3
    ids = torch.randint(0, vocab, (batch, length), generator=gen)
    got = token_logprobs(logits, ids)
    for b in range(batch):
        assert got[b, 0] == 0
        for t in range(1, length):
            row = [math.exp(x) for x in logits[b, t - 1].tolist()]
            want = math.log(row[int(ids[b, t])] / sum(row))
            assert abs(float(got[b, t]) - want) < 1e-5


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.lists(st.tuples(st.lists(st.booleans(), min_size=4, max_size=4), st.booleans()),
                min_size=1, max_size=6))
def test_global_valid_counts_count_masked_tokens_of_kept_sequences(rows):
    batch = BatchedDataDict(
        token_mask=torch.tensor([[float(x) for x in tokens] for tokens, _ in rows]),
        sample_mask=torch.tensor([float(keep) for _, keep in rows]),
    )
    tokens = sum(sum(mask) for mask, keep in rows if keep)
    assert global_valid_counts(batch) == (tokens, sum(keep for _, keep in rows))


@settings(max_examples=80, deadline=None, derandomize=True)
@given(st.sampled_from(["linear", "cosine"]), st.integers(0, 5), st.integers(1, 20),
       st.floats(0.0, 1.0))
def test_decaying_schedules_ramp_up_then_fall_to_the_floor(name, warmup, decay, floor):
    cfg = SchedulerConfig(name=name, warmup_steps=warmup, total_steps=warmup + decay,
                          min_lr_ratio=floor)
    values = [lr_multiplier(k, cfg) for k in range(warmup + decay + 3)]
    assert values[:warmup] == [(k + 1) / warmup for k in range(warmup)]
    after = values[warmup:]
    assert after[0] == 1.0 or decay == 0
    assert all(a >= b - 1e-12 for a, b in zip(after, after[1:], strict=False))  # never rises while decaying
    assert math.isclose(values[-1], floor, abs_tol=1e-12)
