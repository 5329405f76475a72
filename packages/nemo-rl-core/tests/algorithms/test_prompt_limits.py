"""GRPO's over-long prompt handling (`nemo_rl.algorithms.grpo.prompt_limits`): hand-checked cases
and a property test against a brute-force reference."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nemo_rl.algorithms.grpo.prompt_limits import limit_prompt_lengths, prompt_limit


def test_prompt_limit_leaves_room_for_one_generated_token():
    assert prompt_limit(64) == 63
    assert prompt_limit(64, max_input_seq_length=20) == 20
    assert prompt_limit(64, max_input_seq_length=100) == 63  # the sequence limit still binds
    with pytest.raises(ValueError, match="max_total_sequence_length=1 leaves no room"):
        prompt_limit(1)


def test_filter_keeps_the_first_token_of_each_over_long_prompt_only():
    out = limit_prompt_lengths([[1, 2, 3], [4, 5, 6, 7, 8], [9, 9, 9, 9]], limit=4, mode="filter")
    assert out.sequences == [[1, 2, 3], [4], [9, 9, 9, 9]]  # exactly the limit is not over it
    assert out.filtered == [False, True, False]
    assert out.truncated == [False, False, False]
    assert (out.num_filtered, out.num_truncated, out.longest) == (1, 0, 5)


def test_truncate_keeps_the_last_tokens_where_the_generation_prompt_is():
    out = limit_prompt_lengths([[1, 2, 3], [4, 5, 6, 7, 8]], limit=3, mode="truncate")
    assert out.sequences == [[1, 2, 3], [6, 7, 8]]
    assert out.filtered == [False, False]
    assert out.truncated == [False, True]
    assert (out.num_filtered, out.num_truncated, out.longest) == (0, 1, 5)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="limit=0"):
        limit_prompt_lengths([[1]], limit=0)
    with pytest.raises(ValueError, match="mode='drop'; use one of filter, truncate"):
        limit_prompt_lengths([[1]], limit=1, mode="drop")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="an empty prompt"):
        limit_prompt_lengths([[]], limit=1)


def _reference(sequences, limit, mode):
    """Brute force: build each output token by token from its definition."""
    out, filtered, truncated = [], [], []
    for seq in sequences:
        if len(seq) <= limit:
            kept = [seq[i] for i in range(len(seq))]
        elif mode == "filter":
            kept = [seq[0]]
        else:
            kept = [seq[i] for i in range(len(seq) - limit, len(seq))]
        out.append(kept)
        filtered.append(mode == "filter" and len(seq) > limit)
        truncated.append(mode == "truncate" and len(seq) > limit)
    return out, filtered, truncated


@settings(max_examples=400, deadline=None, derandomize=True)
@given(
    sequences=st.lists(st.lists(st.integers(0, 50), min_size=1, max_size=30), min_size=1, max_size=8),
    limit=st.integers(1, 32),
    mode=st.sampled_from(["filter", "truncate"]),
)
def test_matches_the_reference_and_each_prompt_is_handled_on_its_own(sequences, limit, mode):
    out = limit_prompt_lengths(sequences, limit, mode)
    assert (out.sequences, out.filtered, out.truncated) == _reference(sequences, limit, mode)
    assert all(len(s) <= limit for s in out.sequences)
    # Handling is per prompt: each one's result does not depend on the rest of the batch.
    for i, seq in enumerate(sequences):
        alone = limit_prompt_lengths([seq], limit, mode)
        assert alone.sequences[0] == out.sequences[i]
