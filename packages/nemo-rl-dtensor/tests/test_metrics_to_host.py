"""metrics_to_host / merge_metrics: loss metrics given as tensors are read to the host in one copy
and merge exactly as the same values given as floats."""

from __future__ import annotations

import random

import pytest
import torch
from nemo_rl_dtensor.policy_worker import merge_metrics, metrics_to_host
from torch.utils._python_dispatch import TorchDispatchMode


class CountScalarReads(TorchDispatchMode):
    """Counts `aten._local_scalar_dense`: what `.item()` and `float(tensor)` run (a device sync
    on a GPU tensor)."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten._local_scalar_dense.default:
            self.reads += 1
        return func(*args, **(kwargs or {}))


def test_tensors_and_floats_by_hand():
    results = [
        {"loss": torch.tensor(0.25), "kl_max": torch.tensor([2.0]), "n": 3},
        {"loss": 0.5, "kl_max": torch.tensor(1.0, dtype=torch.float64), "n": torch.tensor(4)},
    ]
    assert metrics_to_host(results) == [
        {"loss": 0.25, "kl_max": 2.0, "n": 3.0}, {"loss": 0.5, "kl_max": 1.0, "n": 4.0}
    ]
    assert merge_metrics(results) == {"loss": 0.75, "kl_max": 2.0, "n": 7.0}
    assert isinstance(results[0]["loss"], torch.Tensor)  # the input is left as it was


def test_every_value_is_read_in_one_copy_not_one_per_value():
    results = [{f"m{j}": torch.tensor(float(i + j)) for j in range(5)} for i in range(8)]
    with CountScalarReads() as counter:
        merged = merge_metrics(results)
    assert counter.reads == 0  # no per-value .item(): one stack, one .tolist()
    assert merged == {f"m{j}": float(sum(i + j for i in range(8))) for j in range(5)}


def test_graph_tensors_are_detached():
    x = torch.tensor(2.0, requires_grad=True)
    assert metrics_to_host([{"loss": x * 3}]) == [{"loss": 6.0}]


def test_a_metric_of_several_numbers_is_one_clear_error():
    with pytest.raises(ValueError, match=r"metric 'ratio' is a tensor of shape \(3,\).*0-dim"):
        merge_metrics([{"ratio": torch.ones(3)}])


@pytest.mark.parametrize("seed", range(20))
def test_tensor_metrics_merge_exactly_as_floats(seed):
    # Brute-force reference: the same values read one by one with float(), merged by hand.
    rng = random.Random(seed)
    dtypes = [torch.float32, torch.float64, torch.bfloat16, torch.float16]
    keys = ["loss", "pg_loss", "ratio_max", "ratio_min", "num_valid_tokens"]
    results = []
    for _ in range(rng.randint(1, 6)):
        row = {}
        for key in rng.sample(keys, rng.randint(1, len(keys))):
            value = rng.uniform(-1e3, 1e3)
            if rng.random() < 0.7:
                shape = rng.choice([(), (1,), (1, 1)])
                row[key] = torch.full(shape, value, dtype=rng.choice(dtypes))
            else:
                row[key] = value
        results.append(row)
    expected: dict[str, float] = {}
    for row in results:
        for key, value in row.items():
            number = float(value)
            if key not in expected:
                expected[key] = number
            elif key.endswith("_max"):
                expected[key] = max(expected[key], number)
            elif key.endswith("_min"):
                expected[key] = min(expected[key], number)
            else:
                expected[key] += number
    assert merge_metrics(results) == expected
