"""What GRPO does with a prompt longer than the sequence limit allows: filter it or truncate it.

A prompt needs room for at least one generated token, so the limit is
`min(data.max_input_seq_length, policy.max_total_sequence_length - 1)` tokens (`prompt_limit`).
Each over-long prompt is handled on its own (`limit_prompt_lengths`), so one of them never
changes what the other prompts of the step generate or train on:

- `filter` (the default): the prompt is not generated from and not trained on. It keeps only its
  first token, so the batch keeps one row per prompt while no pass (generation, log-probs)
  allocates memory for its full length.
- `truncate`: the prompt keeps its last `limit` tokens. The end is kept because that is where the
  generation prompt (the assistant header the model answers after) and, usually, the question
  are; the head (system prompt, preamble) is what is lost.

Example:
    >>> out = limit_prompt_lengths([[1, 2, 3], [4, 5, 6, 7, 8]], limit=4, mode="filter")
    >>> out.sequences, out.filtered, out.truncated
    ([[1, 2, 3], [4]], [False, True], [False, False])
    >>> limit_prompt_lengths([[4, 5, 6, 7, 8]], limit=4, mode="truncate").sequences
    [[5, 6, 7, 8]]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

OverlongPrompts = Literal["filter", "truncate"]
MODES: tuple[str, ...] = ("filter", "truncate")


def prompt_limit(max_total_sequence_length: int, max_input_seq_length: int | None = None) -> int:
    """The longest prompt (in tokens) that still leaves room for one generated token.

    Example:
        >>> prompt_limit(512), prompt_limit(512, 256), prompt_limit(512, 4096)
        (511, 256, 511)
    """
    if max_total_sequence_length < 2:
        raise ValueError(
            f"policy.max_total_sequence_length={max_total_sequence_length} leaves no room for a "
            "prompt and a response; set it to at least 2 (typically prompt + max_new_tokens)"
        )
    limit = max_total_sequence_length - 1
    if max_input_seq_length is not None:
        limit = min(limit, max_input_seq_length)
    return limit


@dataclass(frozen=True)
class LimitedPrompts:
    """The prompts after `limit_prompt_lengths`, with one flag per prompt for what happened."""

    sequences: list[list[int]]
    filtered: list[bool]
    truncated: list[bool]
    longest: int  # the longest prompt's length before any cut (for the warning)

    @property
    def num_filtered(self) -> int:
        return sum(self.filtered)

    @property
    def num_truncated(self) -> int:
        return sum(self.truncated)


def limit_prompt_lengths(
    sequences: Sequence[Sequence[int]], limit: int, mode: OverlongPrompts = "filter"
) -> LimitedPrompts:
    """Apply `limit` to each prompt's token ids on its own (see the module docstring).

    Prompts within the limit come back unchanged; an over-long one is cut to its first token and
    flagged `filtered` (mode `filter`) or cut to its last `limit` tokens and flagged `truncated`
    (mode `truncate`).

    Example:
        >>> limit_prompt_lengths([[1, 2], [3, 4, 5]], limit=2, mode="truncate").truncated
        [False, True]
    """
    if limit < 1:
        raise ValueError(f"limit_prompt_lengths: limit={limit}; a prompt needs at least one token")
    if mode not in MODES:
        raise ValueError(f"limit_prompt_lengths: mode={mode!r}; use one of {', '.join(MODES)}")
    out: list[list[int]] = []
    filtered: list[bool] = []
    truncated: list[bool] = []
    for ids in sequences:
        ids = list(ids)
        if not ids:
            raise ValueError("limit_prompt_lengths: an empty prompt; every prompt needs a token")
        over = len(ids) > limit
        if over and mode == "filter":
            ids = ids[:1]
        elif over:
            ids = ids[-limit:]
        out.append(ids)
        filtered.append(over and mode == "filter")
        truncated.append(over and mode == "truncate")
    longest = max((len(s) for s in sequences), default=0)
    return LimitedPrompts(out, filtered, truncated, longest)
