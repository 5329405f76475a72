"""Code rewards: run the response's Python code block against the row's tests in a subprocess.

The reward is the fraction of tests that pass. Code never runs in this process: each call starts
`python -I nemo_rl_envs/sandbox_child.py` in a fresh temporary directory with no stdin, a minimal
environment, a wall-clock timeout (the whole process group is killed), and memory / CPU / file-size
limits set with `resource` where the platform has it. This contains accidents (infinite loops,
runaway memory, stray files), not attackers: run untrusted models' code inside a container.

Tests come from the row's `tests` column: a list of snippets (one test each), or one string of
Python in which each top-level `assert` is a test and every other top-level statement (imports,
helpers) is setup run once before the tests. A response without a fenced code block scores 0.0.

Example:
    >>> response = "```python\\ndef add(a, b):\\n    return a + b\\n```"
    >>> code_reward("write add", response, tests="assert add(1, 2) == 3\\nassert add(0, 0) == 1")
    0.5
"""

from __future__ import annotations

import ast
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nemo_rl.environments import RewardEnvironment

from nemo_rl_envs.answer_extraction import extract_code_block

CHILD_SCRIPT = Path(__file__).with_name("sandbox_child.py")


@dataclass
class TestReport:
    """What one sandboxed run found: tests passed out of total, and why others failed."""

    __test__ = False  # not a pytest test class, despite the name

    passed: int
    total: int
    timed_out: bool = False
    error: str | None = None  # a solution or setup error that failed every test
    failures: dict[int, str] = field(default_factory=dict)

    @property
    def fraction(self) -> float:
        return self.passed / self.total if self.total else 0.0


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


def _read_results(path: Path, total: int, timed_out: bool) -> TestReport:
    report = TestReport(passed=0, total=total, timed_out=timed_out)
    lines = path.read_text().splitlines() if path.exists() else []
    for line in lines:
        status, _, rest = line.partition(" ")
        if status == "PASS":
            report.passed += 1
        elif status == "FAIL":
            index, _, reason = rest.partition(" ")
            report.failures[int(index)] = reason
        elif status in ("SOLUTION_ERROR", "SETUP_ERROR"):
            report.error = f"{status.lower().replace('_', ' ')}: {rest}"
    if timed_out and report.error is None:
        report.error = "timed out"
    return report


def run_python_tests(
    code: str,
    tests: str | list[str],
    timeout_s: float = 5.0,
    memory_mb: int = 1024,
) -> TestReport:
    """Run `code` then each test in a limited subprocess; never executes anything in-process.

    Example:
        >>> run_python_tests("x = 2", ["assert x == 2", "assert x == 3"]).passed
        1
    """
    setup, test_list = split_tests(tests)
    job = {
        "solution": code,
        "setup": setup,
        "tests": test_list,
        "memory_mb": int(memory_mb),
        "cpu_s": max(1, int(timeout_s) + 1),  # CPU cap backs up the wall-clock timeout
    }
    with tempfile.TemporaryDirectory(prefix="nemo-rl-code-") as workdir:
        Path(workdir, "job.json").write_text(json.dumps(job))
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": workdir, "LANG": "C.UTF-8"}
        process = subprocess.Popen(
            [sys.executable, "-I", str(CHILD_SCRIPT), workdir],
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,  # a chatty solution must not fill a pipe and block
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, so children die with it
        )
        timed_out = False
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait()
        return _read_results(Path(workdir, "results.txt"), len(test_list), timed_out)


def make_code_reward(timeout_s: float = 5.0, memory_mb: int = 1024) -> Callable[..., float]:
    """Build `code_reward(prompt, response, tests, **_) -> float` with these sandbox limits.

    Example:
        >>> quick = make_code_reward(timeout_s=2.0)
        >>> quick("", "no code here", tests=["assert True"])
        0.0
    """
    if timeout_s <= 0 or memory_mb <= 0:
        raise ValueError(
            f"make_code_reward: timeout_s={timeout_s} and memory_mb={memory_mb} must be positive"
        )

    def code_reward(prompt: str, response: str, tests: Any, **_: Any) -> float:
        code = extract_code_block(response or "")
        if code is None:
            return 0.0
        return run_python_tests(code, tests, timeout_s, memory_mb).fraction

    return code_reward


code_reward = make_code_reward()
code_reward.__doc__ = "Fraction of the row's tests passed by the response's code (5 s, 1 GiB)."


class CodeExecutionEnvironment(RewardEnvironment):
    """Single-turn coding: reward component `code_reward` = fraction of the row's `tests` passed.

    Sandboxed runs wait on subprocesses, so samples are scored concurrently in `max_workers`
    threads.

    Example:
        >>> env = CodeExecutionEnvironment(timeout_s=5.0)
        >>> answer = "```python\\nprint = None\\nx = 1\\n```"
        >>> convo = [{"role": "user", "content": "set x"}, {"role": "assistant", "content": answer}]
        >>> env.step([convo], [{"tests": ["assert x == 1"]}]).rewards["code_reward"].tolist()
        [1.0]
    """

    def __init__(
        self,
        timeout_s: float = 5.0,
        memory_mb: int = 1024,
        on_error: str = "raise",
        max_workers: int = 4,
    ) -> None:
        super().__init__(
            {"code_reward": make_code_reward(timeout_s, memory_mb)},
            on_error=on_error,  # type: ignore[arg-type]
            concurrent=True,
            max_workers=max_workers,
        )
