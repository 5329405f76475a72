"""compute_grpo_advantages against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch
from nemo_rl.algorithms.grpo import compute_grpo_advantages


def _ids(*values: int) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.long)


def test_leave_one_out_normalised_uses_the_other_members() -> None:
    # Group {1, 2, 4}. Sample 0: others {2, 4}, mean 3, std sqrt(((2-3)^2 + (4-3)^2) / 1) = sqrt(2)
    #   -> (1 - 3) / sqrt(2) = -1.414214
    # Sample 1: others {1, 4}, mean 2.5, std sqrt(1.5^2 + 1.5^2) = sqrt(4.5) -> -0.5 / 2.121320
    # Sample 2: others {1, 2}, mean 1.5, std sqrt(0.5^2 + 0.5^2) = sqrt(0.5) -> 2.5 / 0.707107
    adv = compute_grpo_advantages(torch.tensor([1.0, 2.0, 4.0]), _ids(5, 5, 5), eps=0.0)
    expected = torch.tensor([-2 / math.sqrt(2), -0.5 / math.sqrt(4.5), 2.5 / math.sqrt(0.5)])
    torch.testing.assert_close(adv, expected)  # [-1.414214, -0.235702, 3.535534]


def test_leave_one_out_without_normalisation_is_reward_minus_others_mean() -> None:
    # 1 - (2+4)/2 = -2;  2 - (1+4)/2 = -0.5;  4 - (1+2)/2 = 2.5
    adv = compute_grpo_advantages(torch.tensor([1.0, 2.0, 4.0]), _ids(0, 0, 0), normalize=False)
    torch.testing.assert_close(adv, torch.tensor([-2.0, -0.5, 2.5]))


def test_plain_baseline_uses_all_members() -> None:
    # mean 7/3; deviations -4/3, -1/3, 5/3; squares sum 16/9 + 1/9 + 25/9 = 42/9, / (3-1) = 7/3,
    # std sqrt(7/3) = 1.527525 -> [-0.872872, -0.218218, 1.091089]
    adv = compute_grpo_advantages(
        torch.tensor([1.0, 2.0, 4.0]), _ids(0, 0, 0), leave_one_out=False, eps=0.0
    )
    std = math.sqrt(7 / 3)
    torch.testing.assert_close(adv, torch.tensor([-4 / 3 / std, -1 / 3 / std, 5 / 3 / std]))


def test_eps_is_added_to_the_std() -> None:
    # {0, 2}: mean 1, std sqrt((1 + 1) / 1) = sqrt(2); with eps = 1: -1 / (sqrt(2) + 1) = -0.414214
    adv = compute_grpo_advantages(
        torch.tensor([0.0, 2.0]), _ids(3, 3), leave_one_out=False, eps=1.0
    )
    torch.testing.assert_close(adv, torch.tensor([-1.0, 1.0]) / (math.sqrt(2) + 1.0))


def test_two_members_with_leave_one_out_are_not_normalised() -> None:
    # Each has one other member: baseline = the other reward, std undefined -> 0, no division.
    # 0 - 3 = -3 and 3 - 0 = 3 (normalising would have given +-3 / (0 + eps), a huge value)
    adv = compute_grpo_advantages(torch.tensor([0.0, 3.0]), _ids(1, 1))
    torch.testing.assert_close(adv, torch.tensor([-3.0, 3.0]))


def test_invalid_samples_get_zero_and_do_not_count_as_members() -> None:
    # The 100 is invalid: the group is {1, 2, 4} as in the first test; the singleton group 8 -> 0.
    rewards = torch.tensor([1.0, 2.0, 4.0, 100.0, 7.0])
    valid = torch.tensor([True, True, True, False, True])
    adv = compute_grpo_advantages(rewards, _ids(5, 5, 5, 5, 8), valid=valid, eps=0.0)
    expected = torch.tensor([-2 / math.sqrt(2), -0.5 / math.sqrt(4.5), 2.5 / math.sqrt(0.5), 0, 0])
    torch.testing.assert_close(adv, expected)


def test_group_with_one_valid_member_gets_zero() -> None:
    valid = torch.tensor([True, False])
    adv = compute_grpo_advantages(torch.tensor([5.0, 1.0]), _ids(0, 0), valid=valid)
    assert adv.tolist() == [0.0, 0.0]


def test_group_ids_in_any_order_and_sign() -> None:
    # Group -3 holds rewards {1, 2, 4} (positions 0, 2, 4); group 10 holds {5, 7}:
    # leave-one-out, two members -> 5 - 7 = -2, 7 - 5 = 2.
    rewards = torch.tensor([1.0, 5.0, 2.0, 7.0, 4.0])
    adv = compute_grpo_advantages(rewards, _ids(-3, 10, -3, 10, -3), eps=0.0)
    expected = [-2 / math.sqrt(2), -2.0, -0.5 / math.sqrt(4.5), 2.0, 2.5 / math.sqrt(0.5)]
    torch.testing.assert_close(adv, torch.tensor(expected))


def test_identical_rewards_give_exactly_zero_even_when_not_representable() -> None:
    # 0.1 is not exact in binary; a float32 mean could differ from 0.1 by one ulp and eps would
    # blow that into ~1e-2. The advantage must stay at (numerically) 0.
    adv = compute_grpo_advantages(torch.full((4,), 0.1), _ids(0, 0, 0, 0))
    assert adv.abs().max().item() < 1e-9


def test_integer_rewards_give_float_advantages_and_float_dtype_is_kept() -> None:
    adv = compute_grpo_advantages(torch.tensor([0, 1]), _ids(0, 0))
    assert adv.dtype == torch.get_default_dtype()
    assert adv.tolist() == [-1.0, 1.0]
    adv64 = compute_grpo_advantages(torch.tensor([0.0, 1.0], dtype=torch.float64), _ids(0, 0))
    assert adv64.dtype == torch.float64


def test_empty_batch_gives_empty_advantages() -> None:
    assert compute_grpo_advantages(torch.zeros(0), torch.zeros(0, dtype=torch.long)).shape == (0,)


@pytest.mark.parametrize(
    ("rewards", "group_ids", "valid", "error", "message"),
    [
        (torch.zeros(2, 2), _ids(0, 0), None, ValueError, "rewards must be 1-D"),
        (torch.zeros(3), _ids(0, 0), None, ValueError, "group_ids has shape"),
        (torch.zeros(2), torch.tensor([0.0, 1.0]), None, TypeError, "group_ids must be integers"),
        (torch.zeros(2), _ids(0, 0), torch.tensor([True]), ValueError, "valid has shape"),
    ],
)
def test_bad_inputs_raise_one_clear_error(rewards, group_ids, valid, error, message) -> None:
    with pytest.raises(error, match=message):
        compute_grpo_advantages(rewards, group_ids, valid=valid)
