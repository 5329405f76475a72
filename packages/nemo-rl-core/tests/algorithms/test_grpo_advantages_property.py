"""compute_grpo_advantages against a brute-force per-sample reference over thousands of groups.

The reference is the definition read literally: for each sample, take the other valid members of
its group (or all of them without leave-one-out), their mean and Bessel-corrected std in exact
rational arithmetic, and divide only when that std is > 0. Exact arithmetic matters: a spread that
is zero must be zero, which is the case the vectorised code once got wrong (advantages of ~1e6
for one right answer in five).
"""

from __future__ import annotations

import itertools
import math
import random
from fractions import Fraction

import pytest
import torch
from nemo_rl.algorithms.grpo import compute_grpo_advantages

EPS = 1e-6


def reference_advantages(
    rewards: list[float], groups: list[int], valid: list[bool], leave_one_out: bool, normalize: bool
) -> list[float]:
    """Per-sample loop over the definition, in exact fractions (float only for the final sqrt)."""
    exact = [Fraction(x) for x in rewards]
    valid_members: dict[int, list[int]] = {}
    for j, (g, ok) in enumerate(zip(groups, valid, strict=True)):
        valid_members.setdefault(g, []).extend([j] if ok else [])
    stats: dict[tuple[int, ...], tuple[Fraction, Fraction]] = {}
    out = []
    for i, (g, ok) in enumerate(zip(groups, valid, strict=True)):
        members = valid_members[g]
        if not ok or len(members) < 2:
            out.append(0.0)
            continue
        peers = tuple(j for j in members if j != i) if leave_one_out else tuple(members)
        if peers not in stats:  # without leave-one-out every member has the same peers
            mean = sum(exact[j] for j in peers) / len(peers)
            spread = sum((exact[j] - mean) ** 2 for j in peers) / max(1, len(peers) - 1)
            stats[peers] = (mean, spread)
        mean, variance = stats[peers]
        advantage = exact[i] - mean
        if normalize and len(peers) >= 2:
            if variance > 0:
                out.append(float(advantage) / (math.sqrt(variance) + EPS))
                continue
        out.append(float(advantage))
    return out


def _random_rewards(rng: random.Random, size: int, kind: str) -> list[float]:
    if kind == "binary":
        return [float(rng.random() < rng.random()) for _ in range(size)]
    if kind == "few-valued":  # values that are not dyadic fractions round on every sum
        values = rng.choice([[0.0, 0.1, 0.3], [1 / 3, 2 / 3], [-1.0, 0.2, 0.7, 5.0], [0.1]])
        return [rng.choice(values) for _ in range(size)]
    if kind == "shifted-binary":  # a large offset: cancellation in sums of squares
        base = rng.choice([1e3, -7.3, 123.456])
        return [base + float(rng.random() < 0.3) for _ in range(size)]
    return [rng.gauss(0.0, rng.choice([1e-3, 1.0, 100.0])) for _ in range(size)]


def _random_batch(rng: random.Random) -> tuple[list[float], list[int], list[bool]]:
    """A batch of 1-8 groups of sizes 1..32 with shuffled, non-contiguous group ids."""
    rewards, groups, valid = [], [], []
    for _ in range(rng.randint(1, 8)):
        gid = rng.randint(-50, 1000)
        size = rng.randint(1, 32)
        kind = rng.choice(["binary", "few-valued", "shifted-binary", "continuous"])
        p_invalid = rng.choice([0.0, 0.0, 0.2, 0.6])
        rewards += _random_rewards(rng, size, kind)
        groups += [gid] * size
        valid += [rng.random() >= p_invalid for _ in range(size)]
    order = list(range(len(rewards)))
    rng.shuffle(order)
    return [rewards[i] for i in order], [groups[i] for i in order], [valid[i] for i in order]


@pytest.mark.parametrize(("leave_one_out", "normalize"), list(itertools.product([True, False], repeat=2)))
def test_matches_the_brute_force_reference_on_random_groups(leave_one_out: bool, normalize: bool) -> None:
    rng = random.Random(1234 + 2 * leave_one_out + normalize)
    checked = 0
    while checked < 3000:  # groups, over all four settings 12,000
        rewards, groups, valid = _random_batch(rng)
        checked += len(set(groups))
        got = compute_grpo_advantages(
            torch.tensor(rewards, dtype=torch.float64), torch.tensor(groups), torch.tensor(valid),
            leave_one_out=leave_one_out, normalize=normalize, eps=EPS,
        )
        want = torch.tensor(reference_advantages(rewards, groups, valid, leave_one_out, normalize),
                            dtype=torch.float64)
        case = f"rewards={rewards}\ngroups={groups}\nvalid={valid}"
        torch.testing.assert_close(got, want, rtol=1e-7, atol=1e-9, msg=lambda m, c=case: f"{m}\n{c}")


@pytest.mark.parametrize("size", range(2, 33))
def test_one_right_answer_in_a_binary_group_of_any_size(size: int) -> None:
    # The case that was ~994,000 for size 5: the right answer's peers all scored 0, so its
    # advantage is 1 - 0 = 1, not divided by their (zero) spread.
    rewards = torch.zeros(size)
    rewards[0] = 1.0
    adv = compute_grpo_advantages(rewards, torch.zeros(size, dtype=torch.long))
    assert adv[0].item() == 1.0
    assert adv.abs().max().item() <= math.sqrt(size) + 1e-4


def test_float32_rewards_agree_with_the_reference_in_float32() -> None:
    rng = random.Random(7)
    for _ in range(200):
        rewards, groups, valid = _random_batch(rng)
        rewards32 = torch.tensor(rewards, dtype=torch.float32)
        got = compute_grpo_advantages(rewards32, torch.tensor(groups), torch.tensor(valid))
        want = reference_advantages(rewards32.tolist(), groups, valid, True, True)
        assert got.dtype == torch.float32
        torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float32), rtol=1e-5, atol=1e-5)


def test_non_finite_reward_of_a_valid_sample_is_an_error_naming_it() -> None:
    rewards = torch.tensor([1.0, float("nan"), 0.0, float("inf")])
    with pytest.raises(ValueError, match=r"samples \[1\] are not finite"):
        compute_grpo_advantages(rewards, torch.zeros(4, dtype=torch.long),
                                valid=torch.tensor([True, True, True, False]))
