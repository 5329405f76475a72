"""Math answer checking with math-verify: `math_reward` and the `MathEnvironment` around it.

The response's final answer is its last `\\boxed{...}`, else its last number; it is compared with
the ground truth symbolically and numerically by math-verify (so `\\boxed{1/2}` matches `0.5` and
`\\frac{\\sqrt3}{2}` matches `\\sqrt{3}/2`).

Two kinds of failure are kept apart:
- a response with no parseable answer is a wrong answer: it scores 0.0, and `MathEnvironment`
  counts it (its `no_answer` component, logged as `reward/no_answer`);
- a ground truth that does not parse is a data error: `math_reward` raises `GroundTruthError`,
  which the reward machinery reports like any failing reward, naming the sample (the run stops,
  or with `on_reward_error: zero` the sample scores 0 and is counted in `reward_errors`).

math-verify bounds its work with `signal.alarm`, which only works in the main thread; in other
threads (`EnvironmentPool(mode="threads")`) the checks run without that timeout.

Example:
    >>> math_reward("What is 1/2?", "It is \\\\boxed{0.5}", answer="1/2")
    1.0
    >>> math_reward("What is 1/2?", "It is \\\\boxed{0.6}", answer="1/2")
    0.0
"""

from __future__ import annotations

import functools
import threading
from typing import Any

from nemo_rl.environments import RewardEnvironment

from nemo_rl_envs.answer_extraction import final_answer

# math-verify's own default; bounds pathological sympy work on adversarial responses.
VERIFY_TIMEOUT_S = 5


class GroundTruthError(ValueError):
    """A row's ground truth does not parse as math: a data error, not a wrong answer.

    Example:
        >>> try:
        ...     math_reward("1+1?", "2", answer="")
        ... except GroundTruthError as err:
        ...     print(err)
        ground truth '' does not parse as math
    """

    # Read by the reward-error report: the fix is in the data, not in the reward function.
    reward_error_hint = "fix or drop that row of the dataset"


def _timeout() -> int | None:
    # signal.alarm works only in the main thread; elsewhere math-verify must run without it
    return VERIFY_TIMEOUT_S if threading.current_thread() is threading.main_thread() else None


@functools.lru_cache(maxsize=4096)
def _parse_cached(text: str, timeout: int | None) -> tuple[Any, ...]:
    from math_verify import parse  # lazy: sympy-heavy, and only this module needs it

    try:
        parsed = parse(f"\\boxed{{{text}}}", parsing_timeout=timeout)
    except Exception:  # any parser failure means "no mathematical object here"
        return ()
    # math-verify falls back to the raw string when nothing parsed; that is not an answer.
    return tuple(parsed) if any(not isinstance(p, str) for p in parsed) else ()


def parse_math(text: str) -> list[Any]:
    """math-verify's parse of `text` (as if boxed); empty when it holds no mathematical object.

    Cached, so the `no_answer` component and `math_reward` parse a response once.

    Example:
        >>> bool(parse_math("\\\\frac{1}{2}")), bool(parse_math("\\\\frac{1"))
        (True, False)
    """
    return list(_parse_cached(text, _timeout()))


def _ground_truth_text(answer: Any) -> str:
    text = "" if answer is None else str(answer).strip()
    if "####" in text:  # GSM8K answers end with "#### <number>" after the worked solution
        text = text.rsplit("####", 1)[1].strip()
    return text.strip("$").strip()


def _verify(gold: list[Any], pred: list[Any]) -> bool:
    from math_verify import verify

    try:
        return bool(verify(gold, pred, timeout_seconds=_timeout()))
    except Exception:  # a comparison math-verify cannot make is not a match
        return False


def is_equivalent(prediction: str, ground_truth: str) -> bool:
    """Whether two answer strings denote the same mathematical object, per math-verify.

    Text that does not parse is equivalent to nothing.

    Example:
        >>> is_equivalent("\\\\frac{1}{2}", "0.5"), is_equivalent("3", "4")
        (True, False)
    """
    gold, pred = parse_math(ground_truth), parse_math(prediction)
    return bool(gold and pred) and _verify(gold, pred)


def parsed_answer(response: str | None) -> list[Any]:
    """The parsed final answer of a response (last boxed, else last number); empty if none.

    Example:
        >>> bool(parsed_answer("so it is 72")), bool(parsed_answer("I do not know"))
        (True, False)
    """
    prediction = final_answer(response or "")
    if prediction is None or not prediction.strip():
        return []
    return parse_math(prediction)


def math_reward(prompt: str, response: str, answer: Any, **_: Any) -> float:
    """1.0 if the response's final answer (last boxed, else last number) equals `answer`, else 0.0.

    `answer` is the dataset's ground truth (a string or number; GSM8K's "... #### 72" works). A
    response without a parseable answer scores 0.0; a ground truth that does not parse raises
    `GroundTruthError` (a data error).

    Example:
        >>> math_reward("", "so the total is 72 dollars", answer="#### 72")
        1.0
    """
    truth = _ground_truth_text(answer)
    gold = parse_math(truth)
    if not gold:
        raise GroundTruthError(f"ground truth {truth!r} does not parse as math")
    pred = parsed_answer(response)
    return 1.0 if pred and _verify(gold, pred) else 0.0


def no_answer(prompt: str, response: str, **_: Any) -> float:
    """1.0 when the response has no parseable final answer (a wrong answer, counted apart).

    Example:
        >>> no_answer("", "I give up"), no_answer("", "\\\\boxed{3}")
        (1.0, 0.0)
    """
    return 0.0 if parsed_answer(response) else 1.0


class MathEnvironment(RewardEnvironment):
    """Single-turn math: the reward is `math_reward`, read from the row's `answer`.

    A second component, `no_answer` (weight 0: it never changes the reward), is 1.0 for a
    response without a parseable final answer, so the log's `reward/no_answer` is the fraction
    of such responses.

    Example:
        >>> env = MathEnvironment()
        >>> convo = [{"role": "user", "content": "1+1?"}, {"role": "assistant", "content": "2"}]
        >>> step = env.step([convo], [{"answer": "2"}])
        >>> step.rewards["math_reward"].tolist(), step.rewards["no_answer"].tolist()
        ([1.0], [0.0])
    """

    def __init__(self, on_error: str = "raise") -> None:
        rewards = {"math_reward": math_reward, "no_answer": (no_answer, 0.0)}
        super().__init__(rewards, on_error=on_error)  # type: ignore[arg-type]
