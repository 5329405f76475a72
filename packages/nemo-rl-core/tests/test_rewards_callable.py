"""Callable rewards: calling forms, named weighted components, error reporting, as_environment."""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time

import pytest
import torch
from nemo_rl import registry
from nemo_rl.environments import (
    RewardEnvironment,
    RewardEnvStep,
    RewardFunctionError,
    as_environment,
    batched_reward,
    describe_reward_fn,
)


def convo(prompt: str, response: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]


PROMPTS = ["1+1?", "2+2?", "3+3?"]
RESPONSES = ["2", "5", "6"]
ROWS = [{"answer": "2", "level": 1}, {"answer": "4", "level": 2}, {"answer": "6", "level": 3}]
CONVOS = [convo(p, r) for p, r in zip(PROMPTS, RESPONSES, strict=True)]


def exact(prompt, response, answer):
    return float(response == answer)


# ---------------------------------------------------------------- calling forms
def test_per_sample_reward_gets_prompt_response_and_only_the_columns_it_names():
    seen = []

    def check(prompt, response, answer):  # no **kwargs: "level" must not be passed
        seen.append((prompt, response, answer))
        return float(response == answer)

    step = RewardEnvironment(check).step(CONVOS, ROWS)
    assert step.rewards["check"].tolist() == [1.0, 0.0, 1.0]
    assert seen[1] == ("2+2?", "5", "4")
    assert step.done == [True, True, True] and step.observations == [None, None, None]


def test_var_keyword_reward_gets_every_column_except_ones_colliding_with_prompt_response():
    seen = []

    def spy(prompt, response, **row):
        seen.append(row)
        return 0.0

    rows = [{"answer": "2", "prompt": "raw prompt", "response": "x", "completion": "y"}]
    RewardEnvironment(spy).step([convo("1+1?", "2")], rows)
    assert seen == [{"answer": "2"}]


def test_prompt_and_response_are_the_last_user_and_assistant_messages():
    seen = []
    conversation = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "guess 1"},
        {"role": "user", "content": "higher"},
        {"role": "assistant", "content": "guess 2"},
    ]
    RewardEnvironment(lambda p, r: seen.append((p, r)) or 1.0).step([conversation], [{}])
    assert seen == [("higher", "guess 2")]


def test_batched_by_decorator_attribute_and_plural_first_parameter():
    calls = []

    @batched_reward
    def declared(p, r, answer):
        calls.append(("declared", list(answer)))
        return [float(x == y) for x, y in zip(r, answer, strict=True)]

    def by_attribute(p, r, answer):
        calls.append(("by_attribute", len(r)))
        return torch.tensor([1.0] * len(r))  # tensors are accepted as the returned sequence

    by_attribute.batched = True

    def by_name(prompts, completions, level):
        calls.append(("by_name", list(level)))
        return [float(n) for n in level]

    env = RewardEnvironment([declared, by_attribute, by_name])
    step = env.step(CONVOS, ROWS)
    assert calls == [("declared", ["2", "4", "6"]), ("by_attribute", 3), ("by_name", [1, 2, 3])]
    assert step.rewards["declared"].tolist() == [1.0, 0.0, 1.0]
    assert step.rewards["by_name"].tolist() == [1.0, 2.0, 3.0]


def test_batched_false_overrides_name_based_detection():
    def prompts(prompts, responses):  # plural names, but the user says per-sample
        return float(len(responses))

    assert describe_reward_fn(prompts).batched
    env = RewardEnvironment(prompts, batched=False)
    assert env.step(CONVOS, ROWS).rewards["prompts"].tolist() == [1.0, 1.0, 1.0]


