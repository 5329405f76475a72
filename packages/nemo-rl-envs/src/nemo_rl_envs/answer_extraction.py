"""Pull the part of a model response that gets graded: a boxed answer, a number, a marked line, code.

Pure string functions (no parsing of mathematics here; see `math_reward` for that).

Example:
    >>> final_answer(r"so x = 3, hence \\boxed{\\frac{1}{2}}.")
    '\\\\frac{1}{2}'
    >>> final_answer("I count 1,024 apples and 3 pears")
    '3'
    >>> answer_after_marker("Reasoning...\\nAnswer: Paris")
    'Paris'
"""

from __future__ import annotations

import re

_BOX_COMMANDS = ("\\boxed", "\\fbox")
_NUMBER = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s*/\s*\d+)?|-?\.\d+")
_MARKER = re.compile(r"(?:final answer|answer)\s*(?:is)?\s*[:：]", re.IGNORECASE)
_FENCE = re.compile(r"```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)```", re.DOTALL)


def last_boxed(text: str) -> str | None:
    r"""The content of the last `\boxed{...}` (or `\fbox{...}`), braces balanced; None if absent.

    Example:
        >>> last_boxed(r"\boxed{1} then \boxed{\frac{a}{b}}")
        '\\frac{a}{b}'
    """
    start = max(text.rfind(cmd + "{") for cmd in _BOX_COMMANDS)
    while start != -1:
        open_at = text.index("{", start)
        depth = 0
        for i in range(open_at, len(text)):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            if depth == 0:
                return text[open_at + 1 : i].strip()
        # unbalanced (the response was cut off): fall back to an earlier, complete box
        start = max(text.rfind(cmd + "{", 0, start) for cmd in _BOX_COMMANDS)
    return None


def last_number(text: str) -> str | None:
    """The last number in `text` (integers, decimals, simple fractions), thousands commas removed.

    Example:
        >>> last_number("paid $1,250.50 for 3/4 of it")
        '3/4'
    """
    matches = _NUMBER.findall(text)
    return matches[-1].replace(",", "").replace(" ", "") if matches else None


def final_answer(text: str) -> str | None:
    """The graded answer of a math response: the last boxed expression, else the last number."""
    boxed = last_boxed(text)
    return boxed if boxed is not None else last_number(text)


def answer_after_marker(text: str) -> str | None:
    """The rest of the line after the last "Answer:" / "Final answer:" / "answer is:"; None if
    no such marker (case-insensitive).

    Example:
        >>> answer_after_marker("final ANSWER: 42 apples\\nthanks")
        '42 apples'
    """
    matches = list(_MARKER.finditer(text))
    if not matches:
        return None
    return text[matches[-1].end() :].split("\n", 1)[0].strip()


def last_line(text: str) -> str:
    """The last non-empty line of `text` ("" for blank text)."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def extract_code_block(
    text: str, languages: tuple[str, ...] = ("python", "py", "python3")
) -> str | None:
    """The last fenced code block tagged with one of `languages`, else the last untagged block;
    None when the response has no such block (prose is never executed).

    Example:
        >>> extract_code_block("try:\\n```python\\ndef f():\\n    return 1\\n```\\n")
        'def f():\\n    return 1\\n'
    """
    blocks = _FENCE.findall(text)
    tagged = [body for tag, body in blocks if tag.lower() in languages]
    if tagged:
        return tagged[-1]
    untagged = [body for tag, body in blocks if not tag]
    return untagged[-1] if untagged else None
