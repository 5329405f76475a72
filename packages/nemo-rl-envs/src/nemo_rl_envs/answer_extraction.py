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
# Thousands groups: a comma, or (ISO 31-0 style, as math-verify reads it) one space, no-break
# space or narrow no-break space, each followed by exactly three digits.
_NUMBER = re.compile(
    r"-?(?:\d{1,3}(?:[,\u0020\u00a0\u202f]\d{3})+(?!\d)|\d+)(?:\.\d+)?(?:\s*/\s*\d+)?|-?\.\d+"
)
_GROUP_SEPARATORS = re.compile(r"[,\s\u00a0\u202f]")
# Inline math: $$...$$, $...$, \(...\), \[...\] (a lone "$" of a price opens nothing).
_INLINE_MATH = re.compile(r"\$\$(.+?)\$\$|\$(.+?)\$|\\\((.+?)\\\)|\\\[(.+?)\\\]", re.DOTALL)
_MARKER = re.compile(r"(?:final answer|answer)\s*(?:is)?\s*[:：]", re.IGNORECASE)
_FENCE = re.compile(r"```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)```", re.DOTALL)


def _closing_brace(text: str, open_at: int) -> int | None:
    """Index of the brace closing the one at `open_at`; None when the text ends first."""
    depth = 0
    for i in range(open_at, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return i
    return None


def last_boxed(text: str) -> str | None:
    r"""The content of the last `\boxed{...}` (or `\fbox{...}`), braces balanced; None if absent.

    Example:
        >>> last_boxed(r"\boxed{1} then \boxed{\frac{a}{b}}")
        '\\frac{a}{b}'
    """
    start = max(text.rfind(cmd + "{") for cmd in _BOX_COMMANDS)
    while start != -1:
        open_at = text.index("{", start)
        close = _closing_brace(text, open_at)
        if close is not None:
            return text[open_at + 1 : close].strip()
        # unbalanced (the response was cut off): fall back to an earlier, complete box
        start = max(text.rfind(cmd + "{", 0, start) for cmd in _BOX_COMMANDS)
    return None


def all_boxed(text: str) -> list[str]:
    r"""The contents of every complete outermost `\boxed{...}` (or `\fbox{...}`), in order.

    Example:
        >>> all_boxed(r"roots \boxed{2} and \boxed{3}, cut \boxed{4")
        ['2', '3']
    """
    found: list[str] = []
    position = 0
    while True:
        starts = [i for cmd in _BOX_COMMANDS if (i := text.find(cmd + "{", position)) != -1]
        if not starts:
            return found
        open_at = text.index("{", min(starts))
        close = _closing_brace(text, open_at)
        if close is None:  # cut off: look for complete boxes inside it
            position = open_at + 1
            continue
        found.append(text[open_at + 1 : close].strip())
        position = close + 1


def _last_number_match(text: str) -> re.Match[str] | None:
    match = None
    for match in _NUMBER.finditer(text):  # noqa: B007 - the last one is wanted
        pass
    return match


def last_number(text: str) -> str | None:
    """The last number in `text` (integers, decimals, simple fractions), thousands separators
    (commas, or single spaces before groups of three digits) removed.

    Example:
        >>> last_number("paid $1,250.50 for 3/4 of it"), last_number("about 1 000 people")
        ('3/4', '1000')
    """
    match = _last_number_match(text)
    if match is None:
        return None
    number = match.group(0)
    integer, _, rest = number.partition(".")
    return _GROUP_SEPARATORS.sub("", integer) + ("." + rest.replace(" ", "") if rest else "")


def final_answer(text: str) -> str | None:
    r"""The graded answer of a math response: the last boxed expression; without one, the last
    inline math (`$...$`, `\(...\)`) unless a number comes after it, else the last number.

    Example:
        >>> final_answer(r"So it is $\frac{3}{4}$."), final_answer("$x = 2$, so 5 apples")
        ('\\frac{3}{4}', '5')
    """
    boxed = last_boxed(text)
    if boxed is not None:
        return boxed
    maths = list(_INLINE_MATH.finditer(text))
    number = _last_number_match(text)
    if maths and (number is None or maths[-1].end() >= number.end()):
        return next(g for g in maths[-1].groups() if g is not None).strip()
    return last_number(text)


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
