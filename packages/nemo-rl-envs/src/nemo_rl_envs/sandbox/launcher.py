"""Stage 1 of a sandboxed run: enter namespaces, build a private root, drop privileges, run the job.

Started by `nemo_rl_envs.sandbox.host` as `python -I -S launcher.py <parent pid>` with the job (marshal)
on stdin and a pipe on stdout that carries the harness's records back; it imports only the
standard library and its sibling modules. Steps (any failure exits 3 with `SETUP <step>: <error>`
on stderr, before untrusted code runs, so the host refuses rather than runs it uncontained):

1. die with the host (PR_SET_PDEATHSIG) and join the run's cgroups (files named by the host);
2. unshare user (when not root), mount, PID, network, IPC and UTS namespaces, then fork: the child
   is PID 1 of the new PID namespace, so when it exits or is killed the kernel kills every process
   the program started (forks, daemons, setsid) and nothing outside it is visible or signalable;
3. in the child: a tmpfs root holding read-only binds of /usr and the Python install, /dev/null
   etc., a fresh /proc and a writable /tmp, then pivot_root so the host filesystem is unreachable;
4. rlimits (address space, processes, CPU, file size, open files, no core), a uid with no rights
   on the host (a random unprivileged uid as root; the caller's uid mapped to 1000 otherwise), all
   capabilities dropped, no_new_privs, a seccomp filter (see `seccomp`), an empty environment;
   then the harness runs in-process.

Example (a setup failure is this exit code, which the host turns into SandboxUnavailableError):
    >>> from nemo_rl_envs.sandbox.launcher import SETUP_FAILED
    >>> SETUP_FAILED
    3
"""

from __future__ import annotations

import marshal
import os
import signal
import sys

SETUP_FAILED = 3
SANDBOX_UID_IN_USERNS = 1000


def _fail(step: str, err: BaseException) -> None:
    os.write(2, f"SETUP {step}: {type(err).__name__}: {err}\n".encode())
    os._exit(SETUP_FAILED)


def _step(step: str, fn, *args) -> None:  # noqa: ANN001 - tiny helper, stdlib-only module
    try:
        fn(*args)
    except BaseException as err:  # fail closed: nothing untrusted has run yet
        _fail(step, err)


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def _enter_namespaces(linux, cfg: dict) -> None:  # noqa: ANN001
    flags = (
        linux.CLONE_NEWNS
        | linux.CLONE_NEWPID
        | linux.CLONE_NEWNET
        | linux.CLONE_NEWIPC
        | linux.CLONE_NEWUTS
    )
    if cfg["userns"]:
        uid, gid = os.getuid(), os.getgid()
        linux.unshare(flags | linux.CLONE_NEWUSER)
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"{SANDBOX_UID_IN_USERNS} {uid} 1\n")
        _write("/proc/self/gid_map", f"{SANDBOX_UID_IN_USERNS} {gid} 1\n")
    else:
        linux.unshare(flags)


def _bind(linux, source: str, target: str, writable: bool = False) -> None:  # noqa: ANN001
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        open(target, "a").close()
    try:
        linux.mount(source, target, None, linux.MS_BIND)
    except OSError:  # a tree with locked submounts (user namespace) needs a recursive bind
        linux.mount(source, target, None, linux.MS_BIND | linux.MS_REC)
    if not writable:
        ro = linux.MS_BIND | linux.MS_REMOUNT | linux.MS_RDONLY | linux.MS_NOSUID
        try:
            linux.mount("none", target, None, ro | linux.MS_NODEV)
        except OSError:  # /dev nodes: keep the source's nodev setting
            linux.mount("none", target, None, ro)


def _build_root(linux, cfg: dict) -> None:  # noqa: ANN001
    linux.mount("none", "/", None, linux.MS_REC | linux.MS_PRIVATE)  # nothing propagates back
    root = "/tmp"  # any existing directory: the tmpfs hides it only inside this mount namespace
    linux.mount("tmpfs", root, "tmpfs", linux.MS_NOSUID, f"size={cfg['tmp_bytes']},mode=755")
    for name in ("bin", "lib", "lib64", "lib32", "sbin"):  # merged-/usr symlinks, or real dirs
        host = f"/{name}"
        if os.path.islink(host):
            os.symlink(os.readlink(host), f"{root}/{name}")
        elif os.path.isdir(host):
            _bind(linux, host, f"{root}/{name}")
    for path in cfg["ro_paths"]:
        if os.path.exists(path):
            _bind(linux, path, root + path)
    for dev in ("null", "zero", "random", "urandom"):
        _bind(linux, f"/dev/{dev}", f"{root}/dev/{dev}", writable=True)
    os.makedirs(f"{root}/proc")
    linux.mount("proc", f"{root}/proc", "proc", linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC)
    os.makedirs(f"{root}/tmp", mode=0o777)
    os.chmod(f"{root}/tmp", 0o1777)
    os.makedirs(f"{root}/dev/shm", mode=0o777)
    os.chmod(f"{root}/dev/shm", 0o1777)
    os.chdir(root)
    linux.pivot_root(".", ".")  # the old root sits on top; detaching it leaves only the new one
    linux.umount(".")
    os.chdir("/")


