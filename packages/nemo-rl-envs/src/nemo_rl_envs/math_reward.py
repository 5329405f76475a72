"""Math answer checking with math-verify: `math_reward` and the `MathEnvironment` around it.

The response's final answer is its last `\\boxed{...}`, else its last number; it is compared with
the ground truth symbolically and numerically by math-verify (so `\\boxed{1/2}` matches `0.5` and
`\\frac{\\sqrt3}{2}` matches `\\sqrt{3}/2`). Anything unparseable scores 0.0 rather than raising:
a malformed response is a wrong answer, not a crash.

math-verify bounds its work with `signal.alarm`, which only works in the main thread; in other
threads (`EnvironmentPool(mode="threads")`) the checks run without that timeout.

Example:
    >>> math_reward("What is 1/2?", "It is \\\\boxed{0.5}", answer="1/2")
    1.0
    >>> math_reward("What is 1/2?", "It is \\\\boxed{0.6}", answer="1/2")
    0.0
"""

from __future__ import annotations

import threading
from typing import Any

from nemo_rl.environments import RewardEnvironment

from nemo_rl_envs.answer_extraction import final_answer

# math-verify's own default; bounds pathological sympy work on adversarial responses.
VERIFY_TIMEOUT_S = 5


def _ground_truth_text(answer: Any) -> str:
    text = str(answer).strip()
    if "####" in text:  # GSM8K answers end with "#### <number>" after the worked solution
        text = text.rsplit("####", 1)[1].strip()
    return text.strip("$").strip()


def is_equivalent(prediction: str, ground_truth: str) -> bool:
    """Whether two answer strings denote the same mathematical object, per math-verify.

    Example:
        >>> is_equivalent("\\\\frac{1}{2}", "0.5"), is_equivalent("3", "4")
        (True, False)
    """
    from math_verify import parse, verify  # lazy: sympy-heavy, and only this module needs it

    # signal.alarm works only in the main thread; elsewhere math-verify must run without it
    timeout = VERIFY_TIMEOUT_S if threading.current_thread() is threading.main_thread() else None
    try:
        gold = parse(f"\\boxed{{{ground_truth}}}", parsing_timeout=timeout)
        pred = parse(f"\\boxed{{{prediction}}}", parsing_timeout=timeout)
        if not gold or not pred:
            return False
        return bool(verify(gold, pred, timeout_seconds=timeout))
    except Exception:  # any parser failure on model text is a wrong answer, not a crash
        return False


def math_reward(prompt: str, response: str, answer: Any, **_: Any) -> float:
    """1.0 if the response's final answer (last boxed, else last number) equals `answer`, else 0.0.

    `answer` is the dataset's ground truth (a string or number; GSM8K's "... #### 72" works).

    Example:
        >>> math_reward("", "so the total is 72 dollars", answer="#### 72")
        1.0
    """
    prediction = final_answer(response or "")
    if prediction is None or not prediction.strip():
        return 0.0
    return 1.0 if is_equivalent(prediction, _ground_truth_text(answer)) else 0.0


class MathEnvironment(RewardEnvironment):
    """Single-turn math: one reward component, `math_reward`, read from the row's `answer`.

    Example:
        >>> env = MathEnvironment()
        >>> convo = [{"role": "user", "content": "1+1?"}, {"role": "assistant", "content": "2"}]
        >>> env.step([convo], [{"answer": "2"}]).rewards["math_reward"].tolist()
        [1.0]
    """

    def __init__(self, on_error: str = "raise") -> None:
        super().__init__({"math_reward": math_reward}, on_error=on_error)  # type: ignore[arg-type]
