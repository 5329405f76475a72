"""ResumableSampler: epoch orders, exact resume, and the errors it raises."""

from __future__ import annotations

import json
from itertools import islice

import pytest
import torch
from nemo_rl.data import ResumableSampler


def take(sampler: ResumableSampler, n: int) -> list[list[int]]:
    return list(islice(sampler, n))


def test_without_shuffle_batches_walk_the_rows_in_order_and_drop_the_remainder():
    sampler = ResumableSampler(num_rows=7, batch_size=3, shuffle=False)
    assert len(sampler) == 2
    assert take(sampler, 5) == [[0, 1, 2], [3, 4, 5], [0, 1, 2], [3, 4, 5], [0, 1, 2]]
    assert sampler.epoch == 2 and sampler.batch_in_epoch == 1


def test_without_drop_last_the_last_batch_is_partial():
    sampler = ResumableSampler(num_rows=7, batch_size=3, shuffle=False, drop_last=False)
    assert len(sampler) == 3
    assert take(sampler, 4) == [[0, 1, 2], [3, 4, 5], [6], [0, 1, 2]]


def test_each_epoch_is_the_permutation_seeded_with_seed_plus_epoch():
    sampler = ResumableSampler(num_rows=10, batch_size=5, seed=3)
    epoch0 = sum(take(sampler, 2), [])
    epoch1 = sum(take(sampler, 2), [])
    for epoch, order in ((0, epoch0), (1, epoch1)):
        expected = torch.randperm(10, generator=torch.Generator().manual_seed(3 + epoch)).tolist()
        assert order == expected
        assert sorted(order) == list(range(10))
    assert epoch0 != epoch1
    assert sampler.epoch == 2


def test_same_seed_same_order_and_other_seed_other_order():
    a = take(ResumableSampler(20, 4, seed=1), 5)
    b = take(ResumableSampler(20, 4, seed=1), 5)
    c = take(ResumableSampler(20, 4, seed=2), 5)
    assert a == b
    assert a != c


@pytest.mark.parametrize("stop_after", [1, 3, 4, 6])  # mid-epoch and exactly at epoch ends
def test_resume_continues_with_exactly_the_next_batch(stop_after):
    uninterrupted = take(ResumableSampler(9, 2, seed=5), 10)
    first = ResumableSampler(9, 2, seed=5)
    seen = take(first, stop_after)
    state = json.loads(json.dumps(first.state_dict()))  # checkpoints store it as JSON
    resumed = ResumableSampler(9, 2, seed=5)
    resumed.load_state_dict(state)
    assert resumed.epoch == first.epoch
    assert seen + take(resumed, 10 - stop_after) == uninterrupted


def test_state_points_at_the_next_epoch_after_its_last_batch():
    sampler = ResumableSampler(4, 2, shuffle=False)
    take(sampler, 2)
    assert sampler.state_dict()["epoch"] == 1
    assert sampler.state_dict()["batch_in_epoch"] == 0


def test_batch_larger_than_dataset_with_drop_last_is_a_clear_error():
    with pytest.raises(ValueError, match=r"batch_size=8 is larger than the dataset \(5 rows\)"):
        ResumableSampler(num_rows=5, batch_size=8)
    assert take(ResumableSampler(5, 8, shuffle=False, drop_last=False), 1) == [[0, 1, 2, 3, 4]]


def test_empty_dataset_and_bad_batch_size_are_errors():
    with pytest.raises(ValueError, match="no rows"):
        ResumableSampler(0, 1)
    with pytest.raises(ValueError, match="batch_size=0"):
        ResumableSampler(3, 0)


def test_loading_a_state_from_other_settings_names_the_setting():
    state = ResumableSampler(10, 2, seed=1).state_dict()
    with pytest.raises(ValueError, match=r"checkpoint has seed=1 but this sampler has seed=2"):
        ResumableSampler(10, 2, seed=2).load_state_dict(state)
    with pytest.raises(ValueError, match="num_rows=10"):
        ResumableSampler(11, 2, seed=1).load_state_dict(state)


def test_loading_an_out_of_range_or_incomplete_state_is_an_error():
    sampler = ResumableSampler(10, 2)
    with pytest.raises(ValueError, match="outside 0..4"):
        sampler.load_state_dict({"epoch": 0, "batch_in_epoch": 5})
    with pytest.raises(ValueError, match="lacks batch_in_epoch"):
        sampler.load_state_dict({"epoch": 0})
