"""A griffe extension for the API reference: read a docstring's `Example:` section as `Examples:`.

Our docstrings head their doctests `Example:` (singular). Griffe's Google parser takes that word
as an admonition of plain markdown, where `>>> x["a"]` followed by `[1, 2]` reads as a reference
link and the prompts lose their code formatting; as an `Examples:` section they render as Python
console blocks. Loaded by mkdocs.yml (mkdocstrings' `extensions` option); never imported by the
packages.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_EXAMPLE = re.compile(r"^(\s*)Example:\s*$", re.MULTILINE)


class DoctestExamples(griffe.Extension):
    """Rename each `Example:` section header to `Examples:` before the docstring is parsed."""

    def on_object(self, *, obj: Any, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _EXAMPLE.sub(r"\1Examples:", obj.docstring.value)
