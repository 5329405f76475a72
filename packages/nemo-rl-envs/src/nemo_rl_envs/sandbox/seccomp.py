"""A seccomp filter for the sandbox: deny the system calls an escape or a kernel exploit needs.

A denylist, not an allowlist (Python and what solutions import use too many calls to enumerate
safely): namespaces (`unshare`, `setns`, `clone` with namespace flags, `clone3`), mounts, `ptrace`
and cross-process memory access, kernel modules, kexec, `bpf`, `perf_event_open`, keyrings,
`userfaultfd`, io_uring, handle-based opens, clock/host/swap/reboot administration. Denied calls
fail with EPERM (`clone3` with ENOSYS, so libc falls back to `clone`, whose flags can be checked).
A call from another ABI (x32, i386) kills the process. Stdlib only (ctypes), like the launcher.

Example:
    >>> program = build_filter("x86_64")
    >>> len(program) > 40
    True
"""

from __future__ import annotations

import ctypes
import struct

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
_RET_ALLOW = 0x7FFF0000
_RET_KILL_PROCESS = 0x80000000
_RET_ERRNO = 0x00050000
_EPERM, _ENOSYS = 1, 38
_LD_ABS, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06
_NAMESPACE_FLAGS = 0x7E020000  # CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET

_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
# name: (x86_64, aarch64); calls added since 5.1 share numbers across architectures.
_DENIED = {
    "ptrace": (101, 117),
    "process_vm_readv": (310, 270),
    "process_vm_writev": (311, 271),
    "mount": (165, 40),
    "umount2": (166, 39),
    "pivot_root": (155, 41),
    "chroot": (161, 51),
    "unshare": (272, 97),
    "setns": (308, 268),
    "open_tree": (428, 428),
    "move_mount": (429, 429),
    "fsopen": (430, 430),
    "fsconfig": (431, 431),
    "fsmount": (432, 432),
    "fspick": (433, 433),
    "mount_setattr": (442, 442),
    "kexec_load": (246, 104),
    "kexec_file_load": (320, 294),
    "init_module": (175, 105),
    "finit_module": (313, 273),
    "delete_module": (176, 106),
    "bpf": (321, 280),
    "perf_event_open": (298, 241),
    "keyctl": (250, 219),
    "add_key": (248, 217),
    "request_key": (249, 218),
    "userfaultfd": (323, 282),
    "io_uring_setup": (425, 425),
    "io_uring_enter": (426, 426),
    "io_uring_register": (427, 427),
    "open_by_handle_at": (304, 265),
    "name_to_handle_at": (303, 264),
    "swapon": (167, 224),
    "swapoff": (168, 225),
    "reboot": (169, 142),
    "syslog": (103, 116),
    "acct": (163, 89),
    "settimeofday": (164, 170),
    "clock_settime": (227, 112),
    "adjtimex": (159, 171),
    "sethostname": (170, 161),
    "setdomainname": (171, 162),
    "quotactl": (179, 60),
    "personality": (135, 92),
}
_CLONE = {"x86_64": 56, "aarch64": 220}
_CLONE3 = 435


def supported(machine: str) -> bool:
    """Whether a filter exists for this architecture (platform.machine())."""
    return machine in _ARCH


def build_filter(machine: str) -> list[tuple[int, int, int, int]]:
    """The classic-BPF program as (code, jt, jf, k) instructions."""
    column = 0 if machine == "x86_64" else 1
    denied = sorted({numbers[column] for numbers in _DENIED.values()})
    prog: list[tuple[int, int, int, int]] = [
        (_LD_ABS, 0, 0, 4),  # seccomp_data.arch
        (_JEQ, 1, 0, _ARCH[machine]),
        (_RET, 0, 0, _RET_KILL_PROCESS),
        (_LD_ABS, 0, 0, 0),  # seccomp_data.nr
    ]
    if machine == "x86_64":  # x32 calls carry bit 30: another ABI, another table
        prog += [(_JGE, 0, 1, 0x40000000), (_RET, 0, 0, _RET_KILL_PROCESS)]
    prog += [(_JEQ, 0, 1, _CLONE3), (_RET, 0, 0, _RET_ERRNO | _ENOSYS)]
    for number in denied:
        prog += [(_JEQ, 0, 1, number), (_RET, 0, 0, _RET_ERRNO | _EPERM)]
    prog += [
        (_JEQ, 0, 3, _CLONE[machine]),
        (_LD_ABS, 0, 0, 16),  # args[0] (clone flags), low 32 bits
        (_JSET, 0, 1, _NAMESPACE_FLAGS),
        (_RET, 0, 0, _RET_ERRNO | _EPERM),
        (_RET, 0, 0, _RET_ALLOW),
    ]
    return prog


def install(machine: str) -> None:
    """Install the filter on this thread (inherited by every child); needs no_new_privs."""
    prog = build_filter(machine)
    raw = b"".join(struct.pack("=HBBI", *ins) for ins in prog)
    buffer = ctypes.create_string_buffer(raw, len(raw))

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = SockFprog(len(prog), ctypes.cast(buffer, ctypes.c_void_p))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP)")
