"""Exact-match rewards for short-answer tasks: normalised string equality with the ground truth.

Normalisation: case-folded, whitespace collapsed, and surrounding quotes, markdown emphasis and a
final period removed, so "**Paris.**" matches "paris". Which part of the response is compared is
chosen by `extract`:
- "auto" (default): the text after the last "Answer:" marker if there is one, else the last
  non-empty line (for a one-line response, the whole response);
- "marker": only the text after "Answer:" (no marker scores 0.0);
- "last_line": the last non-empty line;
- "none": the whole response.

Example:
    >>> exact_match_reward("Capital of France?", "Let me think.\\nAnswer: **Paris.**", "paris")
    1.0
    >>> exact_match_reward("Capital of France?", "Lyon", ["Paris", "Paname"])
    0.0
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nemo_rl_envs.answer_extraction import answer_after_marker, last_line

EXTRACT_MODES = ("auto", "marker", "last_line", "none")
_STRIP = " \t\n\"'`*_."


def normalize_answer(text: Any, case_sensitive: bool = False) -> str:
    """Whitespace-collapsed text without surrounding quotes, emphasis or period; case-folded
    unless `case_sensitive`.

    Example:
        >>> normalize_answer('  "New   York." ')
        'new york'
    """
    cleaned = " ".join(str(text).split()).strip(_STRIP)
    return cleaned if case_sensitive else cleaned.casefold()


def _extract(response: str, extract: str) -> str | None:
    if extract == "none":
        return response
    if extract == "last_line":
        return last_line(response)
    marked = answer_after_marker(response)
    if extract == "marker" or marked is not None:
        return marked
    return last_line(response)


def make_exact_match_reward(
    extract: str = "auto", case_sensitive: bool = False
) -> Callable[..., float]:
    """Build an exact-match reward `fn(prompt, response, answer, **_) -> float`.

    `answer` may be one string or a list of acceptable strings.

    Example:
        >>> strict = make_exact_match_reward(extract="none", case_sensitive=True)
        >>> strict("", "Paris", "paris"), strict("", "Paris", "Paris")
        (0.0, 1.0)
    """
    if extract not in EXTRACT_MODES:
        raise ValueError(f"extract={extract!r} is not an option; use one of {EXTRACT_MODES}")

    def exact_match_reward(prompt: str, response: str, answer: Any, **_: Any) -> float:
        candidate = _extract(response or "", extract)
        if candidate is None:
            return 0.0
        accepted = answer if isinstance(answer, (list, tuple, set)) else [answer]
        got = normalize_answer(candidate, case_sensitive)
        return (
            1.0
            if got and any(got == normalize_answer(a, case_sensitive) for a in accepted)
            else 0.0
        )

    return exact_match_reward


exact_match_reward = make_exact_match_reward()
exact_match_reward.__doc__ = "Exact match after normalisation (extract='auto'); see module doc."
