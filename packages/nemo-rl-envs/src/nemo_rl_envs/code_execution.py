"""Code rewards: run the response's Python against the row's tests in a sandbox; the host judges.

The reward is the fraction of the row's tests passed, each counted at most once, in [0, 1].
Code never runs in this process: `nemo_rl_envs.sandbox` runs it in fresh PID, mount, network,
IPC and UTS namespaces with a private read-only root, an unprivileged uid, no capabilities, no
environment, rlimits and (where a cgroup is writable) a memory and process cap over the whole run;
it refuses to run (SandboxUnavailableError) rather than run without them, unless
`isolation="none"` says the code is trusted.

Verdicts come from this process. The sandbox sends back the values of the tests' expressions (or
a stdin/stdout case's output) over a pipe; this process compares them with the expected values,
which never enter the sandbox (see `nemo_rl_envs.code_tests`). A record out of order, repeated,
unreadable or after the end voids the run (reward 0, `TestReport.error` says why).

Tests come from the row's `tests` column: a list of snippets (one test each), a list of
`{"input", "output"}` stdin/stdout cases, or one string of Python in which each top-level
`assert` is a test and every other top-level statement (imports, helpers) is setup. A response
without a fenced code block scores 0.0.

Threat model: see the `nemo_rl_envs.sandbox` package docstring and docs/environments.md.

Example:
    >>> response = "```python\\ndef add(a, b):\\n    return a + b\\n```"
    >>> code_reward("write add", response, tests="assert add(1, 2) == 3\\nassert add(0, 0) == 1")
    0.5
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nemo_rl.environments import RewardEnvironment

from nemo_rl_envs.answer_extraction import extract_code_block
from nemo_rl_envs.code_tests import FORGEABLE_HINT, ParsedTests, parse_tests, split_tests
from nemo_rl_envs.sandbox import Sandbox, SandboxResult

__all__ = [
    "CodeExecutionEnvironment",
    "TestReport",
    "code_reward",
    "make_code_reward",
    "run_python_tests",
    "split_tests",
]


@dataclass
class TestReport:
    """What one sandboxed run earned: tests passed out of total, and why others failed."""

    __test__ = False  # not a pytest test class, despite the name

    passed: int
    total: int
    timed_out: bool = False
    error: str | None = None  # why the run failed tests wholesale (crash, limit, tampering)
    failures: dict[int, str] = field(default_factory=dict)

    @property
    def fraction(self) -> float:
        return self.passed / self.total if self.total else 0.0


def judge(parsed: ParsedTests, result: SandboxResult) -> TestReport:
    """Score a run's records against the expected values this process kept.

    Example:
        >>> from nemo_rl_envs.sandbox import SandboxResult
        >>> forged = SandboxResult(records=[{"i": 0, "value": "3"}, {"i": 0, "value": "3"}])
        >>> judge(parse_tests(["assert add(1, 2) == 3"]), forged).error
        'the result channel was tampered with (record 2: test 0 out of order or repeated)'
    """
    report = TestReport(passed=0, total=len(parsed.tests), timed_out=result.timed_out)
    tampered, done, next_index = None, False, 0
    for n, record in enumerate(result.records, 1):
        if done or "garbled" in record:
            tampered = f"record {n}: {'after the end' if done else 'unreadable'}"
            break
        if record.get("done") is True and len(record) == 1:
            done = True
            continue
        stage_error = record.get("solution_error") or record.get("setup_error")
        if stage_error is not None and len(record) == 1:
            stage = "solution" if "solution_error" in record else "setup"
            report.error = f"{stage} error: {str(stage_error)[:200]}"
            done = True
            continue
        index = record.get("i")
        if type(index) is not int or index != next_index or index >= report.total:
            tampered = f"record {n}: test {index!r:.20} out of order or repeated"
            break
        next_index += 1
        reason = parsed.tests[index].judge(record)
        if reason is None:
            report.passed += 1
        else:
            report.failures[index] = reason
    if result.void:
        report.passed, report.failures = 0, {}
        report.error = f"limit exceeded: {result.killed}"
    elif tampered is not None:
        report.passed, report.failures = 0, {}
        report.error = f"the result channel was tampered with ({tampered})"
    elif report.error is None and result.killed is not None:
        report.error = result.killed
    elif report.error is None and not done:
        report.error = f"the run ended before its tests finished (exit status {result.exit_code})"
    return report


def run_python_tests(
    code: str,
    tests: Any,
    timeout_s: float = 5.0,
    memory_mb: int = 1024,
    *,
    sandbox: Sandbox | None = None,
    allow_forgeable_tests: bool = False,
) -> TestReport:
    """Run `code` then each test in the sandbox and judge the results here.

    `sandbox` overrides `memory_mb` (and gives every other limit); tests that only the sandbox
    could judge raise ValueError unless `allow_forgeable_tests`.

    Example:
        >>> run_python_tests("x = 2", ["assert x == 2", "assert x == 3"]).passed
        1
    """
    parsed = parse_tests(tests)
    if parsed.forgeable and not allow_forgeable_tests:
        raise ValueError(
            f"test {parsed.tests.index(parsed.forgeable[0])} "
            f"({parsed.forgeable[0].source!r:.80}) can only be judged inside the sandbox, where "
            f"the program under test can forge its verdict; {FORGEABLE_HINT}"
        )
    box = sandbox or Sandbox(memory_mb=memory_mb)
    job = {"solution": code, "setup": parsed.setup, "tests": [t.job for t in parsed.tests]}
    return judge(parsed, box.run(job, timeout_s))


def make_code_reward(
    timeout_s: float = 5.0,
    memory_mb: int = 1024,
    *,
    sandbox: Sandbox | None = None,
    allow_forgeable_tests: bool = False,
) -> Callable[..., float]:
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
    box = sandbox or Sandbox(memory_mb=memory_mb)

    def code_reward(prompt: str, response: str, tests: Any, **_: Any) -> float:
        code = extract_code_block(response or "")
        if code is None:
            return 0.0
        report = run_python_tests(
            code, tests, timeout_s, sandbox=box, allow_forgeable_tests=allow_forgeable_tests
        )
        return report.fraction

    return code_reward


code_reward = make_code_reward()
code_reward.__doc__ = "Fraction of the row's tests passed by the response's code (5 s, 1 GiB)."


class CodeExecutionEnvironment(RewardEnvironment):
    """Single-turn coding: reward component `code_reward` = fraction of the row's `tests` passed.

    Sandboxed runs wait on subprocesses, so samples are scored concurrently in `max_workers`
    threads. The sandbox is probed at construction: SandboxUnavailableError says what is missing.

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
        *,
        max_procs: int = 32,
        isolation: str = "namespaces",
        allow_forgeable_tests: bool = False,
    ) -> None:
        self.sandbox = Sandbox(memory_mb=memory_mb, max_procs=max_procs, isolation=isolation)
        self.sandbox.check()
        reward = make_code_reward(
            timeout_s, memory_mb, sandbox=self.sandbox, allow_forgeable_tests=allow_forgeable_tests
        )
        super().__init__(
            {"code_reward": reward},
            on_error=on_error,  # type: ignore[arg-type]
            concurrent=True,
            max_workers=max_workers,
        )
