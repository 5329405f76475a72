"""The host side of the sandbox: start the launcher, feed it a job, read its records, clean up.

A `Sandbox` is immutable configuration; `run` may be called from any number of threads or
processes at once (each run gets its own launcher process, namespaces, uid and cgroup; the only
shared state is a once-per-process probe guarded by a lock).

Example:
    >>> box = Sandbox(memory_mb=256)
    >>> job = {"solution": "x = 6 * 7", "setup": "", "tests": [{"kind": "value", "pre": "", "expr": "x"}]}
    >>> box.run(job, timeout_s=5).records[0]  # needs Linux namespaces  # doctest: +SKIP
    {'i': 0, 'value': '42'}
"""

from __future__ import annotations

import ast
import marshal
import os
import platform
import secrets
import selectors
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from nemo_rl_envs.sandbox import cgroups
from nemo_rl_envs.sandbox.seccomp import supported as seccomp_supported

LAUNCHER = Path(__file__).with_name("launcher.py")
MAX_CHANNEL_BYTES = 8 * 1024 * 1024
SETUP_FAILED = 3

ENABLE_HINT = (
    "The sandbox needs Linux PID, mount and network namespaces, plus user namespaces when not "
    "root. As root they work out of the box; as a user enable unprivileged user namespaces "
    "(`sysctl -w kernel.unprivileged_userns_clone=1` on Debian, `user.max_user_namespaces=15000`, "
    "`kernel.apparmor_restrict_unprivileged_userns=0` on Ubuntu 24.04+); in Docker run with "
    "`--privileged` (or `--cap-add SYS_ADMIN --security-opt seccomp=unconfined --security-opt "
    "apparmor=unconfined`). For code you trust, isolation='none' runs it with resource limits only."
)


class SandboxUnavailableError(RuntimeError):
    """This machine cannot give the containment the sandbox requires; the message says why."""


@dataclass
class SandboxResult:
    """What came back from one run: the harness's records and how the run ended."""

    records: list[dict] = field(default_factory=list)
    timed_out: bool = False
    killed: str | None = None  # why the host or the kernel stopped it, if it was stopped
    void: bool = False  # a limit was broken: the run earns nothing, whatever it reported
    exit_code: int | None = None
    wall_s: float = 0.0


_probe_lock = threading.Lock()
_probed: dict[tuple, str] = {}


