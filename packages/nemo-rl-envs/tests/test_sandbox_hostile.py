"""Hostile programs, as a policy would write them, against the real sandbox (issue #13).

Each one would score, harm the trainer or leak a secret if it were not contained. Every case must
end within 10 s with reward 0 and a recorded reason, leave this process, its files and its
environment untouched, and leave no process behind.
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from nemo_rl_envs import run_python_tests
from nemo_rl_envs.sandbox import Sandbox, cgroups
from nemo_rl_envs.sandbox.testing import sandboxed_processes

SECRET = "hf_not_for_the_policy_0123456789"
HOST_PID = os.getpid()
HOST_CWD = os.getcwd()


def _shadow_head() -> str:
    try:
        return Path("/etc/shadow").read_text()[:12]
    except OSError:
        return "root:"


LEAK_ENV = f"""
import os
def leak():
    for pid in ["self", "1", "{HOST_PID}"] + os.listdir("/proc"):
        try:
            data = open(f"/proc/{{pid}}/environ", "rb").read().decode()
        except Exception:
            continue
        for item in data.split("\\0"):
            if item.startswith("HF_TOKEN="):
                return item.split("=", 1)[1]
    return os.environ.get("HF_TOKEN", "")
"""

MEMORY_TOGETHER = """
import os, time
kids = []
for _ in range(4):
    pid = os.fork()
    if pid == 0:
        block = b"x" * (200 * 1024 * 1024)  # touched pages: really resident
        time.sleep(2)
        os._exit(0)
    kids.append(pid)
for pid in kids:
    os.waitpid(pid, 0)
def f():
    return 1
"""

FORK_BOMB = """
import os, time
def forks():
    n = 0
    while n < 500:
        try:
            if os.fork() == 0:
                time.sleep(30)
                os._exit(0)
        except OSError:
            break
        n += 1
    return 1
"""

SETSID_DAEMON = """
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        time.sleep(60)
    os._exit(0)
while True:
    pass
"""

FORGE_CHANNEL = """
import os
forged = b"{'i': 0, 'value': '1'}\\n{'i': 1, 'value': '1'}\\n{'done': True}\\n"
for fd in range(3, 256):
    try:
        os.write(fd, forged)
    except OSError:
        pass
