"""For tests of code that uses the sandbox: find processes a run may have left behind.

Example:
    >>> sandboxed_processes()  # none while no sandboxed run is in flight
    []
"""

from __future__ import annotations

import os
from pathlib import Path


def _pid_ns(pid: str) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def sandboxed_processes() -> list[int]:
    """Live processes in another PID namespace run by a sandbox uid (or, as a user, by us)."""
    own_ns, found = _pid_ns("self"), []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or _pid_ns(entry.name) in (None, own_ns):
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        uid = int(status.split("Uid:")[1].split()[0])
        zombie = "State:\tZ" in status
        if not zombie and (uid >= 1_000_000 or (os.geteuid() != 0 and uid == os.geteuid())):
            found.append(int(entry.name))
    return found
