"""math_reward, MathEnvironment and answer extraction on real responses (math-verify, no mocks)."""

from __future__ import annotations

import threading

import pytest
from nemo_rl.environments import EnvironmentPool, RewardFunctionError
from nemo_rl_envs import (
    GroundTruthError,
    MathEnvironment,
    final_answer,
    last_boxed,
    last_number,
    math_reward,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r"first \boxed{2} then \boxed{\frac{1}{2}}", r"\frac{1}{2}"),
        (r"nested \boxed{\sqrt{\frac{a}{b}}} done", r"\sqrt{\frac{a}{b}}"),
        (r"\boxed{3} and a truncated \boxed{\frac{1", "3"),  # cut-off box: use the complete one
        (r"\fbox{7}", "7"),
        ("no box", None),
    ],
)
def test_last_boxed_balances_braces(text, expected):
    assert last_boxed(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I paid 1,250 dollars, then 3.75 more", "3.75"),
        ("the ratio is 3 / 4.", "3/4"),
        ("it is -12", "-12"),
        ("no digits", None),
    ],
)
def test_last_number(text, expected):
    assert last_number(text) == expected


def test_final_answer_prefers_the_box_over_later_numbers():
    assert final_answer(r"\boxed{12} (checked with 3 methods)") == "12"
    assert final_answer("so 5 + 7 = 12") == "12"


@pytest.mark.parametrize(
    ("response", "answer", "reward"),
    [
        (r"The answer is \boxed{1/2}", "0.5", 1.0),
        (r"\boxed{0.5}", r"\frac{1}{2}", 1.0),
        (r"\boxed{\sqrt{3}/2}", r"$\frac{\sqrt{3}}{2}$", 1.0),
        (r"\boxed{x + 1}", "1 + x", 1.0),
        ("Adding them gives 1,000 in total", "1000", 1.0),
        ("Natalia sold 48 + 24 = 72 clips", "She sold 48/2 = 24 in May.\n#### 72", 1.0),
        ("Natalia sold 48 + 24 = 72 clips", 72, 1.0),  # numeric ground truth
        (r"\boxed{0.6}", "1/2", 0.0),
        (r"I think 7. \boxed{8}", "7", 0.0),  # the boxed answer is the one graded
    ],
)
def test_math_reward_checks_equivalence(response, answer, reward):
    assert math_reward("problem", response, answer) == reward


@pytest.mark.parametrize(
    "response", ["", "I don't know", r"\boxed{}", r"\boxed{\frac{{{}", r"\boxed{)(*&^}"]
)
def test_unparseable_responses_score_zero_without_raising(response):
    assert math_reward("problem", response, "3") == 0.0


def test_math_reward_works_off_the_main_thread():
    # math-verify's signal-based timeout raises in threads; math_reward must not lose answers there
    results = []
    worker = threading.Thread(target=lambda: results.append(math_reward("", r"\boxed{1/2}", "0.5")))
    worker.start()
    worker.join()
    assert results == [1.0]


def test_math_environment_scores_a_batch_and_ignores_extra_columns():
    convos = [
        [
            {"role": "user", "content": "1/4 + 1/4?"},
            {"role": "assistant", "content": r"\boxed{0.5}"},
        ],
        [{"role": "user", "content": "2*3?"}, {"role": "assistant", "content": "It is 5"}],
    ]
    rows = [{"answer": "1/2", "source": "toy"}, {"answer": "6", "source": "toy"}]
    step = EnvironmentPool(MathEnvironment(), mode="threads", max_workers=2).step(convos, rows)
    assert step.rewards["math_reward"].tolist() == [1.0, 0.0]
    assert step.done == [True, True]


def test_math_environment_without_answer_column_explains():
    convo = [{"role": "user", "content": "?"}, {"role": "assistant", "content": "1"}]
    with pytest.raises(RewardFunctionError, match=r"needs the dataset column\(s\) \['answer'\]"):
        MathEnvironment().step([convo], [{"solution": "1"}])


# ------------------------------------------------- wrong answers versus data errors
@pytest.mark.parametrize("answer", ["", None, r"\frac{1", "$$", "#### "])
def test_a_ground_truth_that_does_not_parse_is_a_data_error(answer):
    with pytest.raises(GroundTruthError, match="does not parse as math"):
        math_reward("problem", r"\boxed{3}", answer)


def test_a_bad_ground_truth_is_reported_with_its_sample_and_the_data_fix():
    convos = [
        [{"role": "user", "content": "2*3?"}, {"role": "assistant", "content": r"\boxed{6}"}],
        [{"role": "user", "content": "half of 1?"}, {"role": "assistant", "content": "0.5"}],
    ]
    rows = [{"answer": "6"}, {"answer": r"\frac{1"}]
    with pytest.raises(RewardFunctionError) as info:
        MathEnvironment().step(convos, rows)
    err = info.value
    assert err.sample_index == 1 and err.recoverable
    assert isinstance(err.__cause__, GroundTruthError)
    message = str(err)
    assert "ground truth '\\\\frac{1' does not parse as math" in message
    assert "'half of 1?'" in message and "fix or drop that row of the dataset" in message
    assert "fix the function" not in message


def test_with_on_error_zero_a_bad_ground_truth_scores_zero_and_is_counted():
    convo = [{"role": "user", "content": "?"}, {"role": "assistant", "content": r"\boxed{1}"}]
    step = MathEnvironment(on_error="zero").step([convo, convo], [{"answer": ""}, {"answer": "1"}])
    assert step.rewards["math_reward"].tolist() == [0.0, 1.0]
    assert step.metrics["reward_errors"] == 1.0
    assert "does not parse" in step.metadata[0]["reward_errors"][0]


def test_responses_without_a_parseable_answer_score_zero_and_are_counted_apart():
    def convo(text):
        return [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": text}]

    responses = [r"\boxed{4}", r"\boxed{5}", "I do not know", r"\boxed{)(*&^}"]
    step = MathEnvironment().step([convo(r) for r in responses], [{"answer": "4"}] * 4)
    assert step.rewards["math_reward"].tolist() == [1.0, 0.0, 0.0, 0.0]
    assert step.rewards["no_answer"].tolist() == [0.0, 0.0, 1.0, 1.0]
    assert step.total_reward().tolist() == [1.0, 0.0, 0.0, 0.0]  # no_answer weighs 0
    assert "reward_errors" not in step.metadata[2]  # a wrong answer, not an error