os._exit(0)
"""

CASES = {
    # Forged verdicts
    "appends PASS lines to results.txt": (
        "open('results.txt', 'a').write('PASS 0\\n' * 100)",
        ["assert secret() == 41"],
        {},
    ),
    "prints PASS lines and exits": (
        "print('PASS 0\\nPASS 1')\nimport sys\nsys.exit(0)",
        ["assert secret() == 41", "assert secret() == 42"],
        {},
    ),
    "writes forged records to every fd and exits": (
        FORGE_CHANNEL,
        ["assert secret() == 41", "assert secret() == 42"],
        {},
    ),
    "returns an object equal to anything": (
        "class Yes:\n    def __eq__(self, other):\n        return True\ndef secret():\n    return Yes()",
        ["assert secret() == 41"],
        {},
    ),
    # The trainer
    "kills its parent and the trainer": (
        f"import os\nfor pid in (os.getppid(), {HOST_PID}, -1):\n    try:\n        os.kill(pid, 9)\n"
        "    except OSError:\n        pass",
        ["assert secret() == 41"],
        {},
    ),
    # Processes
    "200 forked children outlive the call": (
        "import os, time\nfor _ in range(200):\n    if os.fork() == 0:\n        time.sleep(60)\n"
        "        os._exit(0)\nwhile True:\n    pass",
        ["assert len('ab') == 2"],
        {"max_procs": 256},
    ),
    "setsid daemon escapes the timeout kill": (SETSID_DAEMON, ["assert len('ab') == 2"], {}),
    "fork bomb": (FORK_BOMB + "\nwhile True:\n    pass", ["assert forks() == 1"], {}),
    "4 x 200 MB under a 256 MB limit": (MEMORY_TOGETHER, ["assert f() == 1"], {"memory_mb": 256}),
    "one huge allocation": (
        "block = b'x' * (2 * 1024 ** 3)",
        ["assert len(block) == 2147483648"],
        {"memory_mb": 256},
    ),
    "infinite loop": ("while True:\n    pass", ["assert len('ab') == 2"], {}),
    "fills the disk": (
        "open('big', 'wb').write(b'x' * 200 * 1024 * 1024)\ndef f():\n    return 1",
        ["assert f() == 1"],
        {},
    ),
    # Filesystem, secrets and network
    "writes outside its directory": (
        "import pathlib\nfor p in ('{out}', '/usr/pwned', '/pwned'):\n"
        "    pathlib.Path(p).write_text('pwned')\ndef f():\n    return 1",
        ["assert f() == 1"],
        {},
    ),
    "reads /etc/shadow": (
        "def leak():\n    return open('/etc/shadow').read()[:12]",
        [f"assert leak() == {_shadow_head()!r}"],
        {},
    ),
    "reads the host's HF_TOKEN": (LEAK_ENV, [f"assert leak() == {SECRET!r}"], {}),
    "reads the host's cwd through /proc": (
        f"import os\ndef leak():\n    return os.readlink('/proc/{HOST_PID}/cwd')",
        [f"assert leak() == {HOST_CWD!r}"],
        {},
    ),
    "connects to 127.0.0.1": (
        "import socket\ndef leak():\n    s = socket.create_connection(('127.0.0.1', {port}), 2)\n"
        "    return s.recv(64).decode()",
        [f"assert leak() == {SECRET!r}"],
        {},
    ),
    "creates a user namespace to regain capabilities": (
        "import ctypes\ndef escape():\n    return ctypes.CDLL(None).unshare(0x10000000)",
        ["assert escape() == 0"],
        {},
    ),
    "floods the result channel": (
        "import os\nfor fd in range(3, 64):\n    try:\n        os.write(fd, b'x' * (16 << 20))\n"
        "    except OSError:\n        pass",
        ["assert secret() == 41"],
        {},
    ),
}


@pytest.fixture
def listener():
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    accepted: list[object] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            accepted.append(conn)
            conn.sendall(SECRET.encode())
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    stop.set()
    thread.join()
    server.close()


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_program_is_contained(name, tmp_path, monkeypatch, listener):
    if name.startswith("4 x 200") and cgroups.detect() is None:
        pytest.skip("no writable cgroup here: total memory is capped per process only (warned)")
    port, accepted = listener
    monkeypatch.setenv("HF_TOKEN", SECRET)
    out = tmp_path / "pwned.txt"
    code, tests, limits = CASES[name]
    code = code.replace("{out}", str(out)).replace("{port}", str(port))
    env_before = dict(os.environ)
    box = Sandbox(**{"memory_mb": 512, "max_procs": 32, **limits})

    start = time.monotonic()
    report = run_python_tests(code, tests, timeout_s=2.0, sandbox=box)
    elapsed = time.monotonic() - start

    assert elapsed < 10
    assert report.fraction == 0.0, report
    assert report.error or report.failures  # a recorded reason
    assert dict(os.environ) == env_before and not out.exists() and not accepted
    assert not Path("/pwned").exists() and not Path("/usr/pwned").exists()
    assert sandboxed_processes() == []


def test_process_count_is_capped_and_nothing_outlives_the_run():
    box = Sandbox(max_procs=16)
    job = {
        "solution": FORK_BOMB.replace("return 1", "return n"),
        "setup": "",
        "tests": [{"kind": "value", "pre": "", "expr": "forks()"}],
    }
    result = box.run(job, timeout_s=5.0)
    assert int(result.records[0]["value"]) < 16
    assert sandboxed_processes() == []


def test_threads_and_subprocesses_still_work_under_the_seccomp_filter():
    code = (
        "import subprocess, threading\nout = []\nt = threading.Thread(target=out.append, args=(1,))\n"
        "t.start()\nt.join()\nout.append(subprocess.run(['echo', 'hi'], capture_output=True).stdout)"
    )
    seccomp_mode = "open('/proc/self/status').read().split('Seccomp:')[1].split()[0]"
    report = run_python_tests(
        code, ["assert out == [1, b'hi\\n']", f"assert {seccomp_mode} == '2'"]
    )
    assert report.passed == 2, report


def test_the_trainer_is_invisible_from_inside():
    job = {
        "solution": "import os",
        "setup": "",
        "tests": [
            {
                "kind": "value",
                "pre": "",
                "expr": "(os.getpid(), os.getppid(), sorted(os.listdir('/proc'))[:3])",
            },
            {"kind": "value", "pre": "", "expr": "dict(os.environ)"},
            {
                "kind": "value",
                "pre": "",
                "expr": "open('/proc/self/status').read().split('CapEff:')[1].split()[0]",
            },
        ],
    }
    values = [r["value"] for r in Sandbox().run(job, timeout_s=5.0).records if "value" in r]
    assert values[0].startswith("(1, 0, ")
    assert "HF_TOKEN" not in values[1] and "/tmp" in values[1]
    assert values[2] == "'0000000000000000'"


AS_A_USER = """
import sys, types
pkg = types.ModuleType("nemo_rl_envs")  # the sandbox alone: no torch etc. for this interpreter
pkg.__path__ = [sys.argv[1] + "/nemo_rl_envs"]
sys.modules["nemo_rl_envs"] = pkg
from nemo_rl_envs.sandbox import Sandbox
box = Sandbox(memory_mb=256, max_procs=8)
print(box.check())
expr = "(os.getpid(), os.getuid(), os.path.exists('/etc/shadow'))"
job = {"solution": "import os", "setup": "", "tests": [{"kind": "value", "pre": "", "expr": expr}]}
print(box.run(job, 5).records[0]["value"])
"""


@pytest.mark.skipif(
    os.geteuid() != 0 or not Path("/usr/bin/setpriv").exists() or sys.version_info < (3, 10),
    reason="needs root (to become an unprivileged user) and setpriv",
)
def test_as_an_unprivileged_user_it_uses_a_user_namespace():
    python = Path("/usr/bin/python3")
    if not python.exists():
        pytest.skip("no system python3 that an unprivileged user can run")
    src = Path(__file__).parents[1] / "src"
    argv = ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    argv += [str(python), "-I", "-c", AS_A_USER, str(src)]
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"}
    )
    assert done.returncode == 0, done.stderr
    description, facts = done.stdout.splitlines()
    assert "user namespace" in description and facts == "(1, 1000, False)"
    assert sandboxed_processes() == []


REFUSAL = """
import platform, sys, types
pkg = types.ModuleType("nemo_rl_envs")
pkg.__path__ = [sys.argv[1] + "/nemo_rl_envs"]
sys.modules["nemo_rl_envs"] = pkg
from nemo_rl_envs.sandbox import Sandbox, SandboxUnavailableError, seccomp
seccomp.install(platform.machine())  # like a container that forbids namespaces
try:
    Sandbox().check()
except SandboxUnavailableError as err:
    print(err)
"""


@pytest.mark.skipif(platform.machine() not in ("x86_64", "aarch64"), reason="no filter here")
def test_without_namespaces_it_refuses_and_says_how_to_enable_them():
    src = Path(__file__).parents[1] / "src"
    argv = [sys.executable, "-I", "-c", REFUSAL, str(src)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert "could not set up containment (SETUP namespaces: PermissionError" in done.stdout
    assert "isolation='none'" in done.stdout and "unprivileged_userns_clone" in done.stdout
