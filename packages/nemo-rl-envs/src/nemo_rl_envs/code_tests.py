"""A row's tests, split into what the sandbox runs and what only the host keeps, and judged here.

The sandbox never sees an expected value. `assert <expr> == <literal>` (after any statements)
sends only `<expr>` in; stdin/stdout cases (`{"input": ..., "output": ...}`) send only the input.
The host decodes what comes back and compares it with the expected value it kept, so a program
can pass only by producing the right values: printing PASS lines, exiting early, patching the
harness or returning an object whose `__eq__` always says yes earns nothing. Any other test
(`assert is_sorted(f(x))`, `check(candidate)`) can only be judged inside the sandbox, where a
hostile program can forge it; such rows are refused unless `allow_forgeable_tests=True`.

Example:
    >>> cases = parse_tests("import math\\nassert f(2) == 4\\nassert f(3) == 9")
    >>> cases.setup, [c.job for c in cases.tests], [c.expected for c in cases.tests]
    ('import math', [{'kind': 'value', 'pre': '', 'expr': 'f(2)'}, {'kind': 'value', 'pre': '', 'expr': 'f(3)'}], [4, 9])
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

FORGEABLE_HINT = (
    "write tests as `assert <expression> == <literal>` or stdin/stdout cases "
    "({'input': ..., 'output': ...}), which the host judges, or pass allow_forgeable_tests=True "
    "if the code under test is trusted"
)


@dataclass
class TestCase:
    """One test: what the sandbox runs (`job`) and what the host compares against."""

    __test__ = False  # not a pytest test class, despite the name

    job: dict
    expected: Any = None
    source: str = ""

    def judge(self, record: dict) -> str | None:
        """None if the record passes this test, else why it failed."""
        if "error" in record:
            return str(record["error"])[:200]
        kind = self.job["kind"]
        if kind == "assert":
            return None if record.get("ok") is True else "no verdict"
        if kind == "io":
            out = record.get("stdout")
            if not isinstance(out, str):
                return "no output"
            return None if _lines(out) == _lines(self.expected) else "wrong output"
        text = record.get("value")
        try:
            value = ast.literal_eval(text) if isinstance(text, str) and len(text) <= 65536 else ...
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            value = ...
        if value is ...:
            return "unreadable result"
        try:
            equal = bool(value == self.expected)  # both built here from literals: plain data
        except (RecursionError, MemoryError):
            equal = False
        return None if equal else f"got {str(text)[:80]}, expected {self.expected!r:.80}"


@dataclass
class ParsedTests:
    """The setup code (run once after the solution) and the tests, in order."""

    setup: str = ""
    tests: list[TestCase] = field(default_factory=list)

    @property
    def forgeable(self) -> list[TestCase]:
        return [t for t in self.tests if t.job["kind"] == "assert"]


def _lines(text: str) -> list[str]:
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _literal(node: ast.AST) -> tuple[bool, Any]:
    try:
        return True, ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False, None


def _python_case(source: str) -> TestCase:
    """A value test if the last statement is `assert a == b` with one side a literal."""
    try:
        module = ast.parse(source)
    except SyntaxError as err:
        raise ValueError(
            f"a test is not valid Python (line {err.lineno}: {err.msg}); fix the dataset's test code"
        ) from err
    last = module.body[-1] if module.body else None
    if (
        isinstance(last, ast.Assert)
        and isinstance(last.test, ast.Compare)
        and len(last.test.ops) == 1
        and isinstance(last.test.ops[0], ast.Eq)
    ):
        left, right = last.test.left, last.test.comparators[0]
        for expr, other in ((left, right), (right, left)):
            is_literal, expected = _literal(other)
            if is_literal and not _literal(expr)[0]:
                pre = "\n".join(ast.get_source_segment(source, s) or "" for s in module.body[:-1])
                segment = ast.get_source_segment(source, expr) or ""
                expr_src = f"(\n{segment}\n)" if "\n" in segment else segment  # eval needs one line
                job = {"kind": "value", "pre": pre, "expr": expr_src}
                return TestCase(job, expected, source)
    return TestCase({"kind": "assert", "code": source}, None, source)


def parse_tests(tests: Any) -> ParsedTests:
    """Parse a row's `tests`: a list of snippets or of {"input", "output"} cases, or one string
    in which each top-level `assert` is a test and every other statement is setup.

    Example:
        >>> [c.job["kind"] for c in parse_tests([{"input": "2", "output": "4"}]).tests]
        ['io']
    """
    if isinstance(tests, (list, tuple)):
        if not tests:
            raise ValueError("the row's tests must be a non-empty list; got []")
        if all(isinstance(t, dict) for t in tests):
            cases = []
            for t in tests:
                if not isinstance(t.get("input"), str) or not isinstance(t.get("output"), str):
                    raise ValueError(
                        f"stdin/stdout tests need string 'input' and 'output' fields; got {t!r:.80}"
                    )
                cases.append(TestCase({"kind": "io", "stdin": t["input"]}, t["output"], t["input"]))
            return ParsedTests("", cases)
        if not all(isinstance(t, str) for t in tests):
            raise ValueError(
                "the row's tests must be a non-empty list of Python snippets (strings) or of "
                f"{{'input', 'output'}} cases; got {tests!r:.80}"
            )
        return ParsedTests("", [_python_case(t) for t in tests])
    if not isinstance(tests, str) or not tests.strip():
        raise ValueError(
            f"the row's tests must be Python code or a list of snippets; got {tests!r:.80}"
        )
    setup, snippets = split_tests(tests)
    return ParsedTests(setup, [_python_case(t) for t in snippets])


def split_tests(tests: str | list[str] | tuple[str, ...]) -> tuple[str, list[str]]:
    """(setup, tests): a list is taken as is; a string is split into its top-level asserts (the
    tests) and everything else (setup, in order). A string without asserts is one test.

    Example:
        >>> split_tests("import math\\nassert math.pi > 3\\nassert f(1) == 2")
        ('import math', ['assert math.pi > 3', 'assert f(1) == 2'])
    """
    if isinstance(tests, (list, tuple)):
        if not tests or not all(isinstance(t, str) for t in tests):
            raise ValueError(
                "the row's tests must be a non-empty list of Python snippets (strings); got "
                f"{tests!r:.80}"
            )
        return "", list(tests)
    if not isinstance(tests, str) or not tests.strip():
        raise ValueError(
            f"the row's tests must be Python code or a list of snippets; got {tests!r:.80}"
        )
    try:
        module = ast.parse(tests)
    except SyntaxError as err:
        raise ValueError(
            f"the row's tests are not valid Python (line {err.lineno}: {err.msg}); fix the "
            "dataset's test code"
        ) from err
    asserts = [
        ast.get_source_segment(tests, s) or "" for s in module.body if isinstance(s, ast.Assert)
    ]
    if not asserts:
        return "", [tests]
    setup = [
        ast.get_source_segment(tests, s) or "" for s in module.body if not isinstance(s, ast.Assert)
    ]
    return "\n".join(setup), asserts
