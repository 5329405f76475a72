"""Math answer checking with math-verify: `math_reward` and the `MathEnvironment` around it.

The response's final answer is its last `\\boxed{...}`, else its last inline math (`$...$`)
unless a number follows it, else its last number; it is compared with the ground truth
symbolically and numerically by math-verify (so `\\boxed{1/2}` matches `0.5` and
`\\frac{\\sqrt3}{2}` matches `\\sqrt{3}/2`). Where this reward departs from math-verify's own
`verify(parse(gold), parse(response))`, on purpose (each case is in tests/test_math_table.py):
- several boxes: the last one is graded (a revised answer replaces a tentative one), and only
  when it fails are all boxes taken together, so `\\boxed{2}` and `\\boxed{3}` match `2, 3`
  (math-verify always takes them together, so a revision scores 0);
- a percent sign on either side may be dropped: `12.5\\%` matches `12.5` as `50\\%` matches `50`
  (math-verify accepts the latter only, for whole numbers);
- `1\\,000` (LaTeX's thin-space thousands grouping) is 1000 (math-verify reads `1 * 000`).

Two kinds of failure are kept apart:
- a response with no parseable answer is a wrong answer: it scores 0.0, and `MathEnvironment`
  counts it (its `no_answer` component, logged as `reward/no_answer`);
- a ground truth that does not parse is a data error: `math_reward` raises `GroundTruthError`,
  which the reward machinery reports like any failing reward, naming the sample (the run stops,
  or with `on_reward_error: zero` the sample scores 0 and is counted in `reward_errors`).

math-verify bounds its work with `signal.alarm`, which only works in the main thread; in other
threads (`EnvironmentPool(mode="threads")`, or the worker threads that enforce the trainer's
`reward_timeout_s`) the checks run without it, and that per-call limit bounds them instead.

Example:
    >>> math_reward("What is 1/2?", "It is \\\\boxed{0.5}", answer="1/2")
    1.0
    >>> math_reward("What is 1/2?", "It is \\\\boxed{0.6}", answer="1/2")
    0.0
"""

from __future__ import annotations

import functools
import re
import threading
from typing import Any

from nemo_rl.environments import RewardEnvironment

from nemo_rl_envs.answer_extraction import all_boxed, final_answer

# math-verify's own default; bounds pathological sympy work on adversarial responses.
VERIFY_TIMEOUT_S = 5
_THIN_SPACE_GROUP = re.compile(r"(?<=\d)\\,(?=\d{3}(?!\d))")  # 1\,000 -> 1000
_PERCENT = re.compile(r"\\?%")


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

    text = _THIN_SPACE_GROUP.sub("", text)
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
    gold = parse_math(ground_truth)
    return bool(gold) and _matches(ground_truth, gold, prediction)


def _matches(truth: str, gold: list[Any], prediction: str) -> bool:
    """`prediction` against the parsed ground truth, then, when either holds a percent sign,
    both without it (a percentage is the same answer with or without its sign)."""
    pred = parse_math(prediction)
    if pred and _verify(gold, pred):
        return True
    if not (_PERCENT.search(prediction) or _PERCENT.search(truth)):
        return False
    bare_gold, bare_pred = parse_math(_PERCENT.sub("", truth)), parse_math(_PERCENT.sub("", prediction))
    return bool(bare_gold and bare_pred) and _verify(bare_gold, bare_pred)


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
    prediction = final_answer(response or "")
    if prediction is None or not prediction.strip():
        return 0.0
    if _matches(truth, gold, prediction):
        return 1.0
    boxes = all_boxed(response or "")  # a multi-part answer boxed part by part
    return 1.0 if len(boxes) > 1 and _matches(truth, gold, ", ".join(boxes)) else 0.0


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
