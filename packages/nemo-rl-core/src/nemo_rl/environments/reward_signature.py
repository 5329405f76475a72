"""How a reward callable wants to be called: per sample or batched, sync or async, which columns.

A reward is called as `fn(prompt, response, **row)` (per sample) or
`fn(prompts, responses, **columns)` (batched: one list per column). Batched is *declared* with the
`batched_reward` decorator or `fn.batched = True`, or *detected* when the first parameter is
named `prompts`, `responses` or `completions`. `async def` functions are detected with
`inspect.iscoroutinefunction`. Row keys are passed only when the function can take them: all keys
when it has `**kwargs`, else only the keys named in its signature (so a plain
`def reward(prompt, response, answer)` works on a dataset with more columns).

TRL's reward functions (`def fn(completions, **kwargs) -> list[float]`, or with `prompts` and
column parameters) are batched and called by keyword, as TRL calls them: a function with a
parameter named `completions` gets `completions=` (the responses, as strings), `prompts=` if it
takes it, and one list per column. TRL's trainer-only arguments (`completion_ids`,
`trainer_state`, `log_extra`, `log_metric`) do not exist here: a function that requires one is
refused when the reward is built, before any model loads.

Example:
    >>> @batched_reward
    ... def lengths(prompts, responses):
    ...     return [float(len(r)) for r in responses]
    >>> describe_reward_fn(lengths).batched
    True
    >>> describe_reward_fn(lambda prompt, response, answer: 1.0).required_columns
    ('answer',)
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

# A first parameter with one of these names marks a batched reward (documented in the module doc).
PLURAL_FIRST_PARAMETERS = frozenset({"prompts", "responses", "completions"})

# TRL passes these besides prompts, completions and columns; nemo-rl has no equivalent.
TRL_TRAINER_ARGUMENTS = frozenset({"completion_ids", "trainer_state", "log_extra", "log_metric"})

# Row keys never forwarded as **row: they would collide with the positional prompt/response.
RESERVED_COLUMNS = frozenset(
    {"prompt", "response", "prompts", "responses", "completion", "completions"}
)


def batched_reward(fn: F) -> F:
    """Declare `fn` batched: called once per batch as `fn(prompts, responses, **columns)`.

    Example:
        >>> @batched_reward
        ... def same(p, r):
        ...     return [1.0] * len(r)
        >>> same.batched
        True
    """
    try:
        fn.batched = True  # type: ignore[attr-defined]
        return fn
    except AttributeError:  # bound methods and some builtins take no attributes: wrap them
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                return await fn(*args, **kwargs)

            async_wrapper.batched = True  # type: ignore[attr-defined]
            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return fn(*args, **kwargs)

        wrapper.batched = True  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]


def reward_fn_name(fn: Callable[..., Any]) -> str:
    """The component name of a reward: `__name__`, the wrapped function's name, or the class name.

    Example:
        >>> reward_fn_name(len)
        'len'
        >>> reward_fn_name(lambda p, r: 0.0)
        'reward'
    """
    target = fn.func if isinstance(fn, functools.partial) else fn
    name = getattr(target, "__name__", None) or type(target).__name__
    return name if name.isidentifier() else "reward"  # "<lambda>" logs badly as a metric name


@dataclass(frozen=True)
class RewardSignature:
    """What `describe_reward_fn` learnt about a reward callable."""

    name: str
    batched: bool
    is_async: bool
    accepts_any_column: bool
    column_names: tuple[str, ...]
    required_columns: tuple[str, ...]
    positional_names: tuple[str, str]
    keyword_call: bool = False  # TRL style: fn(prompts=..., completions=..., **columns)

    def select_columns(self, row: dict[str, Any]) -> dict[str, Any]:
        """The keys of `row` to pass as keyword arguments (reserved and unknown keys dropped)."""
        reserved = RESERVED_COLUMNS | set(self.positional_names)
        return {
            key: value
            for key, value in row.items()
            if key not in reserved and (self.accepts_any_column or key in self.column_names)
        }


def _is_async(fn: Callable[..., Any]) -> bool:
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(fn, "__call__", None)  # noqa: B004 - callable objects with `async def __call__`
    return call is not None and inspect.iscoroutinefunction(call)


def describe_reward_fn(fn: Callable[..., Any], batched: bool | None = None) -> RewardSignature:
    """Inspect `fn` once; `batched` overrides both the declaration and the name-based detection.

    Raises TypeError when `fn` is not callable or cannot take `(prompt, response)`.
    """
    name = reward_fn_name(fn) if callable(fn) else repr(fn)
    if not callable(fn):
        raise TypeError(
            f"reward {name} is a {type(fn).__name__}, not a function; pass a callable "
            "reward_fn(prompt, response, **row) -> float"
        )
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):  # builtins without a signature: assume the documented call
        params = None

    if params is None:
        declared = getattr(fn, "batched", None)
        is_batched = bool(declared) if batched is None and declared is not None else bool(batched)
        return RewardSignature(
            name, is_batched, _is_async(fn), True, (), (), ("prompt", "response")
        )

    if any(p.name == "completions" and p.kind is not inspect.Parameter.POSITIONAL_ONLY for p in params):
        return _describe_trl_reward(fn, name, params, batched)
    positional_kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    positional = [p for p in params if p.kind in positional_kinds]
    has_var_positional = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params)
    if len(positional) < 2 and not has_var_positional:
        raise TypeError(
            f"reward function {name!r} takes {len(positional)} positional parameter(s) but is "
            "called as fn(prompt, response, **row) (or fn(prompts, responses, **columns) when "
            "batched); add the missing parameter(s)"
        )
    first_two = positional[:2]
    positional_names = tuple(p.name for p in first_two) + ("prompt", "response")[len(first_two) :]
    rest = [p for p in params if p not in first_two]
    for p in rest:
        if p.kind is inspect.Parameter.POSITIONAL_ONLY and p.default is inspect.Parameter.empty:
            raise TypeError(
                f"reward function {name!r} has a third positional-only parameter {p.name!r} that "
                "no dataset column can fill; make it a keyword parameter or give it a default"
            )
    keyword_kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    keywords = [p for p in rest if p.kind in keyword_kinds]

    if batched is None:
        declared = getattr(fn, "batched", None)
        if declared is not None:
            batched = bool(declared)
        else:
            batched = bool(first_two) and first_two[0].name in PLURAL_FIRST_PARAMETERS
    return RewardSignature(
        name=name,
        batched=batched,
        is_async=_is_async(fn),
        accepts_any_column=any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params),
        column_names=tuple(p.name for p in keywords),
        required_columns=tuple(p.name for p in keywords if p.default is inspect.Parameter.empty),
        positional_names=positional_names,  # type: ignore[arg-type]
    )


def _describe_trl_reward(
    fn: Callable[..., Any], name: str, params: list[inspect.Parameter], batched: bool | None
) -> RewardSignature:
    """A reward written for TRL: batched, called as fn(prompts=..., completions=..., **columns)."""
    if batched is False:
        raise TypeError(
            f"reward function {name!r} takes TRL's `completions` (a list of every response in "
            "the batch), so it cannot be called per sample; drop batched=False"
        )
    required = [p for p in params if p.default is inspect.Parameter.empty]
    trainer_only = sorted(p.name for p in required if p.name in TRL_TRAINER_ARGUMENTS)
    if trainer_only:
        raise TypeError(
            f"reward function {name!r} requires TRL's {', '.join(trainer_only)}, which nemo-rl "
            "does not pass (it passes prompts=, completions= and the dataset columns); give "
            "the parameter(s) a default or take them through **kwargs"
        )
    positional_only = [p.name for p in required if p.kind is inspect.Parameter.POSITIONAL_ONLY]
    if positional_only:
        raise TypeError(
            f"reward function {name!r} has positional-only parameter(s) {positional_only}; "
            "TRL-style rewards are called by keyword (prompts=, completions=, columns)"
        )
    keyword_kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    columns = [p for p in params if p.kind in keyword_kinds and p.name not in RESERVED_COLUMNS]
    columns = [p for p in columns if p.name not in TRL_TRAINER_ARGUMENTS]
    return RewardSignature(
        name=name,
        batched=True,
        is_async=_is_async(fn),
        accepts_any_column=any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params),
        column_names=tuple(p.name for p in columns),
        required_columns=tuple(p.name for p in columns if p.default is inspect.Parameter.empty),
        positional_names=("prompts", "completions"),
        keyword_call=True,
    )
