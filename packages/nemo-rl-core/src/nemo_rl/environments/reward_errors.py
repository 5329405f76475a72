"""The one error a reward callable can cause, and the check that turns its return into a float.

Policy (documented for users in `RewardEnvironment`):
- the function raised, or returned NaN/inf: *recoverable*; `on_error="zero"` scores the sample 0,
  counts it in the `reward_errors` metric and keeps training; `on_error="raise"` stops.
- the function returned something that is not a number, or a batched function returned the wrong
  number of values: a bug in the function, so always raised, whatever `on_error` says.

Example:
    >>> to_reward_value(True, "f", 0, "p", "r")
    1.0
    >>> try:
    ...     to_reward_value(float("nan"), "f", 2, "What is 1+1?", "2")
    ... except RewardFunctionError as err:
    ...     print(err.sample_index, err.recoverable)
    2 True
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import torch

ZERO_HINT = 'or set on_reward_error="zero" to score such samples 0 and keep training'


class RewardFunctionError(RuntimeError):
    """A reward callable failed on a sample (or a whole batch, `sample_index=None`).

    Attributes: `function_name`, `sample_index`, `value` (the bad return, if any),
    `recoverable` (whether `on_error="zero"` may replace the reward with 0) and `summary` (what
    happened, without the advice; what gets logged when the error is tolerated).
    """

    def __init__(
        self,
        message: str,
        function_name: str,
        sample_index: int | None,
        recoverable: bool,
        value: Any = None,
        summary: str | None = None,
    ) -> None:
        super().__init__(message)
        self.summary = summary or message
        self.function_name = function_name
        self.sample_index = sample_index
        self.recoverable = recoverable
        self.value = value


def excerpt(text: Any, limit: int = 60) -> str:
    """A short, quoted, single-line preview of a prompt or response for error messages."""
    text = text if isinstance(text, str) else repr(text)
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= limit else flat[: limit - 3] + "...")


def _where(sample_index: int, prompt: Any, response: Any) -> str:
    return f"sample {sample_index} (prompt {excerpt(prompt)}, response {excerpt(response)})"


def raised_error(
    name: str, sample_index: int, prompt: Any, response: Any, cause: BaseException
) -> RewardFunctionError:
    """The error for a per-sample reward call that raised `cause` (chained as `__cause__`).

    The advice is "fix the function" unless the exception class says where the fix is (its
    `reward_error_hint`, e.g. "fix or drop that row of the dataset" for a bad ground truth).

    Example:
        >>> str(raised_error("acc", 3, "1+1?", "2", ValueError("boom")))[:62]
        "reward function 'acc' raised ValueError: boom on sample 3 (pro"
    """
    summary = (
        f"reward function {name!r} raised {type(cause).__name__}: {cause} on "
        f"{_where(sample_index, prompt, response)}"
    )
    fix = getattr(cause, "reward_error_hint", None) or "fix the function"
    err = RewardFunctionError(
        f"{summary}; {fix}, {ZERO_HINT}", name, sample_index, True, summary=summary
    )
    err.__cause__ = cause
    return err


def batch_raised_error(
    name: str, batch_size: int, first_prompt: Any, cause: BaseException
) -> RewardFunctionError:
    """The error for a batched reward call that raised: no single sample can be blamed."""
    summary = (
        f"batched reward function {name!r} raised {type(cause).__name__}: {cause} on a batch of "
        f"{batch_size} samples (first prompt {excerpt(first_prompt)})"
    )
    err = RewardFunctionError(
        f"{summary}; fix the function, {ZERO_HINT}", name, None, True, summary=summary
    )
    err.__cause__ = cause
    return err


def wrong_length_error(
    name: str, got: int | None, expected: int, value: Any
) -> RewardFunctionError:
    """A batched reward returned a non-sequence or the wrong number of values (always raised)."""
    what = f"{got} values" if got is not None else f"a {type(value).__name__}"
    return RewardFunctionError(
        f"batched reward function {name!r} returned {what} for {expected} samples; return a "
        "list with one float per sample, in the order of the prompts",
        name,
        None,
        recoverable=False,
        value=value,
    )


def to_reward_value(value: Any, name: str, sample_index: int, prompt: Any, response: Any) -> float:
    """`value` as a finite float, or a `RewardFunctionError` naming the function, sample and value.

    Accepts Python and numpy real numbers, bools and one-element tensors.
    """
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if not isinstance(value, numbers.Real):
        hint = " (it is text: convert it with float(...))" if isinstance(value, str) else ""
        raise RewardFunctionError(
            f"reward function {name!r} returned {value!r} ({type(value).__name__}) for "
            f"{_where(sample_index, prompt, response)}, which is not a number{hint}; return a "
            "float such as 1.0 for correct and 0.0 otherwise",
            name,
            sample_index,
            recoverable=False,
            value=value,
        )
    result = float(value)
    if not math.isfinite(result):
        summary = f"reward function {name!r} returned {result} for {_where(sample_index, prompt, response)}"
        raise RewardFunctionError(
            f"{summary}; return a finite float (guard divisions and map failures to 0.0), "
            f"{ZERO_HINT}",
            name,
            sample_index,
            recoverable=True,
            value=value,
            summary=summary,
        )
    return result
