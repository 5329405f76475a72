"""Acceptance of the Ray launcher on CPU: SFT, GRPO and DPO with two workers as Ray actors give the
same per-step losses as two local worker processes and as one inline worker (fp32, 1e-5); a
worker killed mid-step stops a driver process within 30 s with an error naming it, the driver
exiting non-zero; Ctrl-C (SIGINT) stops the workers and names a checkpoint that loads. Neither
leaves an actor process behind.

One private Ray instance (`ray start --head` on a free port, 2 CPUs) serves the whole module and
every run joins it by address (`cluster.ray_address`); the module always stops it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytest.importorskip("ray")
pytestmark = pytest.mark.slow  # ~10 minutes on a loaded 2-core machine (Ray and 6 worker starts)

from nemo_rl import DPOTrainer, GRPOTrainer, SFTTrainer  # noqa: E402
from nemo_rl.infra.cluster import RayCluster  # noqa: E402
from nemo_rl.infra.cluster.ray_local import LocalRayCluster  # noqa: E402

LAUNCHERS = {
    "inline": {"cluster.gpus_per_node": 0},
    "local": {"cluster.gpus_per_node": 0, "cluster.cpu_workers": 2, "cluster.launcher": "local"},
    "ray": {"cluster.gpus_per_node": 0, "cluster.cpu_workers": 2, "cluster.launcher": "ray"},
}


@pytest.fixture(scope="module")
def ray_head():
    import ray

    head = LocalRayCluster(num_cpus=2)
    try:
        yield head
    finally:
        ray.shutdown()
        head.stop()


def _losses(trainer_cls, model, settings, launcher, head, **fit_kwargs) -> list[float]:
    extra = dict(LAUNCHERS[launcher])
    if launcher == "ray":
        extra["cluster.ray_address"] = head.address
    trainer = trainer_cls.from_pretrained(model, **settings(**extra))
    try:
        result = trainer.fit(**fit_kwargs)
        assert trainer.cluster.world_size == (1 if launcher == "inline" else 2)
        assert isinstance(trainer.cluster, RayCluster) == (launcher == "ray")
        return [step["loss"] for step in result.history]
    finally:
        trainer.close()


def test_sft_losses_match_across_inline_local_and_ray(tiny_model, tmp_path, settings, copy_task, ray_head):
    def sft(**extra):
        return settings["sft"](tmp_path / str(len(runs)), max_num_steps=3, **extra)

    runs: dict[str, list[float]] = {}
    for launcher in LAUNCHERS:
        runs[launcher] = _losses(SFTTrainer, tiny_model, sft, launcher, ray_head, dataset=copy_task[0])
    assert len(runs["inline"]) == 3
    for launcher in ("local", "ray"):
        assert runs[launcher] == pytest.approx(runs["inline"], abs=1e-5), (launcher, runs)


def test_grpo_losses_match_across_inline_local_and_ray(
    tiny_model, tmp_path, settings, rewards, prompt_rows, ray_head
):
    def grpo(**extra):
        return settings["grpo"](tmp_path / str(len(runs)), max_num_steps=2, **extra)

    runs: dict[str, list[float]] = {}
    for launcher in LAUNCHERS:
        runs[launcher] = _losses(
            GRPOTrainer, tiny_model, grpo, launcher, ray_head,
            dataset=prompt_rows, reward_fn=rewards["length"],
        )
    assert len(runs["inline"]) == 2
    for launcher in ("local", "ray"):
        assert runs[launcher] == pytest.approx(runs["inline"], abs=1e-5), (launcher, runs)


def test_dpo_losses_match_across_inline_local_and_ray(
    tiny_model, tmp_path, settings, preference_task, ray_head
):
    def dpo(**extra):
        return settings["dpo"](tmp_path / str(len(runs)), max_num_steps=3, **extra)

    runs: dict[str, list[float]] = {}
    for launcher in LAUNCHERS:
        runs[launcher] = _losses(
            DPOTrainer, tiny_model, dpo, launcher, ray_head, dataset=preference_task[0]
        )
    assert len(runs["inline"]) == 3 and runs["inline"][0] != runs["inline"][-1]
    for launcher in ("local", "ray"):
        assert runs[launcher] == pytest.approx(runs["inline"], abs=1e-5), (launcher, runs)


# A driver in its own process, as a user runs it: SFT on 2 Ray CPU workers that joins the test's
# Ray head (argv[3]). It prints its workers' pids and "STEP n" after each step; argv[4] chooses
# what goes wrong: "kill" SIGKILLs rank 1 from a timer while step 2 runs (rank 0 is then waiting
# in a collective for it), "run" just trains on, checkpointing every step, until the test sends
# SIGINT.
DRIVER_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, time
    from nemo_rl import SFTTrainer
    from nemo_rl.trainers import Callback

    class Report(Callback):
        def on_fit_start(self, trainer):
            pids = [node["pid"] for node in trainer.cluster.nodes]
            print("WORKER_PIDS", *pids, flush=True)

        def on_step_start(self, trainer, step):
            if sys.argv[4] == "kill" and step == 1:  # steps done: step 2 begins
                print(f"KILLED_AT {time.time()}", flush=True)
                os.kill(trainer.cluster.nodes[1]["pid"], signal.SIGKILL)

        def on_step_end(self, trainer, metrics):
            print(f"STEP {trainer.state.step}", flush=True)

    rows = [{"prompt": f"echo w{i}", "answer": f"w{i}"} for i in range(64)]
    trainer = SFTTrainer.from_pretrained(
        sys.argv[1], run_dir=sys.argv[2], batch_size=8, max_num_steps=10_000, max_num_epochs=1000,
        **{"cluster.launcher": "ray", "cluster.cpu_workers": 2, "cluster.gpus_per_node": 0,
           "cluster.ray_address": sys.argv[3], "checkpointing.enabled": sys.argv[4] == "run",
           "checkpointing.save_period": 1, "checkpointing.keep_top_k": 2,
           "logger.backends": ["jsonl"], "policy.precision": "float32"},
    )
    trainer.fit(dataset=rows, callbacks=[Report()])
    """
)


