"""The weighted sum of a sample's rewards is checked like one reward: finite components whose
weighted sum is not finite in float32 (overflow, inf - inf) are a `RewardFunctionError` naming the
sample, the values and the weights, and `on_error` decides; weights are checked when built."""

from __future__ import annotations

import logging
import math

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from nemo_rl.environments import RewardEnvironment, RewardFunctionError
from nemo_rl.environments.callable_reward import check_reward
from nemo_rl.environments.env_step import RewardEnvStep
from nemo_rl.environments.reward_sum import checked_reward_sums, weighted_reward_sum

FLOAT32_MAX = torch.finfo(torch.float32).max


def convo(prompt: str, response: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]


PROMPT_1 = "b? " + "long prompt " * 20
CONVOS = [convo("a?", "x"), convo(PROMPT_1, "y"), convo("c?", "z")]
ROWS = [{}, {}, {}]


def one(value_on_sample_1: float, elsewhere: float = 1.0):
    """A per-sample reward returning `value_on_sample_1` for the second conversation."""

    def reward(prompt, response):
        return value_on_sample_1 if response == "y" else elsewhere

    return reward


# ---------------------------------------------------------------- hand-computed cases
def test_finite_rewards_whose_weighted_sum_overflows_float32_name_sample_values_and_weights():
    env = RewardEnvironment({"big": (one(1e30, 0.0), 1e10), "small": one(0.5)})
    with pytest.raises(RewardFunctionError) as info:
        env.step(CONVOS, ROWS)
    err = info.value
    assert (err.function_name, err.sample_index, err.recoverable) == ("weighted sum", 1, True)
    assert err.value == pytest.approx(1e40, rel=1e-6)  # 1e30 (as float32) * 1e10 + 0.5
    message = str(err)
    assert "the weighted reward sum of sample 1 (prompt 'b? long prompt long prompt" in message
    assert "...', response 'y') is 1e+40 = big 1e+30 * weight 1e+10 + small 0.5 * weight 1" in message
    assert "which is not finite in float32 (largest 3.403e+38)" in message
    assert "scale the weights or the rewards down" in message and 'on_reward_error="zero"' in message


def test_terms_that_overflow_with_opposite_signs_give_nan_and_are_named_inf_minus_inf():
    up, down = one(3e38, 0.0), one(3e38, 0.0)
    env = RewardEnvironment({"up": (up, 1e300), "down": (down, -1e300)})
    with pytest.raises(RewardFunctionError) as info:
        env.step(CONVOS, ROWS)
    assert info.value.sample_index == 1 and math.isnan(info.value.value)
    assert "is nan = up 3e+38 * weight 1e+300 + down 3e+38 * weight -1e+300" in str(info.value)
    assert "which is not a number (inf - inf)" in str(info.value)


def test_in_zero_mode_the_overflowing_sample_scores_zero_everywhere_and_is_counted(caplog):
    env = RewardEnvironment({"big": (one(1e30, 0.0), 1e10), "small": one(0.5)}, on_error="zero")
    with caplog.at_level(logging.WARNING, logger="nemo_rl.environments"):
        step = env.step(CONVOS, ROWS)
    assert step.rewards["big"].tolist() == [0.0, 0.0, 0.0]
    assert step.rewards["small"].tolist() == [1.0, 0.0, 1.0]  # sample 1 zeroed in every component
    assert step.total_reward().tolist() == [1.0, 0.0, 1.0]
    assert step.metrics["reward_errors"] == 1.0
    assert step.metadata[0] == {} and step.metadata[2] == {}
    assert "the weighted reward sum of sample 1" in step.metadata[1]["reward_errors"][0]
    assert "1 weighted reward sum(s) not finite in a batch of 3 scored 0" in caplog.text


def test_fine_values_are_unchanged_exactly():
    env = RewardEnvironment({"acc": (one(0.25, 1.0), 4.0), "short": (one(-1.5, 3.0), -2.0)})
    step = env.step(CONVOS, ROWS)
    assert step.rewards["acc"].tolist() == [1.0, 0.25, 1.0]
    assert step.rewards["short"].tolist() == [3.0, -1.5, 3.0]
    # 1*4 - 3*2 = -2; 0.25*4 + 1.5*2 = 4
    assert step.total_reward().tolist() == [-2.0, 4.0, -2.0]
    assert step.total_reward().dtype == torch.float32 and step.metrics["reward_errors"] == 0.0


def test_a_partial_sum_past_float32_whose_total_fits_is_not_an_error():
    # In float32, 3e38 + 3e38 is already inf; in float64 the total 3e38 is fine.
    env = RewardEnvironment({"a": one(3e38), "b": one(3e38), "c": (one(3e38), -1.0)})
    total = env.step(CONVOS, ROWS).total_reward()
    assert total[1].item() == torch.tensor(3e38, dtype=torch.float32).item()


def test_the_largest_float32_sum_passes_and_one_past_it_does_not():
    rewards = {"a": torch.tensor([FLOAT32_MAX, FLOAT32_MAX], dtype=torch.float32)}
    assert checked_reward_sums(rewards, {"a": 1.0}, ["p", "q"], ["r", "s"]) == [FLOAT32_MAX] * 2
    past = checked_reward_sums(rewards, {"a": 1.0 + 2**-52}, ["p", "q"], ["r", "s"])
    assert [err.sample_index for err in past] == [0, 1]  # errors, one per sample


