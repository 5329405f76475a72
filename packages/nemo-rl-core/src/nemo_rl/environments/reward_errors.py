"""The one error a reward callable can cause, and the check that turns its return into a float.

Policy (documented for users in `RewardEnvironment`):
- the function raised, ran past its time limit, or returned a number that is not finite as a
  `REWARD_DTYPE` (float32: NaN, inf, 1e39, an int too large for a float): *recoverable*;
  `on_error="zero"` scores the sample 0, counts it in the `reward_errors` metric and keeps
  training; `on_error="raise"` stops.
- finite rewards whose weighted sum is not finite in float32 (`weighted_sum_error`, checked in
  `nemo_rl.environments.reward_sum`): the same recoverable error, for the sample.
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
from collections.abc import Sequence
from typing import Any

import torch

ZERO_HINT = 'or set on_reward_error="zero" to score such samples 0 and keep training'
# Rewards become tensors of this dtype (and the trainer computes advantages from them): a value
# finite in float64 but not here (1e39) would turn into inf there, so it is checked here.
REWARD_DTYPE = torch.float32
_REWARD_MAX = torch.finfo(REWARD_DTYPE).max
# The `function_name` of an error in the weighted sum of a sample's rewards, not in one function.
WEIGHTED_SUM_NAME = "weighted sum"


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


def timeout_error(
    name: str, sample_index: int | None, prompt: Any, response: Any, timeout_s: float, batch_size: int = 1
) -> RewardFunctionError:
    """The error for a reward call that ran past its time limit (`sample_index=None`: a batched
    call, blamed on its whole batch).

    Example:
        >>> str(timeout_error("judge", 4, "1+1?", "2", 60.0))[:72]
        "reward function 'judge' did not return within 60 s on sample 4 (prompt '"
    """
    where = (
        _where(sample_index, prompt, response)
        if sample_index is not None
        else f"a batch of {batch_size} samples (first prompt {excerpt(prompt)})"
    )
    summary = f"reward function {name!r} did not return within {timeout_s:g} s on {where}"
    return RewardFunctionError(
        f"{summary}; make it return sooner (bound its loops, give its I/O a timeout), raise "
        f"reward_timeout_s, {ZERO_HINT}",
        name,
        sample_index,
        recoverable=True,
        summary=summary,
    )


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


def weighted_sum_error(
    sample_index: int,
    prompt: Any,
    response: Any,
    terms: Sequence[tuple[str, float, float]],
    total: float,
) -> RewardFunctionError:
    """The (recoverable) error for a sample whose rewards are each finite but whose weighted sum
    is not finite in `REWARD_DTYPE`: `terms` holds (component, value, weight), `total` the sum.

    Example:
        >>> err = weighted_sum_error(1, "2+2?", "4", [("acc", 1e30, 1e10)], 1e40)
        >>> print(err.summary)
        the weighted reward sum of sample 1 (prompt '2+2?', response '4') is 1e+40 = acc 1e+30 * weight 1e+10, which is not finite in float32 (largest 3.403e+38)
    """
    shown = " + ".join(f"{name} {value:g} * weight {weight:g}" for name, value, weight in terms)
    dtype = str(REWARD_DTYPE).removeprefix("torch.")
    why = "not a number (inf - inf)" if math.isnan(total) else f"not finite in {dtype}"
    summary = (
        f"the weighted reward sum of {_where(sample_index, prompt, response)} is {total:g} = "
        f"{shown}, which is {why} (largest {_REWARD_MAX:.4g})"
    )
    return RewardFunctionError(
        f"{summary}; scale the weights or the rewards down (e.g. rewards in [-1, 1] and weights "
        f"near 1), {ZERO_HINT}",
        WEIGHTED_SUM_NAME,
        sample_index,
        recoverable=True,
        value=total,
        summary=summary,
    )


def to_reward_value(value: Any, name: str, sample_index: int, prompt: Any, response: Any) -> float:
    """`value` as a finite float, or a `RewardFunctionError` naming the function, sample and value.

    Accepts Python and numpy real numbers, bools and one-element tensors. Finite means finite
    as a `REWARD_DTYPE` (float32), the dtype rewards are kept in.

    Example:
        >>> try:
        ...     to_reward_value(1e39, "f", 0, "p", "r")
        ... except RewardFunctionError as err:
        ...     print(err.summary)
        reward function 'f' returned 1e+39 for sample 0 (prompt 'p', response 'r'), which is not finite in float32 (largest 3.403e+38)
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
    try:
        result = float(value)
    except OverflowError:  # 10**400: too large for any float
        shown = f"an int of {value.bit_length()} bits" if isinstance(value, int) else type(value).__name__
        result, value = math.inf, shown
        summary = (
            f"reward function {name!r} returned {shown} for {_where(sample_index, prompt, response)}, "
            "which is too large for a float"
        )
    else:
        summary = f"reward function {name!r} returned {result} for {_where(sample_index, prompt, response)}"
        if math.isfinite(result) and abs(result) > _REWARD_MAX:
            dtype = str(REWARD_DTYPE).removeprefix("torch.")
            summary += f", which is not finite in {dtype} (largest {_REWARD_MAX:.4g})"
    if not math.isfinite(result) or abs(result) > _REWARD_MAX:
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
