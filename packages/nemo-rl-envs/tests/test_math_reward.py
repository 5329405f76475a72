"""math_reward, MathEnvironment and answer extraction on real responses (math-verify, no mocks)."""

from __future__ import annotations

import threading

import pytest
from nemo_rl.environments import EnvironmentPool, RewardFunctionError
from nemo_rl_envs import MathEnvironment, final_answer, last_boxed, last_number, math_reward


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
