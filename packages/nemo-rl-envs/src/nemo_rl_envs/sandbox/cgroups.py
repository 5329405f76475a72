"""Per-run cgroups: a memory limit over all of a run's processes together, and a process count.

Rlimits bound each process; only a cgroup bounds the sum (four 200 MB children under a 256 MB
limit). One cgroup per run is made under this process's own cgroup (so the host's limits still
apply above it), the launcher joins it before anything untrusted starts, and `close` kills
whatever is left and removes it. Works with cgroup v2 where this process's cgroup is delegated
(writable, controllers enabled for children) and with v1 `memory` + `pids` hierarchies.

Example:
    >>> backend = detect()
    >>> backend is None or backend.version in (1, 2)
    True
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class CgroupBackend:
    """Where per-run cgroups go: the parent directory per controller (v1) or one (v2)."""

    version: int
    parents: tuple[Path, ...]  # v2: (parent,); v1: (memory parent, pids parent)
    reason: str = ""

    def create(self, memory_bytes: int, max_procs: int) -> RunCgroup:
        """Make this run's cgroup(s) with the limits written; raises OSError if it cannot."""
        name = f"nemo-rl-sandbox-{uuid.uuid4().hex[:12]}"
        dirs = [parent / name for parent in self.parents]
        made: list[Path] = []
        try:
            for d in dirs:
                d.mkdir()
                made.append(d)
            if self.version == 2:
                (dirs[0] / "memory.max").write_text(str(memory_bytes))
                if (dirs[0] / "memory.swap.max").exists():
                    (dirs[0] / "memory.swap.max").write_text("0")
                (dirs[0] / "pids.max").write_text(str(max_procs))
            else:
                (dirs[0] / "memory.limit_in_bytes").write_text(str(memory_bytes))
                memsw = dirs[0] / "memory.memsw.limit_in_bytes"
                if memsw.exists():  # memsw must stay >= the memory limit: write it second
                    try:
                        memsw.write_text(str(memory_bytes))
                    except OSError:
                        pass  # swap accounting off: nothing to limit
                (dirs[1] / "pids.max").write_text(str(max_procs))
        except OSError:
            RunCgroup(self.version, tuple(made)).close()
            raise
        return RunCgroup(self.version, tuple(dirs))


@dataclass(frozen=True)
class RunCgroup:
    """One run's cgroup directories; `procs` are the files the launcher writes its pid to."""

    version: int
    dirs: tuple[Path, ...]

    @property
    def procs(self) -> list[str]:
        return [str(d / "cgroup.procs") for d in self.dirs]

    def oom_killed(self) -> bool:
        """Whether the memory limit killed a process of this run."""
        try:
            if self.version == 2:
                text = (self.dirs[0] / "memory.events").read_text()
            else:
                text = (self.dirs[0] / "memory.oom_control").read_text()
        except OSError:
            return False
        fields = dict(line.split() for line in text.splitlines() if len(line.split()) == 2)
        return int(fields.get("oom_kill", "0")) > 0

    def close(self) -> None:
        """Kill anything still inside, then remove the directories (retrying while they drain)."""
        for d in self.dirs:
            for _ in range(200):
                try:
                    pids = [int(p) for p in (d / "cgroup.procs").read_text().split()]
                except OSError:
                    pids = []
                for pid in pids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.005)


def _own_paths() -> dict[str, str]:
    paths = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") if controllers else [""]:
            paths[controller] = path
    return paths


def _writable_dir(path: Path) -> bool:
    return path.is_dir() and os.access(path, os.W_OK | os.X_OK)


def detect() -> CgroupBackend | None:
    """The cgroup backend this process can use for per-run limits, or None."""
    try:
        own = _own_paths()
    except OSError:
        return None
    if (ROOT / "cgroup.controllers").exists() and "" in own:  # unified v2
        parent = ROOT / own[""].lstrip("/")
        controls = parent / "cgroup.subtree_control"
        try:
            enabled = controls.read_text().split()
            if not {"memory", "pids"} <= set(enabled):
                controls.write_text("+memory +pids")  # EBUSY if processes sit in `parent`
        except OSError:
            return None
        return CgroupBackend(2, (parent,)) if _writable_dir(parent) else None
    if "memory" in own and "pids" in own:
        memory = ROOT / "memory" / own["memory"].lstrip("/")
        pids = ROOT / "pids" / own["pids"].lstrip("/")
        if (
            _writable_dir(memory)
            and _writable_dir(pids)
            and (memory / "memory.limit_in_bytes").exists()
        ):
            return CgroupBackend(1, (memory, pids))
    return None
