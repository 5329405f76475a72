"""A throwaway Ray cluster on this host, started with `ray start`: for tests and for trying
multi-node placement on one machine (each `add_node` is a separate raylet, a Ray "node").

Every node runs `ray start --block` in its own process group, on a free port, so it never
touches another Ray instance of this host (`ray stop` would stop them all); `stop()` ends the
process groups it started, and nothing else.

Example:
    >>> with LocalRayCluster(num_cpus=1, resources={"node_a": 1}) as head:  # doctest: +SKIP
    ...     head.add_node(num_cpus=1, resources={"node_b": 1})
    ...     RayCluster(2, address=head.address).num_nodes
    2
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from typing import Any

from nemo_rl.infra.cluster.errors import ClusterError
from nemo_rl.infra.cluster.local import free_port


def _ray_executable() -> list[str]:
    # The `ray` script of this interpreter's environment, so the nodes run the driver's Ray.
    script = os.path.join(os.path.dirname(sys.executable), "ray")
    return [script] if os.path.exists(script) else [shutil.which("ray") or "ray"]


class LocalRayCluster:
    """A Ray head node (and optional extra nodes) on 127.0.0.1, stopped by `stop()`.

    `env` adds environment variables to the nodes (`RAY_AUTH_MODE=disabled` and no uv runtime
    hook are set by default, for a private local cluster). `address` is what `ray.init` or
    `cluster.ray_address` takes.

    Example: see the module docstring.
    """

    def __init__(
        self,
        num_cpus: int = 2,
        num_gpus: int | None = None,
        resources: dict[str, float] | None = None,
        env: dict[str, str] | None = None,
        start_timeout_s: float = 120.0,
    ) -> None:
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "RAY_AUTH_MODE": "disabled",
            "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0",
            "RAY_USAGE_STATS_ENABLED": "0",
            **(env or {}),
        }
        self.start_timeout_s = start_timeout_s
        self._procs: list[subprocess.Popen] = []
        try:
            self._start_node(["--head", f"--port={self.port}", "--include-dashboard=false"],
                             num_cpus, num_gpus, resources)
        except BaseException:
            self.stop()
            raise

    def add_node(
        self, num_cpus: int = 1, num_gpus: int | None = None,
        resources: dict[str, float] | None = None,
    ) -> None:
        """Start one more raylet on this host, joined to the head: a simulated extra node."""
        self._start_node([f"--address={self.address}"], num_cpus, num_gpus, resources)

    def _start_node(
        self, args: list[str], num_cpus: int, num_gpus: int | None,
        resources: dict[str, float] | None,
    ) -> None:
        command = [*_ray_executable(), "start", "--block", "--node-ip-address=127.0.0.1",
                   f"--num-cpus={num_cpus}", "--disable-usage-stats", *args]
        if num_gpus is not None:
            command.append(f"--num-gpus={num_gpus}")
        if resources:
            command.append(f"--resources={json.dumps(resources)}")
        expected = len(self._procs) + 1
        self._procs.append(subprocess.Popen(
            command, env=self.env, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        ))
        self._wait_for_nodes(expected)

    def _wait_for_nodes(self, count: int) -> None:
        # `ray start --block` never returns while the node lives, so ask Ray how many nodes are up.
        probe = (
            "import ray, sys; ray.init(address=sys.argv[1], log_to_driver=False); "
            "print(sum(n['Alive'] for n in ray.nodes()))"
        )
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            dead = [p for p in self._procs if p.poll() is not None]
            if dead:
                err = dead[0].stderr.read().decode(errors="replace") if dead[0].stderr else ""
                raise ClusterError(f"`ray start` exited with {dead[0].returncode}: {err[-2000:]}")
            out = subprocess.run(
                [sys.executable, "-c", probe, self.address], env=self.env,
                capture_output=True, text=True, timeout=self.start_timeout_s,
            )
            if out.returncode == 0 and out.stdout.strip().splitlines()[-1:] == [str(count)]:
                return
            time.sleep(1.0)
        raise ClusterError(f"{count} Ray node(s) at {self.address} not up in {self.start_timeout_s}s")

    def stop(self) -> None:
        """Stop every node this object started (SIGTERM to its `ray start`, then SIGKILL to
        whatever is left of its process group)."""
        # SIGTERM to `ray start` alone: it stops its raylet, GCS and helpers in about a second.
        # The same signal sent to the whole group made each of them shut down on its own, and
        # the head then took 30-33 s to exit (measured, Ray 2.60).
        for proc in reversed(self._procs):  # worker nodes first, the head last
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in reversed(self._procs):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # anything of that node still running
            except ProcessLookupError:
                pass
            proc.wait()
            if proc.stderr:
                proc.stderr.close()
        self._procs.clear()

    def __enter__(self) -> LocalRayCluster:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()
