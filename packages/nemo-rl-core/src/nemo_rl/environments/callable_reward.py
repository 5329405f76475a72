"""A plain callable is a complete reward: `RewardEnvironment` turns callables into an Environment.

Calling forms (see `nemo_rl.environments.reward_signature` for the detection rules):
- per sample: `reward_fn(prompt, response, **row) -> float`
- batched: `reward_fn(prompts, responses, **columns) -> list[float]`, declared with
  `@batched_reward` / `fn.batched = True`, or detected from a first parameter named `prompts`,
  `responses` or `completions`
- `async def` versions of both (per-sample ones are gathered over the batch)

`prompt` is the content of the last user message, `response` that of the last assistant message,
and `row` the sample's dataset row (its metadata dict), minus keys that would collide with
prompt/response. Several rewards become named components (all logged); their weighted sum is the
reward the algorithm sees.

Errors: a reward that raises, runs past `timeout_s` (default 60 s, the trainer's
`reward_timeout_s`), or returns a value that is not finite in float32 (NaN, inf, 1e39, 10**400)
raises `RewardFunctionError` naming the function, the sample and the fix; with `on_error="zero"`
(the trainer's `on_reward_error`) that sample scores 0, a warning is logged and the step's
`reward_errors` metric counts it. A sample whose rewards are finite but whose weighted sum is not
(1e30 with weight 1e10; inf - inf) is the same recoverable error, named after the sample, the
values and the weights (`nemo_rl.environments.reward_sum`); with "zero" it scores 0 in every
component. A non-number return or a batched result of the wrong length is a bug in the function
and always raises. Weights must be finite numbers, checked when the environment is built.

Example:
    >>> def exact(prompt, response, answer):
    ...     return float(response.strip() == answer)
    >>> env = RewardEnvironment({"exact": (exact, 2.0), "short": lambda p, r: float(len(r) < 5)})
    >>> step = env.step([[{"role": "user", "content": "1+1?"}, {"role": "assistant", "content": "2"}]],
    ...                 [{"answer": "2"}])
    >>> step.rewards["exact"].tolist(), step.total_reward().tolist()
    ([1.0], [3.0])
"""

from __future__ import annotations

import inspect
import logging
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Literal

import torch

from nemo_rl.environments.env_step import RewardEnvStep
from nemo_rl.environments.reward_component import RewardComponent
from nemo_rl.environments.reward_errors import REWARD_DTYPE, RewardFunctionError
from nemo_rl.environments.reward_signature import describe_reward_fn, reward_fn_name
from nemo_rl.environments.reward_sum import checked_reward_sums
from nemo_rl.protocols import Environment, Message

logger = logging.getLogger(__name__)

RewardSpec = Callable[..., Any] | tuple[Callable[..., Any], float]
DEFAULT_TIMEOUT_S = 60.0  # a reward call that takes longer is stuck, not slow
RewardFns = Callable[..., Any] | Sequence[Callable[..., Any]] | Mapping[str, RewardSpec]


def _last_content(conversation: Sequence[Message], role: str) -> Any:
    for message in reversed(conversation):
        if message.get("role") == role:
            return message.get("content", "")
    return None


