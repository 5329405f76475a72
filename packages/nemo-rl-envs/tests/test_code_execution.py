"""Code rewards: sandboxed execution judged by the host, partial credit, timeouts, limits, test
formats (hostile programs are in test_sandbox_hostile.py)."""

from __future__ import annotations

import threading
import time
import warnings

import pytest
from nemo_rl.environments import RewardFunctionError
from nemo_rl_envs import (
    CodeExecutionEnvironment,
    code_reward,
    extract_code_block,
    make_code_reward,
    run_python_tests,
)
from nemo_rl_envs.code_execution import split_tests
from nemo_rl_envs.sandbox import Sandbox, SandboxUnavailableError, cgroups
from nemo_rl_envs.sandbox.testing import sandboxed_processes

ADD = "Here you go:\n```python\ndef add(a, b):\n    return a + b\n```\n"


def test_extract_code_block_prefers_the_last_python_block():
    text = "```bash\nls\n```\n```python\nx = 1\n```\ntext\n```py\nx = 2\n```"
    assert extract_code_block(text) == "x = 2\n"
    assert extract_code_block("```\ny = 3\n```") == "y = 3\n"
    assert extract_code_block("```bash\nls\n```") is None
    assert extract_code_block("def f(): pass") is None


def test_split_tests_separates_setup_from_asserts():
    setup, tests = split_tests("import math\nassert add(1, 2) == 3\nX = 2\nassert add(X, X) == 4")
    assert setup == "import math\nX = 2"
    assert tests == ["assert add(1, 2) == 3", "assert add(X, X) == 4"]
    assert split_tests("check(add)") == ("", ["check(add)"])
    assert split_tests(["assert 1", "assert 2"]) == ("", ["assert 1", "assert 2"])


@pytest.mark.parametrize(
    ("tests", "message"),
    [("assert (", "not valid Python"), ([], "non-empty list"), ("", "must be Python code")],
)
def test_bad_tests_are_data_errors(tests, message):
    with pytest.raises(ValueError, match=message):
        split_tests(tests)


def test_reward_is_the_fraction_of_tests_passed():
    tests = ["assert add(1, 2) == 3", "assert add(-1, 1) == 0", "assert add(2, 2) == 5"]
    assert code_reward("write add", ADD, tests=tests) == pytest.approx(2 / 3)
    report = run_python_tests("def add(a, b):\n    return a + b\n", tests)
    assert (report.passed, report.total) == (2, 3) and report.failures[2] == "got 4, expected 5"
    assert code_reward("write add", ADD.replace("a + b", "a * b"), tests=tests) == 0.0


def test_tests_do_not_leak_assignments_into_each_other():
    report = run_python_tests("", ["x = 1\nassert x == 1", "assert ('x' in dir()) == False"])
    assert report.passed == 2


def test_stdin_stdout_cases_are_compared_by_the_host():
    code = "a, b = map(int, input().split())\nprint(a + b)\n"
    cases = [
        {"input": "1 2\n", "output": "3\n"},
        {"input": "5 5", "output": "10"},
        {"input": "2 2", "output": "5"},
    ]
    report = run_python_tests(code, cases)
    assert (report.passed, report.failures) == (2, {2: "wrong output"})
    assert run_python_tests("print(input())\nraise SystemExit(2)", cases[:1]).failures == {
        0: "exit status 2"
    }


def test_tests_only_the_sandbox_could_judge_are_refused_unless_allowed():
    with pytest.raises(ValueError, match="can only be judged inside the sandbox.*forge"):
        run_python_tests("x = [1, 2]", ["assert sorted(x)"])
    report = run_python_tests("x = [1, 2]", ["assert sorted(x)"], allow_forgeable_tests=True)
    assert report.passed == 1


def test_returned_objects_must_be_plain_data():
    code = "class Yes(int):\n    def __eq__(self, other):\n        return True\nx = Yes(1)"
    report = run_python_tests(code, ["assert x == 2", "assert [x] == [2]"])
    assert report.passed == 0 and "not plain data" in report.failures[1]


def test_a_crashing_solution_fails_every_test_and_says_why():
    report = run_python_tests("raise SystemExit(3)", ["assert len('') == 0"] * 2)
    assert report.passed == 0 and report.error == "solution error: SystemExit: 3"


def test_code_runs_as_pid_1_of_its_own_namespace():
    assert run_python_tests("import os", ["assert os.getpid() == 1"]).passed == 1


def test_timeout_keeps_finished_tests_and_kills_every_process():
    code = "import subprocess\nchild = subprocess.Popen(['sleep', '60'])\n"
    tests = [
        "assert len('a') == 1",
        "while True: pass\nassert 1 == len('a')",
        "assert len('') == 0",
    ]
    start = time.monotonic()
    report = run_python_tests(code, tests, timeout_s=1.0)
    assert time.monotonic() - start < 10
    assert report.timed_out and report.passed == 1 and report.fraction == pytest.approx(1 / 3)
    assert report.error == "timed out" and sandboxed_processes() == []


def test_memory_limit_stops_a_runaway_allocation():
    report = run_python_tests("big = bytearray(1024 ** 3)", ["assert len(big) == 0"], memory_mb=256)
    assert report.passed == 0 and "MemoryError" in report.error


def test_no_code_block_scores_zero_and_bad_limits_are_rejected():
    assert code_reward("write add", "def add(a, b): return a + b", tests=["assert True"]) == 0.0
    with pytest.raises(ValueError, match="must be positive"):
        make_code_reward(timeout_s=0)


def test_code_environment_scores_a_batch_and_reports_bad_test_data():
    env = CodeExecutionEnvironment(timeout_s=5.0, max_workers=2)
    wrong = ADD.replace("a + b", "a - b")
    convos = [
        [{"role": "user", "content": "add"}, {"role": "assistant", "content": response}]
        for response in (ADD, wrong)
    ]
    rows = [{"tests": "assert add(1, 2) == 3\nassert add(0, 0) == 0"}] * 2
    assert env.step(convos, rows).rewards["code_reward"].tolist() == [1.0, 0.5]
    with pytest.raises(RewardFunctionError, match="not valid Python.*fix the dataset"):
        env.step(convos[:1], [{"tests": "assert ("}])


def test_runs_are_independent_across_threads():
    results: list[float] = []

    def score(i: int) -> None:
        code = f"def f():\n    return {i}"
        results.append(run_python_tests(code, [f"assert f() == {i}", "assert f() == -1"]).fraction)

    threads = [threading.Thread(target=score, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [0.5] * 6 and sandboxed_processes() == []


def test_missing_containment_refuses_and_trusted_mode_says_what_it_lacks(monkeypatch):
    monkeypatch.setattr(cgroups, "detect", lambda: None)
    with pytest.raises(SandboxUnavailableError, match="no writable cgroup.*require_cgroup"):
        Sandbox(require_cgroup=True, tmp_mb=63).check()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        box = Sandbox(isolation="none", tmp_mb=62)
        assert "trusted code only" in box.check()
    assert "Trusted code only" in str(caught[0].message)
    assert run_python_tests("x = 3", ["assert x == 3"], sandbox=box).passed == 1