@dataclass(frozen=True)
class Sandbox:
    """Limits and isolation for untrusted Python; see the package docstring for the threat model.

    isolation: "namespaces" (default; refuses to run if it cannot have them) or "none" (trusted
    code only: rlimits and a process-group kill, no isolation, a warning on first use).
    require_cgroup: refuse instead of warning when no cgroup can cap total memory and processes.
    """

    memory_mb: int = 1024
    max_procs: int = 32
    tmp_mb: int = 64
    file_mb: int = 16
    isolation: str = "namespaces"
    require_cgroup: bool = False
    extra_ro_paths: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.isolation not in ("namespaces", "none"):
            raise ValueError(f"isolation must be 'namespaces' or 'none', got {self.isolation!r}")
        if min(self.memory_mb, self.max_procs, self.tmp_mb, self.file_mb) <= 0:
            raise ValueError(f"sandbox limits must be positive: {self}")

    def _ro_paths(self) -> list[str]:
        paths = ["/usr", "/etc/ld.so.cache", os.path.realpath(sys.base_prefix)]
        paths.append(os.path.dirname(os.path.realpath(sys.executable)))
        return [p for p in dict.fromkeys(paths + list(self.extra_ro_paths)) if p != "/"]

    def check(self) -> str:
        """Probe once per process that containment works here; return a one-line description.

        Raises SandboxUnavailableError naming what is missing and how to enable it.
        """
        key = (self.isolation, self.require_cgroup)
        with _probe_lock:
            if key not in _probed:
                _probed[key] = self._probe()
            return _probed[key]

    def _probe(self) -> str:
        backend = cgroups.detect()
        if self.isolation == "none":
            warnings.warn(
                "code sandbox isolation='none': programs run with resource limits only and can "
                "read and write files, use the network and signal processes. Trusted code only.",
                stacklevel=4,
            )
            return "no isolation (trusted code only): rlimits, process-group kill"
        if backend is None:
            message = (
                "no writable cgroup (v2 delegated, or v1 memory+pids) for per-run limits: memory "
                f"is capped per process ({self.memory_mb} MB) and processes per run "
                f"({self.max_procs}), not their total"
            )
            if self.require_cgroup:
                raise SandboxUnavailableError(f"code sandbox: {message} (require_cgroup=True)")
            warnings.warn(f"code sandbox: {message}", stacklevel=4)
        # What the launcher promised, seen from inside: PID 1, not root, no host /etc, no NICs.
        facts = "(os.getpid(), os.geteuid() != 0, os.path.exists('/etc/passwd'), nics())"
        pre = "import os, socket\nnics = lambda: sorted(n for _, n in socket.if_nameindex())"
        job = {"solution": "", "setup": "", "tests": [{"kind": "value", "pre": pre, "expr": facts}]}
        result = self._run(job, timeout_s=30.0, backend=backend)
        seen = [r.get("value", r.get("error")) for r in result.records if "i" in r]
        if seen != ["(1, True, False, ['lo'])"]:
            raise SandboxUnavailableError(
                f"code sandbox: the isolation probe saw {seen or result.records} (want PID 1, "
                f"a non-root uid, no host /etc, only a loopback interface); {ENABLE_HINT}"
            )
        uid_mode = "user namespace" if os.geteuid() != 0 else "dropped to a fresh uid"
        limits = f"cgroup v{backend.version} memory+pids" if backend else "rlimits only"
        filters = "seccomp" if seccomp_supported(platform.machine()) else "no seccomp filter here"
        return f"namespaces pid/mount/net/ipc/uts, pivot_root, {uid_mode}, no caps, {filters}, {limits}"

    def run(self, job: dict, timeout_s: float) -> SandboxResult:
        """Run one job (see `harness`) under the limits; `timeout_s` is wall-clock for all of it."""
        self.check()
        return self._run(job, timeout_s, cgroups.detect() if self.isolation != "none" else None)

    def _run(
        self, job: dict, timeout_s: float, backend: cgroups.CgroupBackend | None
    ) -> SandboxResult:
        isolate = self.isolation == "namespaces"
        memory = self.memory_mb * 1024 * 1024
        run_cgroup = None
        if backend is not None:
            try:
                run_cgroup = backend.create(memory, self.max_procs)
            except OSError as err:
                raise SandboxUnavailableError(
                    f"code sandbox: cannot create a cgroup: {err}"
                ) from err
        with tempfile.TemporaryDirectory(prefix="nemo-rl-code-") as workdir:
            cfg = {
                "isolate": isolate,
                "seccomp": seccomp_supported(platform.machine()),
                "userns": os.geteuid() != 0,
                "uid": 1_000_000 + secrets.randbelow(1_000_000_000),
                "memory_bytes": memory,
                "max_procs": self.max_procs,
                "cpu_s": max(1, int(timeout_s) + 1),  # CPU cap backs up the wall-clock timeout
                "file_bytes": self.file_mb * 1024 * 1024,
                "tmp_bytes": self.tmp_mb * 1024 * 1024,
                "ro_paths": self._ro_paths(),
                "cgroup_procs": run_cgroup.procs if run_cgroup else [],
                "workdir": workdir,
            }
            try:
                result = self._launch({**job, "sandbox": cfg}, timeout_s, isolate, workdir)
                if run_cgroup is not None and run_cgroup.oom_killed():
                    result.killed = "memory limit (all processes together) exceeded"
                    result.void = True  # the kernel killed one of its processes mid-run
            finally:
                if run_cgroup is not None:
                    run_cgroup.close()
        if result.exit_code == SETUP_FAILED and not result.records:
            raise SandboxUnavailableError(
                f"code sandbox: could not set up containment ({result.killed}). {ENABLE_HINT}"
            )
        return result

    def _launch(self, job: dict, timeout_s: float, isolate: bool, workdir: str) -> SandboxResult:
        start = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, "-I", "-S", str(LAUNCHER), str(os.getpid())],
            cwd=workdir,
            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},  # nothing of the host's environment
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        result = SandboxResult()
        try:
            try:
                process.stdin.write(marshal.dumps(job))  # type: ignore[union-attr]
                process.stdin.close()  # type: ignore[union-attr]
            except BrokenPipeError:
                pass
            data = self._read_channel(process, start + timeout_s, result)
        finally:
            if result.killed is not None:
                process.terminate()  # the launcher kills PID 1 and returns once all is gone
            try:  # after EOF the launcher only reaps PID 1; a stuck one is killed below
                process.wait(timeout=max(0.0, start + timeout_s - time.monotonic()) + 5.0)
            except subprocess.TimeoutExpired:
                pass
            if process.poll() is None:
                process.kill()  # the sandbox's PID 1 has PDEATHSIG: its namespace goes too
                if not isolate:
                    _kill_group(process.pid)
            process.wait()
            if not isolate:
                _kill_group(process.pid)  # trusted mode: children in the group
        result.exit_code = process.returncode
        stderr = process.stderr.read(4096).decode(errors="replace")  # type: ignore[union-attr]
        process.stdout.close()  # type: ignore[union-attr]
        process.stderr.close()  # type: ignore[union-attr]
        if process.returncode == SETUP_FAILED and stderr.startswith("SETUP"):
            result.killed = stderr.strip()
        result.records = _parse_records(data)
        result.wall_s = time.monotonic() - start
        return result

    @staticmethod
    def _read_channel(process: subprocess.Popen, deadline: float, result: SandboxResult) -> bytes:
        chunks: list[bytes] = []
        size = 0
        fd = process.stdout.fileno()  # type: ignore[union-attr]
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not selector.select(remaining):
                    result.timed_out = True
                    result.killed = "timed out"
                    break
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
                if size > MAX_CHANNEL_BYTES:
                    result.killed = f"sent more than {MAX_CHANNEL_BYTES} bytes of results"
                    result.void = True
                    break
        return b"".join(chunks)[:MAX_CHANNEL_BYTES]


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, 9)
    except (ProcessLookupError, PermissionError):
        pass


def _parse_records(data: bytes) -> list[dict]:
    records = []
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            record = ast.literal_eval(line.decode("utf-8", "replace"))
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            record = {"garbled": True}
        records.append(record if isinstance(record, dict) else {"garbled": True})
    return records