def _named_specs(reward_fn: RewardFns) -> list[tuple[str, Callable[..., Any], float | None]]:
    """(name, fn, weight or None) for each reward, names checked for duplicates."""
    if isinstance(reward_fn, Mapping):
        specs = []
        for name, spec in reward_fn.items():
            if isinstance(spec, tuple):
                if len(spec) != 2:
                    raise ValueError(
                        f"reward {name!r} is a tuple of {len(spec)} items; give (fn, weight)"
                    )
                specs.append((str(name), spec[0], _checked_weight(spec[1], f"reward_fn[{name!r}][1]")))
            else:
                specs.append((str(name), spec, None))
        return specs
    fns = [reward_fn] if callable(reward_fn) else list(reward_fn)
    specs = [(reward_fn_name(fn), fn, None) for fn in fns]
    names = [name for name, _, _ in specs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(
            f"several reward functions are named {duplicates}; pass a dict "
            "{name: fn} (or {name: (fn, weight)}) to give each component its own name"
        )
    return specs


def _resolve_weights(
    specs: list[tuple[str, Callable[..., Any], float | None]],
    weights: Mapping[str, float] | Sequence[float] | None,
) -> dict[str, float]:
    names = [name for name, _, _ in specs]
    if weights is None:
        given: dict[str, float] = {}
    elif isinstance(weights, Mapping):
        unknown = sorted(set(weights) - set(names))
        if unknown:
            raise ValueError(f"weights name unknown reward(s) {unknown}; the rewards are {names}")
        given = {k: _checked_weight(v, f"weights[{k!r}]") for k, v in weights.items()}
    elif not isinstance(weights, (list, tuple)):
        raise TypeError(
            f"weights is a {type(weights).__name__}; pass a dict {{name: weight}} or a list with "
            f"one weight per reward {names}"
        )
    else:
        if len(weights) != len(names):
            raise ValueError(
                f"{len(weights)} weights for {len(names)} rewards {names}; give one weight per "
                "reward, or a dict {name: weight}"
            )
        given = {
            name: _checked_weight(w, f"weights[{i}] (reward {name!r})")
            for i, (name, w) in enumerate(zip(names, weights, strict=True))
        }
    resolved = {}
    for name, _, tuple_weight in specs:
        if tuple_weight is not None and name in given:
            raise ValueError(
                f"reward {name!r} has a weight both in its (fn, weight) tuple and in weights=; "
                "give it once"
            )
        resolved[name] = tuple_weight if tuple_weight is not None else given.get(name, 1.0)
    return resolved


def _checked_weight(value: Any, where: str) -> float:
    """`value` as a float if it is a finite real number; else an error naming `where` (the
    argument that gave it), so a bad weight fails when the reward is built, before any model
    loads, and not as a NaN reward mid-run."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{where} is {value!r} ({type(value).__name__}), not a number; a reward weight must "
            "be a finite number such as 0.5"
        )
    try:
        weight, shown = float(value), repr(value)
    except OverflowError:  # an int too large for a float
        weight, shown = math.inf, f"an int of {int(value).bit_length()} bits"
    if not math.isfinite(weight):
        raise ValueError(
            f"{where} is {shown}; a reward weight must be a finite number such as 0.5 (to give "
            "a reward a wider range, scale what the reward function returns)"
        )
    return weight


class RewardEnvironment:
    """Environment over one or more reward callables (single-turn: every sample is done).

    Args:
        reward_fn: a callable, a list of callables (named by `__name__`), or a dict
            `{name: fn}` / `{name: (fn, weight)}`.
        weights: a dict `{name: weight}` or a list aligned with `reward_fn`; default 1.0 each.
        on_error: "raise" (default) or "zero" (failing samples score 0 and are counted).
        batched: force every function batched (True) or per-sample (False); None detects.
        concurrent: run sync per-sample functions in a thread pool (default: a plain loop, or the
            function's own `concurrent` attribute); use it for I/O-bound rewards.
        max_workers: threads for `concurrent`, and in-flight calls for `async def` rewards.
        timeout_s: the longest one reward call may take (a per-sample call, or one call of a
            batched function), in seconds; past it the sample fails like a raising reward and
            `on_error` decides. None: no limit.

    Example:
        >>> env = RewardEnvironment(lambda prompt, response: float("4" in response))
        >>> convo = [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]
        >>> env.step([convo], [{}]).rewards
        {'reward': tensor([1.])}
    """

    def __init__(
        self,
        reward_fn: RewardFns,
        weights: Mapping[str, float] | Sequence[float] | None = None,
        on_error: Literal["raise", "zero"] = "raise",
        batched: bool | None = None,
        concurrent: bool | None = None,
        max_workers: int = 8,
        timeout_s: float | None = DEFAULT_TIMEOUT_S,
    ) -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers={max_workers}; use 1 or more")
        specs = _named_specs(reward_fn)
        if not specs:
            raise ValueError("RewardEnvironment got no reward functions; pass at least one")
        self.weights = _resolve_weights(specs, weights)
        self.components = []
        for name, fn, _ in specs:
            signature = replace(describe_reward_fn(fn, batched=batched), name=name)
            declared = bool(getattr(fn, "concurrent", False))
            is_concurrent = declared if concurrent is None else concurrent
            self.components.append(RewardComponent(fn, signature, is_concurrent, max_workers))
        self.configure(on_error=on_error, timeout_s=timeout_s)

    def configure(self, *, on_error: str | None = None, timeout_s: float | None | Literal["keep"] = "keep") -> None:
        """Set the error policy and the per-call time limit after construction (what
        `as_environment` does for a registered environment built from its own options).

        Example:
            >>> env = RewardEnvironment(lambda prompt, response: 1.0)
            >>> env.configure(on_error="zero", timeout_s=5.0)
            >>> env.on_error, env.components[0].timeout_s
            ('zero', 5.0)
        """
        if on_error is not None:
            if on_error not in ("raise", "zero"):
                raise ValueError(f"on_error={on_error!r} is not an option; use 'raise' or 'zero'")
            self.on_error = on_error
        if timeout_s != "keep":
            if timeout_s is not None and not (math.isfinite(timeout_s) and timeout_s > 0):
                raise ValueError(f"timeout_s={timeout_s}; use a positive number of seconds, or None")
            for component in self.components:
                component.timeout_s = timeout_s

    def __repr__(self) -> str:
        parts = ", ".join(f"{c.name}*{self.weights[c.name]:g}" for c in self.components)
        return f"RewardEnvironment({parts}, on_error={self.on_error!r})"

    def step(self, messages: list[list[Message]], metadata: list[dict[str, Any]]) -> RewardEnvStep:
        """Score each conversation's last assistant message with every reward component."""
        if len(messages) != len(metadata):
            raise ValueError(
                f"RewardEnvironment.step got {len(messages)} conversations but {len(metadata)} "
                "metadata rows; pass one row (dict, may be empty) per conversation"
            )
        rows: list[dict[str, Any]] = []
        for i, row in enumerate(metadata):
            if row is not None and not isinstance(row, Mapping):
                raise TypeError(
                    f"metadata[{i}] is a {type(row).__name__}; each sample's metadata must be its "
                    "dataset row as a dict"
                )
            rows.append(dict(row or {}))
        prompts = [_last_content(convo, "user") or "" for convo in messages]
        responses = [_last_content(convo, "assistant") for convo in messages]
        missing = [i for i, r in enumerate(responses) if r is None]
        if missing:
            raise ValueError(
                f"conversation(s) {missing[:5]} have no assistant message to score; call the "
                "environment after generation, with the response appended as "
                '{"role": "assistant", "content": ...}'
            )

        batch = len(messages)
        rewards: dict[str, torch.Tensor] = {}
        failures: list[list[str]] = [[] for _ in range(batch)]
        for component in self.components:
            scores = component.score(prompts, responses, rows, fail_fast=self.on_error == "raise")
            values = [self._tolerate(score, i, failures) for i, score in enumerate(scores)]
            rewards[component.name] = torch.tensor(values, dtype=REWARD_DTYPE)

        n_call_errors = sum(len(f) for f in failures)
        if n_call_errors:
            first = next(f[0] for f in failures if f)
            logger.warning(
                "%d reward call(s) failed in a batch of %d and scored 0 (on_reward_error='zero'); "
                "first: %s",
                n_call_errors,
                batch,
                first,
            )
        self._check_sums(rewards, prompts, responses, failures)
        n_errors = sum(len(f) for f in failures)
        return RewardEnvStep(
            rewards=rewards,
            observations=[None] * batch,
            done=[True] * batch,
            metadata=[{"reward_errors": f} if f else {} for f in failures],
            weights=dict(self.weights),
            metrics={"reward_errors": float(n_errors)},
        )

    def _tolerate(
        self, score: float | RewardFunctionError, sample: int, failures: list[list[str]]
    ) -> float:
        """`on_error` applied to one sample's score: a float passes; a recoverable error is
        raised ("raise"), or recorded in `failures` and scored 0 ("zero")."""
        if not isinstance(score, RewardFunctionError):
            return score
        if self.on_error == "raise":
            raise score
        failures[sample].append(score.summary)
        return 0.0

    def _check_sums(
        self,
        rewards: dict[str, torch.Tensor],
        prompts: list[Any],
        responses: list[Any],
        failures: list[list[str]],
    ) -> None:
        """`on_error` for samples whose weighted reward sum is not finite in float32: raise, or
        score the sample 0 in every component (so its total, what training sees, is 0)."""
        errors = [
            (i, total)
            for i, total in enumerate(checked_reward_sums(rewards, self.weights, prompts, responses))
            if isinstance(total, RewardFunctionError)
        ]
        for i, error in errors:
            self._tolerate(error, i, failures)
            for values in rewards.values():
                values[i] = 0.0
        if errors:
            logger.warning(
                "%d weighted reward sum(s) not finite in a batch of %d scored 0 "
                "(on_reward_error='zero'); first: %s",
                len(errors),
                len(prompts),
                errors[0][1].summary,
            )


def _is_environment(obj: Any) -> bool:
    return callable(getattr(obj, "step", None)) and not inspect.isclass(obj)


def check_reward(obj: Any, **reward_options: Any) -> None:
    """Raise now (TypeError/ValueError) if `obj` is callables `RewardEnvironment` cannot call.

    Trainers call it before any model loads. Environments, classes and registered names are
    left to `as_environment`: building them may be expensive (a judge model), checking is not.

    Example:
        >>> check_reward(lambda prompt, response: 1.0)
        >>> check_reward(lambda completions, completion_ids: [0.0])
        Traceback (most recent call last):
        ...
        TypeError: reward function 'reward' requires TRL's completion_ids, which nemo-rl does not pass (it passes prompts=, completions= and the dataset columns); give the parameter(s) a default or take them through **kwargs
    """
    if isinstance(obj, str) or inspect.isclass(obj) or _is_environment(obj):
        return
    if callable(obj) or isinstance(obj, (Mapping, list, tuple)):
        RewardEnvironment(obj, **reward_options)


def as_environment(
    obj: Any, *, environment_options: Mapping[str, Any] | None = None, **reward_options: Any
) -> Environment:
    """Turn what a user passed as reward into an Environment.

    Accepts an Environment (returned as is), a callable or a list/dict of callables (wrapped in
    `RewardEnvironment(obj, **reward_options)`), an Environment class (instantiated with no
    arguments, or with `environment_options`), or a registered name (`nemo_rl.registry`, group
    "environments"). `reward_options` (on_error, weights, ...) apply when callables are
    wrapped; `environment_options` only when an Environment class is built. A class built here
    that is a `RewardEnvironment` (math, code, ...) also takes `on_error` and `timeout_s` from
    `reward_options` (`configure`), unless `environment_options` sets them itself, so the
    trainer's `on_reward_error` and `reward_timeout_s` hold for registered environments too.

    Example:
        >>> env = as_environment(lambda prompt, response: 1.0, on_error="zero")
        >>> env.on_error
        'zero'
    """
    if isinstance(obj, str):
        from nemo_rl import registry  # at call time: plugins register themselves lazily

        obj = registry.resolve("environments", obj)
    if inspect.isclass(obj) and callable(getattr(obj, "step", None)):
        options = dict(environment_options or {})
        obj = obj(**options)
        if isinstance(obj, RewardEnvironment):
            policy = {k: v for k, v in reward_options.items() if k in ("on_error", "timeout_s")}
            obj.configure(**{k: v for k, v in policy.items() if k not in options})
    elif environment_options:
        raise ValueError(
            f"environment_options {sorted(environment_options)} given, but the reward "
            f"{getattr(obj, '__name__', obj)!r} is not an Environment class that takes options; "
            "remove environment_options, or pass your own configured callable as reward_fn"
        )
    if _is_environment(obj):
        return obj
    if obj is None:
        raise TypeError(
            "no reward given: pass reward_fn=<callable(prompt, response, **row) -> float> or an "
            "Environment"
        )
    if callable(obj) or isinstance(obj, (Mapping, list, tuple)):
        return RewardEnvironment(obj, **reward_options)
    raise TypeError(
        f"cannot use a {type(obj).__name__} as a reward; pass a callable, a list or dict of "
        "callables, an Environment (an object with .step(messages, metadata)) or a registered "
        "environment name"
    )
