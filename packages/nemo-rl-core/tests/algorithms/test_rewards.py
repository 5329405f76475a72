"""Reward post-processing (scaling, DAPO overlong penalty, group filters) on hand-computed values."""

from __future__ import annotations

import pytest
import torch
from nemo_rl.algorithms.grpo import (
    RewardScalingConfig,
    dynamic_sampling_keep_mask,
    group_pass_rate,
    overlong_penalty,
    scale_rewards,
)


def test_scale_rewards_maps_linearly_and_clips_to_the_target() -> None:
    # [0, 10] -> [-1, 1]: slope 2/10 = 0.2; 2.5 -> -1 + 0.5 = -0.5; -5 -> -2 clipped to -1;
    # 12 -> 1.4 clipped to 1.
    cfg = RewardScalingConfig(
        enabled=True, source_min=0, source_max=10, target_min=-1, target_max=1
    )
    scaled = scale_rewards(torch.tensor([0.0, 2.5, 10.0, -5.0, 12.0]), cfg)
    torch.testing.assert_close(scaled, torch.tensor([-1.0, -0.5, 1.0, -1.0, 1.0]))


def test_scale_rewards_can_invert_the_range() -> None:
    # [0, 1] -> [1, 0]: r -> 1 - r; 2 -> -1 clipped to 0.
    cfg = RewardScalingConfig(enabled=True, target_min=1.0, target_max=0.0)
    scaled = scale_rewards(torch.tensor([0.0, 0.25, 1.0, 2.0]), cfg)
    torch.testing.assert_close(scaled, torch.tensor([1.0, 0.75, 0.0, 0.0]))


def test_scale_rewards_disabled_returns_rewards_unchanged() -> None:
    rewards = torch.tensor([3.0, -7.0])
    assert scale_rewards(rewards, RewardScalingConfig(enabled=False)).tolist() == [3.0, -7.0]


def test_scale_rewards_with_an_empty_source_range_says_which_fields() -> None:
    # The config refuses it at load time; the function still guards configs built unvalidated.
    with pytest.raises(ValueError, match="source_min and reward_scaling.source_max"):
        RewardScalingConfig(enabled=True, source_min=1.0, source_max=1.0)
    cfg = RewardScalingConfig.model_construct(enabled=True, source_min=1.0, source_max=1.0,
                                              target_min=0.0, target_max=1.0)
    with pytest.raises(ValueError, match="source_min and reward_scaling.source_max"):
        scale_rewards(torch.tensor([1.0]), cfg)


def test_overlong_penalty_follows_dapo() -> None:
    # max 20, buffer 8 -> no penalty up to 12; then -(L - 12) / 8 * 2, capped at -2.
    # 5 -> 0; 12 -> 0; 13 -> -1/8*2 = -0.25; 16 -> -4/8*2 = -1; 20 -> -8/8*2 = -2; 25 -> -2 (cap)
    lengths = torch.tensor([5, 12, 13, 16, 20, 25])
    penalty = overlong_penalty(lengths, max_response_length=20, buffer_length=8, penalty=2.0)
    assert penalty.tolist() == [0.0, 0.0, -0.25, -1.0, -2.0, -2.0]


@pytest.mark.parametrize(
    ("max_len", "buffer", "penalty", "message"),
    [
        (20, 0, 1.0, "buffer_length must be positive"),
        (20, 21, 1.0, "exceeds max_response_length"),
        (20, 8, -1.0, "penalty must be >= 0"),
    ],
)
def test_overlong_penalty_rejects_bad_settings(max_len, buffer, penalty, message) -> None:
    with pytest.raises(ValueError, match=message):
        overlong_penalty(torch.tensor([1]), max_len, buffer, penalty)


def test_dynamic_sampling_keeps_groups_whose_rewards_differ() -> None:
    # group 3: {1, 1} equal -> drop; group 1: {0, 1} -> keep; group 9: single member -> drop.
    rewards = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.5])
    keep = dynamic_sampling_keep_mask(rewards, torch.tensor([3, 1, 3, 1, 9]))
    assert keep.tolist() == [False, True, False, True, False]
    assert keep.dtype == torch.bool


def test_group_pass_rate_counts_groups_with_one_sample_at_threshold() -> None:
    # group 0 max 1.0 >= 0.6 pass; group 1 max 0.0 fail; group 2 max 0.7 pass -> 2/3
    rewards = torch.tensor([0.0, 1.0, 0.0, 0.0, 0.5, 0.7])
    rate = group_pass_rate(rewards, torch.tensor([0, 0, 1, 1, 2, 2]), threshold=0.6)
    assert rate == pytest.approx(2 / 3)


def test_group_helpers_reject_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="same length"):
        dynamic_sampling_keep_mask(torch.zeros(3), torch.zeros(2, dtype=torch.long))
    with pytest.raises(TypeError, match="group_ids must be integers"):
        group_pass_rate(torch.zeros(2), torch.zeros(2), 1.0)
