"""BatchedDataDict: validation, concatenation with padding, selection, sharding, micro-batches."""

from __future__ import annotations

import pickle

import pytest
import torch
from nemo_rl.data import BatchedDataDict


def _batch(n: int = 4) -> BatchedDataDict:
    return BatchedDataDict(
        ids=torch.arange(n * 2).reshape(n, 2),
        reward=torch.arange(n, dtype=torch.float32),
        prompt=[f"p{i}" for i in range(n)],
    )


# ---------------------------------------------------------------- size and validation
def test_size_counts_the_batch_dimension_and_is_zero_when_empty():
    assert _batch(3).size == 3
    assert BatchedDataDict().size == 0


def test_mismatched_batch_sizes_raise_naming_keys_and_sizes():
    with pytest.raises(ValueError, match=r"ids=2.*tag=3"):
        BatchedDataDict(ids=torch.zeros(2, 5), tag=["a", "b", "c"])


def test_mismatch_introduced_by_item_assignment_is_caught_by_size():
    batch = _batch(2)
    batch["extra"] = [1, 2, 3]
    with pytest.raises(ValueError, match="extra=3"):
        _ = batch.size


def test_scalar_tensor_and_unsupported_types_are_rejected_with_the_key():
    with pytest.raises(TypeError, match=r"'loss'.*0-dim"):
        BatchedDataDict(loss=torch.tensor(1.0))
    with pytest.raises(TypeError, match=r"\['meta'\] is a dict"):
        BatchedDataDict(meta={"a": 1})


# ---------------------------------------------------------------- from_batches
def test_from_batches_right_pads_tensors_with_per_key_pad_values():
    a = {"ids": torch.tensor([[1, 2, 3]]), "mask": torch.tensor([[1, 1, 1]]), "t": ["a"]}
    b = {"ids": torch.tensor([[4], [5]]), "mask": torch.tensor([[1], [1]]), "t": ["b", "c"]}
    merged = BatchedDataDict.from_batches([a, b], pad_value_dict={"ids": 99})
    assert isinstance(merged, BatchedDataDict)
    assert merged["ids"].tolist() == [[1, 2, 3], [4, 99, 99], [5, 99, 99]]
    assert merged["mask"].tolist() == [[1, 1, 1], [1, 0, 0], [1, 0, 0]]  # default pad 0
    assert merged["t"] == ["a", "b", "c"]


def test_from_batches_pads_every_trailing_dim():
    a = {"x": torch.ones(1, 2, 1)}
    b = {"x": torch.ones(1, 1, 3)}
    merged = BatchedDataDict.from_batches([a, b])
    assert merged["x"].shape == (2, 2, 3)
    assert merged["x"].sum().item() == 2 + 3


def test_from_batches_skips_empty_accumulators():
    merged = BatchedDataDict.from_batches([BatchedDataDict(), _batch(2), {}])
    assert merged.size == 2
    assert BatchedDataDict.from_batches([]).size == 0


def test_from_batches_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"batch 1 .*missing: \['prompt'\]"):
        BatchedDataDict.from_batches(
            [_batch(2), {"ids": torch.zeros(1, 2), "reward": torch.zeros(1)}]
        )
    with pytest.raises(ValueError, match="tensor in some batches and a list"):
        BatchedDataDict.from_batches([{"x": torch.zeros(1)}, {"x": [0]}])
    with pytest.raises(ValueError, match="different ranks"):
        BatchedDataDict.from_batches([{"x": torch.zeros(1, 2)}, {"x": torch.zeros(1)}])


# ---------------------------------------------------------------- selection
def test_slice_returns_views_and_checks_bounds():
    batch = _batch(4)
    part = batch.slice(1, 3)
    assert part["prompt"] == ["p1", "p2"]
    assert part["ids"].tolist() == [[2, 3], [4, 5]]
    part["reward"][0] = -1.0  # a view: the original sees the write
    assert batch["reward"][1].item() == -1.0
    with pytest.raises(IndexError, match="outside a batch of 4"):
        batch.slice(2, 5)


