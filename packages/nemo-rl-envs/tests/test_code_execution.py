"""Code rewards: subprocess execution, partial credit, timeouts, limits, test splitting."""

from __future__ import annotations

import os
import time
from pathlib import Path

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
    assert (report.passed, report.total) == (2, 3) and "AssertionError" in report.failures[2]


def test_tests_do_not_leak_assignments_into_each_other():
    report = run_python_tests("", ["x = 1\nassert x == 1", "assert 'x' not in dir()"])
    assert report.passed == 2


def test_a_crashing_solution_fails_every_test_and_says_why():
    report = run_python_tests("raise SystemExit(3)", ["assert True", "assert True"])
    assert report.passed == 0 and report.error == "solution error: SystemExit: 3"


def test_code_never_runs_in_the_calling_process(tmp_path: Path):
    marker = tmp_path / "pid.txt"
    code = f"import os\nopen({str(marker)!r}, 'w').write(str(os.getpid()))"
    assert run_python_tests(code, ["assert True"]).passed == 1
    assert int(marker.read_text()) != os.getpid()


def test_timeout_keeps_finished_tests_and_kills_the_process_group(tmp_path: Path):
    pid_file = tmp_path / "child.txt"
    code = (
        "import subprocess, time\n"
        f"child = subprocess.Popen(['sleep', '60'])\nopen({str(pid_file)!r}, 'w').write(str(child.pid))\n"
    )
    tests = ["assert True", "while True: pass", "assert True"]
    start = time.monotonic()
    report = run_python_tests(code, tests, timeout_s=1.0)
    assert time.monotonic() - start < 10
    assert report.timed_out and report.passed == 1 and report.fraction == pytest.approx(1 / 3)
    grandchild = int(pid_file.read_text())
    status = Path(f"/proc/{grandchild}/status")
    assert not status.exists() or "zombie" in status.read_text()  # killed with its parent


def test_memory_limit_stops_a_runaway_allocation():
    report = run_python_tests("big = bytearray(1024 * 1024 * 1024)", ["assert True"], memory_mb=256)
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