def test_async_per_sample_rewards_are_gathered_with_bounded_concurrency():
    in_flight, peak = 0, []

    async def judge(prompt, response, answer):
        nonlocal in_flight
        in_flight += 1
        peak.append(in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return float(response == answer)

    step = RewardEnvironment(judge, max_workers=2).step(CONVOS * 2, ROWS * 2)
    assert step.rewards["judge"].tolist() == [1.0, 0.0, 1.0] * 2
    assert max(peak) == 2  # gathered (more than 1 at once) yet bounded by max_workers


def test_async_batched_reward_and_a_caller_already_inside_an_event_loop():
    async def scores(prompts, responses):
        await asyncio.sleep(0)
        return [float(len(r)) for r in responses]

    env = RewardEnvironment(scores)

    async def notebook_cell():  # Jupyter runs user code inside a running loop
        return env.step(CONVOS, ROWS)

    assert asyncio.run(notebook_cell()).rewards["scores"].tolist() == [1.0, 1.0, 1.0]


def test_sync_rewards_run_one_at_a_time_unless_declared_concurrent():
    threads, running, overlap = [], [0], []

    def one_at_a_time(prompt, response):
        running[0] += 1
        overlap.append(running[0])
        threads.append(threading.current_thread())
        time.sleep(0.01)
        running[0] -= 1
        return 0.0

    RewardEnvironment(one_at_a_time).step(CONVOS, ROWS)
    assert overlap == [1, 1, 1]  # in order, never two at once (on a timed daemon thread)
    threads.clear()
    # Without a time limit the calls need no helper thread: they run in the caller's.
    RewardEnvironment(one_at_a_time, timeout_s=None).step(CONVOS, ROWS)
    assert set(threads) == {threading.current_thread()}

    barrier = threading.Barrier(3, timeout=5)  # passes only if all three calls overlap

    def slow_io(prompt, response):
        barrier.wait()
        return 1.0

    step = RewardEnvironment(slow_io, concurrent=True, max_workers=3).step(CONVOS, ROWS)
    assert step.rewards["slow_io"].tolist() == [1.0, 1.0, 1.0]


# ---------------------------------------------------------------- components and weights
def test_named_components_with_weights_from_tuples_dict_and_list():
    def short(prompt, response):
        return float(len(response) <= 1)

    env = RewardEnvironment({"acc": (exact, 2.0), "short": short}, weights={"short": 0.5})
    step = env.step(CONVOS, ROWS)
    assert isinstance(step, RewardEnvStep)
    assert set(step.rewards) == {"acc", "short"}
    assert step.total_reward().tolist() == [2.5, 0.5, 2.5]
    listed = RewardEnvironment([exact, short], weights=[1.0, -1.0]).step(CONVOS, ROWS)
    assert listed.total_reward().tolist() == [0.0, -1.0, 0.0]


def test_component_names_for_lambdas_and_callable_objects():
    class LengthPenalty:
        def __call__(self, prompt, response):
            return -float(len(response))

    env = RewardEnvironment([lambda p, r: 1.0, LengthPenalty()])
    assert [c.name for c in env.components] == ["reward", "LengthPenalty"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"reward_fn": [exact, exact]}, r"named \['exact'\].*pass a dict"),
        ({"reward_fn": exact, "weights": {"acc": 1.0}}, r"unknown reward\(s\) \['acc'\]"),
        ({"reward_fn": {"a": (exact, 1.0)}, "weights": {"a": 2.0}}, "weight both"),
        ({"reward_fn": [exact], "weights": [1.0, 2.0]}, "2 weights for 1 rewards"),
        ({"reward_fn": exact, "on_error": "skip"}, "use 'raise' or 'zero'"),
        ({"reward_fn": lambda response: 1.0}, r"1 positional parameter\(s\)"),
    ],
)
def test_bad_construction_arguments_name_the_problem(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        RewardEnvironment(**kwargs)


# ---------------------------------------------------------------- errors
def divide(prompt, response, answer):
    return 1.0 / (int(response) - 5)  # response "5" divides by zero


def test_raising_reward_names_function_sample_excerpts_cause_and_fix():
    with pytest.raises(RewardFunctionError) as info:
        RewardEnvironment(divide).step(CONVOS, ROWS)
    text = str(info.value)
    assert "'divide'" in text and "sample 1" in text and "'2+2?'" in text and "'5'" in text
    assert "ZeroDivisionError" in text and 'on_reward_error="zero"' in text
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    assert info.value.sample_index == 1 and "\n" not in text


def test_raise_mode_stops_calling_the_function_after_the_first_failure():
    calls = []

    def fails_on_first(prompt, response):
        calls.append(prompt)
        raise KeyError("boom")

    with pytest.raises(RewardFunctionError, match="sample 0"):
        RewardEnvironment(fails_on_first).step(CONVOS, ROWS)
    assert calls == ["1+1?"]


def test_zero_mode_scores_failures_zero_counts_them_and_logs_a_warning(caplog):
    def nan_on_last(prompt, response):
        return math.nan if prompt == "3+3?" else 1.0

    env = RewardEnvironment([divide, nan_on_last], on_error="zero")
    with caplog.at_level(logging.WARNING, logger="nemo_rl.environments.callable_reward"):
        step = env.step(CONVOS, ROWS)
    assert step.rewards["divide"].tolist() == pytest.approx([-1 / 3, 0.0, 1.0])
    assert step.rewards["nan_on_last"].tolist() == [1.0, 1.0, 0.0]
    assert step.metrics == {"reward_errors": 2.0}
    assert "ZeroDivisionError" in step.metadata[1]["reward_errors"][0]
    assert "on_reward_error" not in step.metadata[1]["reward_errors"][0]  # no advice to use zero
    assert "returned nan" in step.metadata[2]["reward_errors"][0]
    assert step.metadata[0] == {}
    assert "2 reward call(s) failed" in caplog.text


def test_nan_raises_in_raise_mode_naming_the_value():
    with pytest.raises(RewardFunctionError, match=r"'bad' returned inf for sample 0"):
        RewardEnvironment({"bad": lambda p, r: math.inf}).step(CONVOS[:1], ROWS[:1])


def test_non_number_return_always_raises_even_in_zero_mode():
    def text_score(prompt, response):
        return "1.0"

    with pytest.raises(RewardFunctionError, match=r"returned '1.0' \(str\).*float\(") as info:
        RewardEnvironment(text_score, on_error="zero").step(CONVOS, ROWS)
    assert not info.value.recoverable


def test_bools_and_one_element_tensors_are_numbers():
    env = RewardEnvironment({"b": lambda p, r: r == "2", "t": lambda p, r: torch.tensor([0.5])})
    step = env.step(CONVOS[:2], ROWS[:2])
    assert step.rewards["b"].tolist() == [1.0, 0.0] and step.rewards["t"].tolist() == [0.5, 0.5]


def test_batched_wrong_length_always_raises():
    @batched_reward
    def too_few(prompts, responses):
        return [1.0] * (len(responses) - 1)

    with pytest.raises(RewardFunctionError, match="'too_few' returned 2 values for 3 samples"):
        RewardEnvironment(too_few, on_error="zero").step(CONVOS, ROWS)


def test_raising_batched_reward_in_zero_mode_zeroes_the_batch():
    def broken(prompts, responses):
        raise RuntimeError("judge offline")

    step = RewardEnvironment(broken, on_error="zero").step(CONVOS, ROWS)
    assert step.rewards["broken"].tolist() == [0.0, 0.0, 0.0]
    assert step.metrics["reward_errors"] == 3.0
    assert "judge offline" in step.metadata[0]["reward_errors"][0]


def test_missing_dataset_column_names_column_and_what_the_row_has():
    with pytest.raises(RewardFunctionError, match=r"\['answer'\] but sample 0 has only \['q'\]"):
        RewardEnvironment(exact, on_error="zero").step(CONVOS[:1], [{"q": "?"}])


def test_bad_batches_are_explained():
    env = RewardEnvironment(exact)
    with pytest.raises(ValueError, match="no assistant message"):
        env.step([[{"role": "user", "content": "hi"}]], [{"answer": "x"}])
    with pytest.raises(ValueError, match="2 conversations but 1 metadata"):
        env.step(CONVOS[:2], ROWS[:1])
    with pytest.raises(TypeError, match=r"metadata\[0\] is a str"):
        env.step(CONVOS[:1], ["answer"])


# ---------------------------------------------------------------- as_environment
class EchoEnv:
    def step(self, messages, metadata):
        return RewardEnvStep({"echo": torch.ones(len(messages))}, [None], [True])


def test_as_environment_wraps_callables_and_passes_environments_through():
    env = as_environment([exact], on_error="zero")
    assert isinstance(env, RewardEnvironment) and env.on_error == "zero"
    assert isinstance(as_environment({"acc": exact}), RewardEnvironment)
    echo = EchoEnv()
    assert as_environment(echo) is echo
    assert isinstance(as_environment(EchoEnv), EchoEnv)


def test_as_environment_resolves_registered_names():
    registry.register("environments", "test_echo")(EchoEnv)
    try:
        assert isinstance(as_environment("test_echo"), EchoEnv)
    finally:
        registry.unregister("environments", "test_echo")


@pytest.mark.parametrize(("obj", "message"), [(None, "no reward given"), (3, "cannot use a int")])
def test_as_environment_rejects_non_rewards(obj, message):
    with pytest.raises(TypeError, match=message):
        as_environment(obj)
