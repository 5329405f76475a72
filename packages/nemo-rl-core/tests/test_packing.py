"""Sequence packing and token-budget dynamic batching, against hand-worked examples."""

from __future__ import annotations

import pytest
import torch
from nemo_rl.data import (
    BatchedDataDict,
    build_packed_batch,
    dynamic_microbatches,
    iter_dynamic_microbatches,
    microbatch_padded_lengths,
    microbatch_token_counts,
    pack_sequences,
    unpack_logprobs,
)


# ---------------------------------------------------------------- pack_sequences
def test_first_fit_decreasing_hand_example():
    # visit order by length: 0(6), 3(5), 4(2), 1(1), 2(1)
    # 0 -> bin A (6); 3 -> bin B (5); 4 -> B (7); 1 -> A (7); 2 -> no room -> bin C
    assert pack_sequences([6, 1, 1, 5, 2], max_tokens=7) == [[0, 1], [3, 4], [2]]


def test_sequential_keeps_order_and_opens_a_bin_when_full():
    # 6+1 = 7 fits; +1 = 8 does not -> new bin 1+5 = 6; +2 = 8 does not -> new bin
    lengths = [6, 1, 1, 5, 2]
    assert pack_sequences(lengths, 7, algorithm="sequential") == [[0, 1], [2, 3], [4]]


@pytest.mark.parametrize("algorithm", ["first_fit_decreasing", "sequential"])
def test_every_sample_is_packed_once_within_budget(algorithm):
    lengths = [5, 9, 1, 3, 8, 2, 2, 7, 4, 6]
    bins = pack_sequences(torch.tensor(lengths), max_tokens=10, algorithm=algorithm)
    assert sorted(i for b in bins for i in b) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in b) <= 10 for b in bins)


def test_first_fit_decreasing_uses_fewer_bins_than_sequential_on_bad_orders():
    # sequential: [4] [4, 3] [3]; first-fit-decreasing: [4, 3] [4, 3]
    assert pack_sequences([4, 4, 3, 3], 7, algorithm="sequential") == [[0], [1, 2], [3]]
    assert pack_sequences([4, 4, 3, 3], 7) == [[0, 2], [1, 3]]


def test_pack_rejects_a_sample_longer_than_the_budget_by_index():
    with pytest.raises(ValueError, match=r"sample 2 has 9 tokens, more than max_tokens=8"):
        pack_sequences([3, 4, 9], max_tokens=8)
    with pytest.raises(ValueError, match="unknown packing algorithm 'best_fit'"):
        pack_sequences([1], max_tokens=8, algorithm="best_fit")  # type: ignore[arg-type]


# ---------------------------------------------------------------- build / unpack
def _padded_ids() -> tuple[torch.Tensor, list[int]]:
    ids = torch.tensor([[5, 6, 7, 0], [8, 9, 0, 0], [1, 2, 3, 4]])
    return ids, [3, 2, 4]


def test_build_packed_batch_concatenates_the_bin_without_padding():
    ids, lengths = _padded_ids()
    mask = (ids != 0).long()
    row = build_packed_batch(ids, lengths, [2, 0], token_tensors={"token_mask": mask})
    assert row["input_ids"].tolist() == [[1, 2, 3, 4, 5, 6, 7]]
    assert row["position_ids"].tolist() == [[0, 1, 2, 3, 0, 1, 2]]
    assert row["cu_seqlens"].tolist() == [0, 4, 7]
    assert row["cu_seqlens"].dtype == torch.int32
    assert row["max_seqlen"] == 4
    assert row["token_mask"].tolist() == [[1] * 7]


def test_unpack_inverts_build_and_zeroes_padding():
    ids, lengths = _padded_ids()
    bin_indices = [1, 2, 0]
    row = build_packed_batch(ids, torch.tensor(lengths), bin_indices)
    per_token = row["input_ids"].float() / 10  # stands in for log-probs of the packed row
    restored = unpack_logprobs(per_token, lengths, bin_indices, seq_len=4)
    expected = ids[bin_indices].float() / 10  # the pad id is 0, so padding is 0 here too
    torch.testing.assert_close(restored, expected)


