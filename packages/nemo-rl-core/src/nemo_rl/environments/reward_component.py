"""One named reward callable scored over a batch: the four calling forms in one place.

Per-sample sync functions run in a plain loop (deterministic), or in a small thread pool when
declared `concurrent`; per-sample `async def` functions run with asyncio, gathered over the batch
(at most `max_workers` in flight); batched functions (sync or async) are called once.

Each call gets at most `timeout_s` seconds (None: no limit): a per-sample call that runs past it
scores as a recoverable `RewardFunctionError` naming the function and the sample, a batched call
as one for each sample of its batch. Sync calls run on daemon threads for that
(`nemo_rl.environments.call_deadline`); async ones are cancelled at their deadline, which only
works when they await (an async function that blocks its event loop is not interrupted).

Example:
    >>> from nemo_rl.environments.reward_signature import describe_reward_fn
    >>> def longer_than_prompt(prompt, response):
    ...     return float(len(response) > len(prompt))
    >>> fn = longer_than_prompt
    >>> RewardComponent(fn, describe_reward_fn(fn)).score(["ab", "abc"], ["abc", "a"], [{}, {}])
    [1.0, 0.0]
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from nemo_rl.environments.call_deadline import CallTimedOut, call_with_timeout
from nemo_rl.environments.reward_errors import (
    RewardFunctionError,
    batch_raised_error,
    raised_error,
    timeout_error,
    to_reward_value,
    wrong_length_error,
)
from nemo_rl.environments.reward_signature import RewardSignature

SampleScore = float | RewardFunctionError  # a recoverable error stands in for a failed sample


def run_coroutine(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run `coro` to completion from sync code, also when this thread already runs an event loop
    (Jupyter): then it runs on a fresh loop in a helper thread, since a loop cannot be re-entered."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(max_workers=1) as helper:
        return helper.submit(asyncio.run, coro).result()


class RewardComponent:
    """A reward callable with its inspected signature; `score` returns one entry per sample.

    Unrecoverable problems (a non-number return, a wrong-length batch, a missing column) raise
    `RewardFunctionError` at once; recoverable ones (the function raised, NaN) are returned in place
    of the sample's float so the caller can apply its `on_error` policy.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        signature: RewardSignature,
        concurrent: bool = False,
        max_workers: int = 8,
        timeout_s: float | None = None,
    ) -> None:
        self.fn = fn
        self.signature = signature
        self.concurrent = concurrent
        self.max_workers = max_workers
        self.timeout_s = timeout_s

    @property
    def name(self) -> str:
        return self.signature.name

    def _columns_for(self, index: int, row: dict[str, Any]) -> dict[str, Any]:
        missing = [c for c in self.signature.required_columns if c not in row]
        if missing:
            raise RewardFunctionError(
                f"reward function {self.name!r} needs the dataset column(s) {missing} but sample "
                f"{index} has only {sorted(row)}; add or rename the column(s), or give the "
                "parameter(s) a default",
                self.name,
                index,
                recoverable=False,
            )
        return self.signature.select_columns(row)

    def score(
        self,
        prompts: Sequence[Any],
        responses: Sequence[Any],
        rows: Sequence[dict[str, Any]],
        fail_fast: bool = False,
    ) -> list[SampleScore]:
        """Score every sample; with `fail_fast`, the sequential loop raises the first error
        instead of calling the function on the rest of the batch."""
        kwargs = [self._columns_for(i, row) for i, row in enumerate(rows)]
        if self.signature.batched:
            return self._score_batched(prompts, responses, kwargs)
        if self.signature.is_async:
            return self._score_async(prompts, responses, kwargs)
        if self.concurrent and len(prompts) > 1:
            with ThreadPoolExecutor(max_workers=min(self.max_workers, len(prompts))) as pool:
                return list(
                    pool.map(self._score_one, range(len(prompts)), prompts, responses, kwargs)
                )
        scores: list[SampleScore] = []
        for i in range(len(prompts)):
            score = self._score_one(i, prompts[i], responses[i], kwargs[i])
            if fail_fast and isinstance(score, RewardFunctionError):
                raise score
            scores.append(score)
        return scores

    def _checked(self, index: int, value: Any, prompt: Any, response: Any) -> SampleScore:
        try:
            return to_reward_value(value, self.name, index, prompt, response)
        except RewardFunctionError as err:
            if not err.recoverable:
                raise
            return err

    def _score_one(self, index: int, prompt: Any, response: Any, kwargs: dict) -> SampleScore:
        def call() -> Any:
            value = self.fn(prompt, response, **kwargs)
            if inspect.isawaitable(value):  # an async callable that detection could not see
                value = run_coroutine(value)
            return value

        try:
            value = call_with_timeout(call, self.timeout_s)
        except CallTimedOut:
            return timeout_error(self.name, index, prompt, response, self.timeout_s or 0.0)
        except Exception as cause:  # the user's code: any failure is reported, not swallowed
            return raised_error(self.name, index, prompt, response, cause)
        return self._checked(index, value, prompt, response)

    def _score_async(self, prompts: Sequence, responses: Sequence, kwargs: list) -> list:
        async def gather() -> list[Any]:
            limit = asyncio.Semaphore(self.max_workers)

            async def one(i: int) -> Any:
                async with limit:
                    task = asyncio.ensure_future(self.fn(prompts[i], responses[i], **kwargs[i]))
                    done, _ = await asyncio.wait({task}, timeout=self.timeout_s)
                    if not done:
                        task.cancel()
                        return timeout_error(self.name, i, prompts[i], responses[i], self.timeout_s or 0.0)
                    try:
                        return task.result()
                    except Exception as cause:
                        return raised_error(self.name, i, prompts[i], responses[i], cause)

            return await asyncio.gather(*(one(i) for i in range(len(prompts))))

        values = run_coroutine(gather())
        return [
            v
            if isinstance(v, RewardFunctionError)
            else self._checked(i, v, prompts[i], responses[i])
            for i, v in enumerate(values)
        ]

    def _score_batched(self, prompts: Sequence, responses: Sequence, kwargs: list) -> list:
        names = sorted({key for sample_kwargs in kwargs for key in sample_kwargs})
        columns = {key: [sample_kwargs.get(key) for sample_kwargs in kwargs] for key in names}

        def call() -> Any:
            if self.signature.keyword_call:
                values = self.fn(**self._trl_arguments(prompts, responses), **columns)
            else:
                values = self.fn(list(prompts), list(responses), **columns)
            return run_coroutine(values) if inspect.isawaitable(values) else values

        first = prompts[0] if prompts else ""
        try:
            values = call_with_timeout(call, self.timeout_s)
        except CallTimedOut:
            err = timeout_error(self.name, None, first, None, self.timeout_s or 0.0, len(prompts))
            return [err] * len(prompts)
        except Exception as cause:
            err = batch_raised_error(self.name, len(prompts), first, cause)
            return [err] * len(prompts)
        if hasattr(values, "tolist"):  # torch tensors and numpy arrays
            values = values.tolist()
        if not isinstance(values, (list, tuple)):
            raise wrong_length_error(self.name, None, len(prompts), values)
        if len(values) != len(prompts):
            raise wrong_length_error(self.name, len(values), len(prompts), values)
        return [self._checked(i, v, prompts[i], responses[i]) for i, v in enumerate(values)]

    def _trl_arguments(self, prompts: Sequence, responses: Sequence) -> dict[str, list]:
        """completions= always; prompts= only where the function takes it (TRL passes both)."""
        arguments = {"completions": list(responses)}
        if self.signature.accepts_any_column or "prompts" in _parameter_names(self.fn):
            arguments["prompts"] = list(prompts)
        return arguments


def _parameter_names(fn: Callable[..., Any]) -> set[str]:
    try:
        return set(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return set()