def _limit(cfg: dict) -> None:
    import resource

    limits = {
        resource.RLIMIT_AS: cfg["memory_bytes"],
        resource.RLIMIT_NPROC: cfg["max_procs"],
        resource.RLIMIT_CPU: cfg["cpu_s"],
        resource.RLIMIT_FSIZE: cfg["file_bytes"],
        resource.RLIMIT_NOFILE: 256,
        resource.RLIMIT_CORE: 0,
    }
    for kind, value in limits.items():
        resource.setrlimit(kind, (value, value))


def _drop_privileges(linux, cfg: dict) -> None:  # noqa: ANN001
    if not cfg["userns"]:
        os.setgroups([])
        os.setgid(cfg["uid"])
        os.setuid(cfg["uid"])  # a fresh uid: RLIMIT_NPROC counts only this run's processes
    linux.drop_all_capabilities()
    linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)
    linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)  # cleared by setuid: set it again
    if cfg["seccomp"]:  # last: the filter denies the mount and namespace calls used above
        import platform  # noqa: PLC0415

        import seccomp  # noqa: PLC0415

        seccomp.install(platform.machine())
    with open("/proc/self/status") as f:
        status = dict(line.split(":", 1) for line in f if ":" in line)
    if int(status["CapEff"].strip(), 16) or int(status["CapPrm"].strip(), 16):
        raise PermissionError(f"capabilities remain: {status['CapEff'].strip()}")
    if os.getuid() == 0 or os.geteuid() == 0:
        raise PermissionError("still uid 0")


def _parent_gone(alive_r: int) -> bool:
    import select  # noqa: PLC0415

    return bool(select.select([alive_r], [], [], 0)[0])  # readable = EOF = the launcher died


def _sandboxed_child(linux, harness, cfg: dict, job: dict, alive_r: int) -> None:  # noqa: ANN001
    _step("pdeathsig", linux.prctl, linux.PR_SET_PDEATHSIG, signal.SIGKILL)
    if _parent_gone(alive_r):  # killed between fork and prctl: nobody would reap us later
        os._exit(SETUP_FAILED)
    if not cfg["isolate"]:  # trusted code only: limits, no isolation
        _step("rlimits", _limit, cfg)
        return _run(harness, job, cfg["workdir"])
    os.setsid()  # its own session: kill(0) from inside reaches no process of the launcher's
    _step("filesystem", _build_root, linux, cfg)
    _step("rlimits", _limit, cfg)
    _step("privileges", _drop_privileges, linux, cfg)
    _run(harness, job, "/tmp")


def _run(harness, job: dict, workdir: str) -> None:  # noqa: ANN001
    os.environ.clear()
    os.environ.update({"PATH": "/usr/bin:/bin", "HOME": workdir, "LANG": "C.UTF-8"})
    os.chdir(workdir)
    channel = os.dup(1)
    null = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.closerange(3, channel)
    os.closerange(channel + 1, 1 << 16)
    del sys.path[0]  # the package directory is not mounted here anyway
    harness.run(job, channel)
    os._exit(0)


def main() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, here)
    import platform  # noqa: PLC0415, F401 - imported again (from sys.modules) after pivot_root

    import harness  # noqa: PLC0415 - sibling module, loaded before the host filesystem goes away
    import linux  # noqa: PLC0415
    import seccomp  # noqa: PLC0415, F401

    job = marshal.loads(sys.stdin.buffer.read())  # from the host; marshal imports nothing
    cfg = job.pop("sandbox")
    _step("pdeathsig", linux.prctl, linux.PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != int(sys.argv[1]):  # the host died before we could notice
        os._exit(SETUP_FAILED)
    for procs in cfg["cgroup_procs"]:
        _step(f"cgroup {procs}", _write, procs, str(os.getpid()))
    if cfg["isolate"]:
        _step("namespaces", _enter_namespaces, linux, cfg)
    alive_r, alive_w = os.pipe()
    child: list[int] = []
    # The host stops a run with SIGTERM: killing PID 1 makes the kernel kill the whole namespace,
    # and waitpid below returns only once all of it is gone, so the host never returns early.
    signal.signal(signal.SIGTERM, lambda *_: [os.kill(pid, signal.SIGKILL) for pid in child])
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.close(alive_w)
        _sandboxed_child(linux, harness, cfg, job, alive_r)
    child.append(pid)
    os.close(alive_r)
    os.close(1)  # only the sandbox holds the channel now: EOF means it is gone
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    os._exit(code if code >= 0 else 128 - code)


if __name__ == "__main__":
    main()