# ---------------------------------------------------------------- against brute force
def _brute_force(values: list[list[float]], weights: list[float], sample: int) -> float:
    total = 0.0
    for column, weight in zip(values, weights, strict=True):
        total += weight * column[sample]  # Python floats: float64, in component order
    return total


def _float32(x: float) -> float:
    return torch.tensor(x, dtype=torch.float32).item()


finite32 = st.floats(width=32, allow_nan=False, allow_infinity=False)
rewards32 = st.one_of(st.floats(-10, 10, width=32), finite32)
weights64 = st.one_of(st.floats(-10, 10), st.floats(allow_nan=False, allow_infinity=False))


@settings(max_examples=300, deadline=None)
@given(
    st.integers(1, 4).flatmap(
        lambda k: st.tuples(
            st.lists(st.lists(rewards32, min_size=3, max_size=3), min_size=k, max_size=k),
            st.lists(weights64, min_size=k, max_size=k),
        )
    )
)
@example(([[1e30, 1.0, 0.0]], [1e10]))  # overflow to inf
@example(([[3e38, 0.0, 0.0], [3e38, 0.0, 0.0]], [1e300, -1e300]))  # inf - inf
@example(([[0.1, 0.2, 0.3], [0.7, -0.5, 2.0]], [0.3, 1.7]))  # fine values
def test_each_sum_equals_the_float64_brute_force_sum_when_it_fits_in_float32_else_errs(case):
    values, weights = case
    values = [[_float32(v) for v in column] for column in values]
    names = [f"r{k}" for k in range(len(values))]
    tensors = {n: torch.tensor(column, dtype=torch.float32) for n, column in zip(names, values, strict=True)}
    by_name = dict(zip(names, weights, strict=True))
    checked = checked_reward_sums(tensors, by_name, ["p0", "p1", "p2"], ["r0", "r1", "r2"])
    totals = RewardEnvStep(tensors, [None] * 3, [True] * 3, [], by_name).total_reward()
    bad = []
    for i in range(3):
        expected = _brute_force(values, weights, i)
        assert weighted_reward_sum(tensors, by_name)[i].item() == expected or math.isnan(expected)
        if math.isfinite(expected) and abs(expected) <= FLOAT32_MAX:
            assert checked[i] == expected
            assert totals[i].item() == _float32(expected)
        else:
            assert isinstance(checked[i], RewardFunctionError) and checked[i].sample_index == i
            bad.append(i)

    # Through the environment: "raise" raises for the first bad sample, "zero" zeroes the bad ones.
    def column(k: int):
        return lambda prompts, responses: values[k]

    specs = {n: (column(k), w) for k, (n, w) in enumerate(zip(names, weights, strict=True))}
    convos = [convo(f"p{i}", f"r{i}") for i in range(3)]
    if bad:
        with pytest.raises(RewardFunctionError) as info:
            RewardEnvironment(specs, batched=True, timeout_s=None).step(convos, ROWS)
        assert info.value.sample_index == bad[0] and info.value.function_name == "weighted sum"
    step = RewardEnvironment(specs, batched=True, timeout_s=None, on_error="zero").step(convos, ROWS)
    assert step.metrics["reward_errors"] == float(len(bad))
    for i in range(3):
        want = 0.0 if i in bad else _float32(_brute_force(values, weights, i))
        assert step.total_reward()[i].item() == want


# ---------------------------------------------------------------- weights, checked when built
def exact(prompt, response):
    return float(response == "x")


def short(prompt, response):
    return float(len(response) <= 1)


@pytest.mark.parametrize(
    ("reward_fn", "weights", "error", "says"),
    [
        ({"exact": (exact, float("inf"))}, None, ValueError, "reward_fn['exact'][1] is inf; a reward weight must be a finite number"),
        ([exact, short], {"short": float("nan")}, ValueError, "weights['short'] is nan"),
        ([exact, short], [1.0, -float("inf")], ValueError, "weights[1] (reward 'short') is -inf"),
        ([exact, short], {"exact": 10**400}, ValueError, "weights['exact'] is an int of 1329 bits"),
        ([exact, short], [1.0, "0.5"], TypeError, "weights[1] (reward 'short') is '0.5' (str), not a number"),
        ({"exact": (exact, None)}, None, TypeError, "reward_fn['exact'][1] is None (NoneType), not a number"),
        ([exact, short], {"exact": True}, TypeError, "weights['exact'] is True (bool), not a number"),
        ([exact, short], 2.0, TypeError, "weights is a float; pass a dict {name: weight} or a list"),
    ],
)
def test_weights_that_are_not_finite_numbers_are_refused_naming_the_field(reward_fn, weights, error, says):
    with pytest.raises(error) as info:
        check_reward(reward_fn, weights=weights)  # what GRPOTrainer.fit runs before any model loads
    assert says in str(info.value)


def test_numpy_and_int_weights_are_numbers():
    np = pytest.importorskip("numpy")
    env = RewardEnvironment([exact, short], weights={"exact": np.float32(0.5), "short": 2})
    assert env.weights == {"exact": 0.5, "short": 2.0}