def _driver(model, run_dir, head, mode: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", DRIVER_SCRIPT, str(model), str(run_dir), head.address, mode],
        # One stream: a separate stderr pipe could fill up while the test reads stdout.
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=head.env,
    )


def _alive(pids: list[int], within_s: float = 15.0) -> list[int]:
    """The pids still running after up to `within_s` seconds (Ray reaps killed actors async)."""
    deadline = time.monotonic() + within_s
    while True:
        alive = [pid for pid in pids if os.path.exists(f"/proc/{pid}")
                 and open(f"/proc/{pid}/stat").read().split(") ")[-1][0] != "Z"]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.2)


def _actor_processes(head) -> list[int]:
    """Pids of RayWorker actors (process title `ray::RayWorker...`) under the test's Ray head."""
    roots = {proc.pid for proc in head._procs}
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            title = open(f"/proc/{entry}/cmdline", "rb").read().split(b"\0")[0]
            pid, chain = int(entry), []
            while pid > 1 and pid not in roots and len(chain) < 32:
                chain.append(pid)
                pid = int(open(f"/proc/{pid}/stat").read().split(") ")[-1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if title.startswith(b"ray::RayWorker") and pid in roots:
            found.append(int(entry))
    return found


def test_a_worker_killed_mid_step_stops_the_run_within_30s_naming_it(tiny_model, tmp_path, ray_head):
    driver = _driver(tiny_model, tmp_path / "run", ray_head, "kill")
    try:
        out, _ = driver.communicate(timeout=300)
    finally:
        driver.kill()
    ended = time.time()
    assert driver.returncode not in (0, None), out[-4000:]
    killed_at = float(out.split("KILLED_AT ")[1].split()[0])
    assert ended - killed_at < 30, ended - killed_at
    assert "STEP 2" not in out, "rank 1 was killed during step 2, which must not complete"
    pids = [int(p) for p in out.split("WORKER_PIDS ")[1].splitlines()[0].split()]
    # One error names the dead rank, its node (host, IP, pid) and quotes its log.
    assert "WorkerDiedError: worker rank 1 on node" in out, out[-4000:]
    assert f"pid {pids[1]})" in out, out[-4000:]
    assert "Last lines of its log" in out and ":actor_name:RayWorker" in out, out[-4000:]
    assert not _alive(pids), "the surviving Ray worker was left running"
    assert not _actor_processes(ray_head)


def test_ctrl_c_stops_the_ray_workers_and_keeps_the_last_checkpoint(
    tiny_model, tmp_path, ray_head
):
    run_dir = tmp_path / "run"
    driver = _driver(tiny_model, run_dir, ray_head, "run")
    try:
        pids: list[int] = []
        for line in driver.stdout:  # training: checkpoints at steps 1, 2, 3 ...
            if line.startswith("WORKER_PIDS "):
                pids = [int(p) for p in line.split()[1:]]
            if line.startswith("STEP 3"):
                break
        driver.send_signal(signal.SIGINT)  # what Ctrl-C sends the driver
        out, _ = driver.communicate(timeout=60)
    finally:
        driver.kill()
    assert driver.returncode != 0, out[-4000:]
    assert len(pids) == 2
    assert not _alive(pids), "Ctrl-C left Ray workers running"
    assert not _actor_processes(ray_head)
    line = next(row for row in out.splitlines() if "last usable checkpoint" in row)
    checkpoint = Path(line.split("last usable checkpoint: ")[1].split(" (step ")[0])
    step = int(line.split(" (step ")[1].split(",")[0])
    # Step 3's checkpoint may have been cut short by the signal: then step 2's is the last usable.
    assert step in (2, 3) and checkpoint.name == f"step_{step}" and checkpoint.is_dir(), line
    # The checkpoint loads: the run resumes from it (inline, one more step).
    resumed = SFTTrainer.from_pretrained(
        tiny_model, run_dir=run_dir, resume=True, batch_size=8, max_num_steps=step + 1,
        **{"cluster.gpus_per_node": 0, "checkpointing.enabled": True,
           "logger.backends": ["jsonl"], "policy.precision": "float32"},
    )
    try:
        result = resumed.fit(dataset=[{"prompt": f"echo w{i}", "answer": f"w{i}"} for i in range(64)])
    finally:
        resumed.close()
    assert result.steps == step + 1 and len(result.history) == 1