def test_unpack_keeps_trailing_dims():
    packed = torch.arange(10.0).reshape(1, 5, 2)
    out = unpack_logprobs(packed, [2, 3], [0, 1], seq_len=3)
    assert out.shape == (2, 3, 2)
    assert out[0].tolist() == [[0.0, 1.0], [2.0, 3.0], [0.0, 0.0]]
    assert out[1].tolist() == [[4.0, 5.0], [6.0, 7.0], [8.0, 9.0]]


def test_build_and_unpack_errors_say_what_is_wrong():
    ids, lengths = _padded_ids()
    with pytest.raises(ValueError, match="2 lengths for 3 rows"):
        build_packed_batch(ids, [3, 2], [0])
    with pytest.raises(ValueError, match=r"\(0, 5\).*rows of 4 tokens"):
        build_packed_batch(ids, [5, 2, 4], [0])
    with pytest.raises(IndexError, match=r"\[3\]"):
        build_packed_batch(ids, lengths, [0, 3])
    with pytest.raises(ValueError, match="bin is empty"):
        build_packed_batch(ids, lengths, [])
    with pytest.raises(ValueError, match="sum to 5 but packed has 6"):
        unpack_logprobs(torch.zeros(1, 6), lengths, [0, 1], seq_len=4)


# ---------------------------------------------------------------- dynamic micro-batches
def test_dynamic_microbatches_hand_example():
    # [0]=3; +5 -> 2*5=10 ok; +2 -> 3*5=15 no | [2]=2; +2 -> 2*2=4 ok; +7 -> 3*7 no | [4]=7
    assert dynamic_microbatches([3, 5, 2, 2, 7], max_tokens=10) == [[0, 1], [2, 3], [4]]


def test_dynamic_microbatches_counts_padding_to_multiple():
    # rounded to 4: [4, 8, 4, 4, 8]; 4 then 8 -> 2*8=16 > 10 closes each time
    groups = dynamic_microbatches([3, 5, 2, 2, 7], max_tokens=10, pad_to_multiple=4)
    assert groups == [[0], [1], [2, 3], [4]]
    assert microbatch_padded_lengths([3, 5, 2, 2, 7], groups, pad_to_multiple=4) == [4, 8, 4, 8]
    assert microbatch_token_counts([3, 5, 2, 2, 7], groups) == [3, 5, 4, 7]


def test_dynamic_microbatches_single_sample_that_fits_exactly_is_alone():
    assert dynamic_microbatches([10, 1], max_tokens=10) == [[0], [1]]


def test_dynamic_microbatches_rejects_samples_over_budget():
    with pytest.raises(ValueError, match=r"sample 1 needs 11 tokens"):
        dynamic_microbatches([3, 11], max_tokens=10)
    with pytest.raises(ValueError, match=r"sample 0 needs 12 tokens \(length 9 rounded up"):
        dynamic_microbatches([9], max_tokens=10, pad_to_multiple=4)


def test_iter_dynamic_microbatches_trims_padding_columns_only():
    ids = torch.arange(32).reshape(4, 8)
    batch = BatchedDataDict(
        input_ids=ids,
        token_mask=torch.ones(4, 8),
        input_lengths=torch.tensor([2, 3, 8, 1]),
        advantages=torch.tensor([1.0, 2.0, 3.0, 4.0]),
    )
    micro = list(iter_dynamic_microbatches(batch, max_tokens=8))
    assert [tuple(mb["input_ids"].shape) for mb in micro] == [(2, 3), (1, 8), (1, 1)]
    assert torch.equal(micro[0]["input_ids"], ids[:2, :3])
    assert micro[0]["token_mask"].shape == (2, 3)
    assert micro[2]["advantages"].tolist() == [4.0]
    with pytest.raises(KeyError, match="no 'lengths' column"):
        iter_dynamic_microbatches(batch, max_tokens=8, lengths_key="lengths")
