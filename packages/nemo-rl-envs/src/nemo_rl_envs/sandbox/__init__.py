"""A Linux sandbox for untrusted Python (a policy's code), built to contain attackers.

Threat model. The program under test is hostile: it knows it is being scored and will try to
forge its score, harm the trainer or read secrets. Contained (each tested by a hostile program in
tests/test_sandbox_hostile.py):
  - forged verdicts: the sandbox sends back values and outputs, never verdicts; the host compares
    them with expected values that never enter the sandbox, counts each test once, keeps rewards
    in [0, 1], and voids a run whose result channel shows tampering (see `code_tests`);
  - the trainer: fresh PID namespace (the trainer's PIDs do not exist inside; getppid() is 0),
    launcher and sandbox die with the trainer (PR_SET_PDEATHSIG);
  - processes: the program is PID 1's namespace, so forks, daemons and setsid escapes are killed
    with it, on return and on timeout; RLIMIT_NPROC under a fresh uid (or user namespace) and a
    cgroup pids.max cap the count;
  - memory: RLIMIT_AS per process and, where a cgroup can be made, a cap on all processes
    together (a run that trips it is voided); a tmpfs of tmp_mb for files; RLIMIT_FSIZE/CPU;
  - filesystem: pivot_root into a private tmpfs root with read-only binds of /usr, the Python
    install and /etc/ld.so.cache only: no /etc/shadow, no home, no project files; /proc shows
    only the sandbox's processes; writes land only in the tmpfs /tmp, discarded after the run;
  - network: a new network namespace with only a down loopback (not even 127.0.0.1 answers);
  - identity: an unprivileged uid, no capabilities, no_new_privs, an empty environment (no
    HF_TOKEN etc.); IPC and UTS namespaces;
  - kernel surface: a seccomp denylist (x86_64, aarch64) refuses new namespaces (no nested user
    namespace to regain capabilities), mounts, ptrace, bpf, perf, keyrings, io_uring, modules.
Not contained: kernel exploits through the system calls still allowed (a denylist, not an
allowlist; no filter at all on other architectures, which `Sandbox.check` reports), side channels and CPU contention with the trainer, anything readable under /usr or the Python
install, and tests that can only be judged inside the sandbox (allowed only with
allow_forgeable_tests=True, for trusted code). Gaming that is not tampering, such as special-
casing the inputs visible in the prompt, is the dataset's problem, not the sandbox's.

Requirements: Linux with PID/mount/net/IPC/UTS namespaces (as root), or unprivileged user
namespaces (as a user); otherwise `Sandbox.check` raises SandboxUnavailableError naming what is
missing. `isolation="none"` runs trusted code with rlimits only (and says so). Without a writable
cgroup (v2 delegated or v1 memory+pids) total memory is bounded only by max_procs x memory_mb, with
a warning (`require_cgroup=True` refuses instead).

Example:
    >>> from nemo_rl_envs.sandbox import Sandbox
    >>> box = Sandbox(memory_mb=256, max_procs=16)
    >>> print(box.check())  # doctest: +SKIP
    namespaces pid/mount/net/ipc/uts, pivot_root, dropped to a fresh uid, no caps, seccomp, cgroup v1 memory+pids
"""

from nemo_rl_envs.sandbox.host import Sandbox, SandboxResult, SandboxUnavailableError

__all__ = ["Sandbox", "SandboxResult", "SandboxUnavailableError"]