def test_select_indices_accepts_lists_and_long_tensors_in_given_order():
    batch = _batch(4)
    by_list = batch.select_indices([3, 0, 3])
    by_tensor = batch.select_indices(torch.tensor([3, 0, 3]))
    for picked in (by_list, by_tensor):
        assert picked["prompt"] == ["p3", "p0", "p3"]
        assert picked["reward"].tolist() == [3.0, 0.0, 3.0]
        assert picked["ids"].tolist() == [[6, 7], [0, 1], [6, 7]]


def test_select_indices_rejects_out_of_range_and_masks():
    with pytest.raises(IndexError, match=r"\[4\].*batch of 4"):
        _batch(4).select_indices([0, 4])
    with pytest.raises(TypeError, match="nonzero"):
        _batch(2).select_indices(torch.tensor([True, False]))


def test_select_keys_and_shallow_copy():
    batch = _batch(2)
    only = batch.select_keys(["prompt"])
    assert list(only) == ["prompt"] and only["prompt"] is batch["prompt"]
    with pytest.raises(KeyError, match="available keys"):
        batch.select_keys(["nope"])
    clone = batch.copy()
    assert isinstance(clone, BatchedDataDict) and clone["ids"] is batch["ids"]
    clone["new"] = [0, 0]
    assert "new" not in batch


def test_to_moves_tensors_and_keeps_lists():
    moved = _batch(2).to("cpu")
    assert moved["ids"].device.type == "cpu" and moved["prompt"] == ["p0", "p1"]


# ---------------------------------------------------------------- expansion and distribution
def test_repeat_interleave_repeats_each_sample_consecutively():
    out = _batch(2).repeat_interleave(3)
    assert out["prompt"] == ["p0", "p0", "p0", "p1", "p1", "p1"]
    assert out["reward"].tolist() == [0.0, 0.0, 0.0, 1.0, 1.0, 1.0]
    assert out["ids"].tolist() == [[0, 1]] * 3 + [[2, 3]] * 3
    with pytest.raises(ValueError, match="positive integer"):
        _batch(2).repeat_interleave(0)


def test_shard_without_batch_size_gives_contiguous_blocks():
    shards = _batch(6).shard_by_batch_size(3)
    assert [s["prompt"] for s in shards] == [["p0", "p1"], ["p2", "p3"], ["p4", "p5"]]


def test_shard_with_batch_size_splits_each_optimizer_batch_over_ranks():
    batch = BatchedDataDict(x=torch.arange(12), tag=list(range(12)))
    shards = batch.shard_by_batch_size(2, batch_size=6)
    # chunks [0..5] and [6..11]; rank 0 takes the first half of each, rank 1 the second
    assert shards[0]["x"].tolist() == [0, 1, 2, 6, 7, 8]
    assert shards[1]["tag"] == [3, 4, 5, 9, 10, 11]
    single = batch.shard_by_batch_size(3, batch_size=12)
    assert [s["x"].tolist() for s in single] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]


def test_shard_errors_when_not_divisible():
    with pytest.raises(ValueError, match="10 samples into 4 equal shards"):
        BatchedDataDict(x=list(range(10))).shard_by_batch_size(4)
    with pytest.raises(ValueError, match="multiple of batch_size"):
        BatchedDataDict(x=list(range(12))).shard_by_batch_size(2, batch_size=5)
    with pytest.raises(ValueError, match="multiple of batch_size"):
        BatchedDataDict(x=list(range(12))).shard_by_batch_size(4, batch_size=6)


def test_microbatch_iterator_yields_consecutive_slices():
    sizes_and_heads = [(mb.size, mb["prompt"][0]) for mb in _batch(5).make_microbatch_iterator(2)]
    assert sizes_and_heads == [(2, "p0"), (2, "p2"), (1, "p4")]
    with pytest.raises(ValueError, match="micro_batch_size >= 1"):
        _batch(2).make_microbatch_iterator(0)  # raised at the call, not at the first next()


def test_pickle_round_trip_keeps_type_and_values():
    # Batches cross process boundaries (local processes, Ray actors) by pickling.
    restored = pickle.loads(pickle.dumps(_batch(3)))
    assert isinstance(restored, BatchedDataDict)
    assert restored["prompt"] == ["p0", "p1", "p2"]
    assert torch.equal(restored["ids"], _batch(3)["ids"])
