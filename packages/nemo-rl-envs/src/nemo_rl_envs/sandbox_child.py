"""The child process of the code sandbox: run a solution, then each test, and record the results.

Run as a script by `nemo_rl_envs.code_execution` (never imported by it):
`python -I sandbox_child.py <workdir>`. It reads `<workdir>/job.json`
(`{"solution", "setup", "tests", "memory_mb", "cpu_s"}`), limits its own memory, CPU time and
file sizes with `resource` where available, and appends one line per event to
`<workdir>/results.txt` as it goes (so a run killed at the timeout still reports the tests it
finished): `PASS i`, `FAIL i <error>`, or `SOLUTION_ERROR <error>` / `SETUP_ERROR <error>`.

Each test runs on a shallow copy of the namespace the solution and setup built, so one test's
assignments do not leak into the next. `__name__` is "solution", so a solution's
`if __name__ == "__main__":` block (which often reads stdin) does not run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

MAX_FILE_BYTES = 16 * 1024 * 1024


def apply_limits(memory_mb: int, cpu_s: int) -> None:
    """Cap address space, CPU seconds and written file sizes of this process (best effort)."""
    try:
        import resource
    except ImportError:  # not on this platform: the parent's wall-clock timeout still applies
        return
    limits = {
        "RLIMIT_AS": memory_mb * 1024 * 1024,
        "RLIMIT_CPU": cpu_s,
        "RLIMIT_FSIZE": MAX_FILE_BYTES,
        "RLIMIT_CORE": 0,
    }
    for name, value in limits.items():
        kind = getattr(resource, name, None)
        if kind is None:
            continue
        try:
            resource.setrlimit(kind, (value, value))
        except (ValueError, OSError):  # e.g. RLIMIT_AS is unsupported on macOS
            pass


def _describe(err: BaseException) -> str:
    return " ".join(f"{type(err).__name__}: {err}".split())[:200]


def main(workdir: Path) -> None:
    job = json.loads((workdir / "job.json").read_text())
    results = open(workdir / "results.txt", "w", buffering=1)  # line-buffered: survives a kill
    apply_limits(job["memory_mb"], job["cpu_s"])
    namespace: dict = {"__name__": "solution"}
    try:
        exec(compile(job["solution"], "solution.py", "exec"), namespace)
    except BaseException as err:  # SystemExit and MemoryError included: the solution failed
        results.write(f"SOLUTION_ERROR {_describe(err)}\n")
        return
    try:
        exec(compile(job["setup"], "test_setup.py", "exec"), namespace)
    except BaseException as err:
        results.write(f"SETUP_ERROR {_describe(err)}\n")
        return
    for i, test in enumerate(job["tests"]):
        try:
            exec(compile(test, f"test_{i}.py", "exec"), dict(namespace))
            results.write(f"PASS {i}\n")
        except BaseException as err:
            results.write(f"FAIL {i} {_describe(err)}\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
