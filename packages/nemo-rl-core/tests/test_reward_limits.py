"""Rewards that cannot hang or overflow a run: the per-call time limit, finiteness in the reward
dtype (float32), and ints too large for a float, each a `RewardFunctionError` naming the function
and the sample, so `on_error` decides."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from nemo_rl.algorithms.grpo import GRPOConfig
from nemo_rl.config import ConfigError, load_config
from nemo_rl.environments import RewardEnvironment, RewardFunctionError, as_environment
from nemo_rl.environments.call_deadline import CallTimedOut, call_with_timeout


def convo(prompt: str, response: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]


CONVOS = [convo("a?", "x"), convo("b?", "hang"), convo("c?", "z")]
ROWS = [{}, {}, {}]


@pytest.fixture
def release():
    """An event the hanging rewards wait on; set at the end so no thread outlives the test."""
    event = threading.Event()
    yield event
    event.set()


def _threads() -> int:
    return sum(t.name == "nemo-rl-call" for t in threading.enumerate())


# ---------------------------------------------------------------- the time limit
def test_a_reward_hanging_on_one_sample_is_an_error_naming_function_and_sample(release):
    def stuck(prompt, response):
        if response == "hang":
            release.wait()
        return 1.0

    started = time.perf_counter()
    with pytest.raises(RewardFunctionError) as info:
        RewardEnvironment(stuck, timeout_s=0.2).step(CONVOS, ROWS)
    assert time.perf_counter() - started < 2.0
    err = info.value
    assert (err.function_name, err.sample_index, err.recoverable) == ("stuck", 1, True)
    assert "reward function 'stuck' did not return within 0.2 s on sample 1 (prompt 'b?'" in str(err)
    assert "raise reward_timeout_s" in str(err) and 'on_reward_error="zero"' in str(err)


def test_in_zero_mode_the_hung_sample_scores_zero_and_the_others_score(release):
    def stuck(prompt, response):
        if response == "hang":
            release.wait()
        return 1.0

    step = RewardEnvironment(stuck, on_error="zero", timeout_s=0.2).step(CONVOS, ROWS)
    assert step.rewards["stuck"].tolist() == [1.0, 0.0, 1.0]
    assert step.metrics["reward_errors"] == 1.0
    assert "did not return within 0.2 s on sample 1" in step.metadata[1]["reward_errors"][0]


def test_a_reward_spinning_in_python_is_stopped_not_just_abandoned():
    def spin(prompt, response):
        while True:  # swallows ordinary exceptions, as careless reward code does
            try:
                sum(range(100))
            except Exception:
                pass

    before = _threads()
    step = RewardEnvironment(spin, on_error="zero", timeout_s=0.1).step(CONVOS[:1], ROWS[:1])
    assert step.rewards["spin"].tolist() == [0.0]
    deadline = time.monotonic() + 5.0
    while _threads() > before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _threads() <= before  # its thread ended: nothing keeps burning a core


def test_batched_and_async_rewards_get_the_limit_too(release):
    def batch_stuck(prompts, responses):
        release.wait()
        return [1.0] * len(prompts)

    step = RewardEnvironment(batch_stuck, on_error="zero", timeout_s=0.2).step(CONVOS, ROWS)
    assert step.rewards["batch_stuck"].tolist() == [0.0, 0.0, 0.0]
    assert "did not return within 0.2 s on a batch of 3 samples" in step.metadata[0]["reward_errors"][0]

    async def judge(prompt, response):
        await asyncio.sleep(30 if response == "hang" else 0)
        return 1.0

    started = time.perf_counter()
    step = RewardEnvironment(judge, on_error="zero", timeout_s=0.2).step(CONVOS, ROWS)
    assert time.perf_counter() - started < 2.0
    assert step.rewards["judge"].tolist() == [1.0, 0.0, 1.0]
    assert "'judge' did not return within 0.2 s on sample 1" in step.metadata[1]["reward_errors"][0]


def test_a_timeout_error_of_the_reward_itself_is_reported_as_raised():
    def own(prompt, response):
        raise TimeoutError("the judge server timed out")

    with pytest.raises(RewardFunctionError, match="'own' raised TimeoutError: the judge server"):
        RewardEnvironment(own, timeout_s=5.0).step(CONVOS[:1], ROWS[:1])


def test_call_with_timeout_reuses_its_threads_and_passes_results_and_errors():
    call_with_timeout(lambda: None, 5.0)
    before = _threads()
    assert [call_with_timeout(lambda i=i: i * i, 5.0) for i in range(50)] == [i * i for i in range(50)]
    assert _threads() == before  # one thread served all 50 calls
    with pytest.raises(KeyError):
        call_with_timeout(lambda: {}["missing"], 5.0)
    with pytest.raises(CallTimedOut, match="did not return within 0.05 s"):
        call_with_timeout(lambda: time.sleep(0.5), 0.05)
    with pytest.raises(ValueError, match="timeout_s=0"):
        call_with_timeout(lambda: 1, 0)


def test_the_limit_is_configurable_and_checked():
    env = RewardEnvironment(lambda prompt, response: 1.0)
    assert env.components[0].timeout_s == 60.0  # the default
    env.configure(timeout_s=None)
    assert env.components[0].timeout_s is None
    with pytest.raises(ValueError, match="timeout_s=-1"):
        env.configure(timeout_s=-1)
    assert GRPOConfig().reward_timeout_s == 60.0
    assert load_config({"algorithm": "grpo", "reward_timeout_s": None}).reward_timeout_s is None
    with pytest.raises(ConfigError, match="reward_timeout_s"):
        load_config({"algorithm": "grpo", "reward_timeout_s": 0})


class _Scored(RewardEnvironment):
    def __init__(self, on_error: str = "raise") -> None:
        super().__init__({"one": lambda prompt, response: 1.0}, on_error=on_error)  # type: ignore[arg-type]


def test_registered_style_environments_take_the_trainer_policy_unless_their_options_set_it():
    env = as_environment(_Scored, on_error="zero", timeout_s=3.0)
    assert (env.on_error, env.components[0].timeout_s) == ("zero", 3.0)
    own = as_environment(_Scored, environment_options={"on_error": "raise"}, on_error="zero", timeout_s=3.0)
    assert (own.on_error, own.components[0].timeout_s) == ("raise", 3.0)


# ---------------------------------------------------------------- values the trainer cannot hold
@pytest.mark.parametrize(
    ("value", "says"),
    [
        (1e39, "returned 1e+39 for sample 0 (prompt 'a?', response 'x'), which is not finite in float32"),
        (-1e39, "returned -1e+39 for sample 0"),
        (10**400, "returned an int of 1329 bits for sample 0 (prompt 'a?', response 'x'), which is too large for a float"),
        (float("inf"), "returned inf for sample 0"),
    ],
)
def test_values_not_finite_in_float32_are_reward_errors_naming_the_function(value, says):
    def big(prompt, response):
        return value

    with pytest.raises(RewardFunctionError) as info:
        RewardEnvironment(big).step(CONVOS[:1], ROWS[:1])
    assert info.value.function_name == "big" and info.value.recoverable
    assert says in str(info.value)
    step = RewardEnvironment(big, on_error="zero").step(CONVOS[:1], ROWS[:1])
    assert step.rewards["big"].tolist() == [0.0] and step.metrics["reward_errors"] == 1.0


def test_the_largest_float32_values_still_pass():
    step = RewardEnvironment({"huge": lambda p, r: 3.0e38}).step(CONVOS[:1], ROWS[:1])
    assert step.rewards["huge"].isfinite().all() and float(step.rewards["huge"][0]) > 2.9e38


def test_a_batched_reward_returning_an_overflowing_int_names_the_sample():
    def scores(prompts, responses):
        return [1.0, 10**400, 0.0]

    step = RewardEnvironment(scores, on_error="zero").step(CONVOS, ROWS)
    assert step.rewards["scores"].tolist() == [1.0, 0.0, 0.0]
    assert "'scores' returned an int of 1329 bits for sample 1" in step.metadata[1]["reward_errors"][0]
