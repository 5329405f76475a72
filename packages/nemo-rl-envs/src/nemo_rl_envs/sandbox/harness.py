"""Inside the sandbox: run the solution and report what each test produced, never a verdict.

Runs in the sandbox's PID 1 after privileges are dropped (see `launcher`). The job is
`{"solution", "setup", "tests"}`; each test is one of
  `{"kind": "value", "pre": code, "expr": code}`: run `pre`, send the value of `expr`;
  `{"kind": "assert", "code": code}`: run it, send whether it raised (the only forgeable kind);
  `{"kind": "io", "stdin": text}`: run the solution as `__main__` in a fork with that stdin,
  send its stdout.
Records go to the channel fd as lines of dict reprs `{"i": n, ...}` in test order, then `{"done": true}`.
Values are sent as `repr` of plain built-in data only (exact types: no subclass or object can
carry an `__eq__` that always says yes); the host decodes them with `ast.literal_eval` and
compares them with the expected values it never sent here.

Example:
    >>> plain_repr([1, (2.5, "x"), {"k": None}])
    "[1, (2.5, 'x'), {'k': None}]"
"""

from __future__ import annotations

import os
import sys

MAX_VALUE_CHARS = 64 * 1024
MAX_STDOUT_BYTES = 1024 * 1024
_SCALARS = (type(None), bool, int, float, complex, str, bytes)
_CONTAINERS = (list, tuple, set, frozenset)


def _check_plain(value: object, depth: int = 0) -> None:
    kind = type(value)  # exact types only: a subclass could override __eq__ or __repr__
    if depth > 50:
        raise ValueError("result nested too deeply")
    if kind in _SCALARS:
        return
    if kind in _CONTAINERS:
        for item in value:  # type: ignore[attr-defined]
            _check_plain(item, depth + 1)
        return
    if kind is dict:
        for key, item in value.items():  # type: ignore[attr-defined]
            _check_plain(key, depth + 1)
            _check_plain(item, depth + 1)
        return
    raise TypeError(f"result of type {kind.__name__} is not plain data (int, str, list, ...)")


def plain_repr(value: object) -> str:
    """repr of a plain built-in value; TypeError/ValueError for anything else or anything huge."""
    _check_plain(value)
    text = repr(value)
    if len(text) > MAX_VALUE_CHARS:
        raise ValueError(f"result longer than {MAX_VALUE_CHARS} characters")
    return text


def _describe(err: BaseException) -> str:
    return " ".join(f"{type(err).__name__}: {err}".split())[:200]


def _send(channel: int, record: dict) -> None:
    data = (repr(record) + "\n").encode()  # repr, not json: json costs ~8 ms to import
    while data:
        data = data[os.write(channel, data) :]


def _run_io_test(solution: str, stdin: str, index: int, channel: int) -> dict:
    in_path, out_path = f".stdin{index}", f".stdout{index}"  # in the working directory
    with open(in_path, "w") as f:
        f.write(stdin)
    pid = os.fork()
    if pid == 0:
        os.close(channel)
        os.dup2(os.open(in_path, os.O_RDONLY), 0)
        os.dup2(os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), 1)
        sys.stdin = open(0, closefd=False)  # fresh wrappers: nothing buffered from /dev/null
        sys.stdout = open(1, "w", closefd=False)
        code = 0
        try:
            exec(compile(solution, "solution.py", "exec"), {"__name__": "__main__"})
        except SystemExit as err:
            code = err.code if isinstance(err.code, int) else 1
        except BaseException as err:
            sys.stdout.flush()
            os.write(2, _describe(err).encode())
            os._exit(1)
        sys.stdout.flush()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        return {"i": index, "error": f"exit status {code}"}
    with open(out_path, "rb") as f:
        out = f.read(MAX_STDOUT_BYTES + 1)
    if len(out) > MAX_STDOUT_BYTES:
        return {"i": index, "error": "stdout over 1 MiB"}
    return {"i": index, "stdout": out.decode("utf-8", "replace")}


def _run_test(test: dict, namespace: dict, index: int) -> dict:
    scope = dict(namespace)  # one test's assignments do not leak into the next
    try:
        if test["kind"] == "value":
            exec(compile(test["pre"], f"test_{index}.py", "exec"), scope)
            value = eval(compile(test["expr"], f"test_{index}.py", "eval"), scope)
            return {"i": index, "value": plain_repr(value)}
        exec(compile(test["code"], f"test_{index}.py", "exec"), scope)
        return {"i": index, "ok": True}
    except BaseException as err:  # the test failed, whatever the solution raised
        return {"i": index, "error": _describe(err)}


def run(job: dict, channel: int) -> None:
    """Run `job` and write its records to `channel` (see the module docstring)."""
    tests = job["tests"]
    if tests and tests[0]["kind"] == "io":
        for i, test in enumerate(tests):
            _send(channel, _run_io_test(job["solution"], test["stdin"], i, channel))
        _send(channel, {"done": True})
        return
    namespace: dict = {"__name__": "solution"}  # a `__main__` block (often reading stdin) stays off
    for stage, code in (("solution", job["solution"]), ("setup", job["setup"])):
        try:
            exec(compile(code, f"{stage}.py", "exec"), namespace)
        except BaseException as err:  # SystemExit and MemoryError included: the stage failed
            _send(channel, {f"{stage}_error": _describe(err)})
            return
    for i, test in enumerate(tests):
        _send(channel, _run_test(test, namespace, i))
    _send(channel, {"done": True})
