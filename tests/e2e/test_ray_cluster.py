"""Acceptance of the Ray launcher on CPU: SFT and GRPO with two workers as Ray actors give the
same per-step losses as two local worker processes and as one inline worker (fp32, 1e-5), and a
killed actor stops a run within 30 s with an error naming it, the driver exiting non-zero.

One private Ray instance (`ray start --head` on a free port, 2 CPUs) serves the whole module and
every run joins it by address (`cluster.ray_address`); the module always stops it.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

pytest.importorskip("ray")
pytestmark = pytest.mark.slow  # ~10 minutes on a loaded 2-core machine (Ray and 6 worker starts)

from nemo_rl import GRPOTrainer, SFTTrainer  # noqa: E402
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


KILL_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, time
    from nemo_rl import SFTTrainer
    from nemo_rl.trainers import Callback

    class KillRankOne(Callback):
        def on_step_end(self, trainer, metrics):
            if trainer.state.step == 1:  # the next step's train_step meets a dead rank 1
                print(f"KILLED_AT {time.time()}", flush=True)
                os.kill(trainer.cluster.nodes[1]["pid"], signal.SIGKILL)

    rows = [{"prompt": f"echo w{i}", "answer": f"w{i}"} for i in range(64)]
    trainer = SFTTrainer.from_pretrained(
        sys.argv[1], run_dir=sys.argv[2], batch_size=8, max_num_steps=4,
        **{"cluster.launcher": "ray", "cluster.cpu_workers": 2, "cluster.gpus_per_node": 0,
           "cluster.ray_address": sys.argv[3], "checkpointing.enabled": False,
           "logger.backends": ["jsonl"], "policy.precision": "float32"},
    )
    trainer.fit(dataset=rows, callbacks=[KillRankOne()])
    """
)


def test_a_killed_ray_worker_stops_the_run_within_30s_naming_it(tiny_model, tmp_path, ray_head):
    done = subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT, str(tiny_model), str(tmp_path / "run"), ray_head.address],
        capture_output=True, text=True, timeout=600, env=ray_head.env,
    )
    ended = time.time()
    assert done.returncode != 0, done.stdout[-2000:] + done.stderr[-4000:]
    killed_at = float(done.stdout.split("KILLED_AT ")[1].split()[0])
    assert ended - killed_at < 30, ended - killed_at
    assert "WorkerDiedError: worker rank 1 on node" in done.stderr, done.stderr[-4000:]
    assert "Last lines of its log" in done.stderr
