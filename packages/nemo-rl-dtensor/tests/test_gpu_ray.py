"""GPU: GRPO on the Qwen2.5-0.5B shape with the policy as a Ray actor (NCCL, one GPU bundle),
against the inline cluster on the same machine: both run several finite steps, and the step
times give the Ray overhead as a ratio (printed; run with -s). Needs Ray on the GPU machine
(the slimmed Ray wheel of the GPU wheelhouse) and one GPU.
"""

from __future__ import annotations

import math
import zlib

import pytest
from nemo_rl import GRPOTrainer
from nemo_rl_dtensor.testing import QWEN2_0_5B_SHAPE, build_tiny_model

pytestmark = pytest.mark.gpu


def checksum_reward(prompt: str, response: str, **_: object) -> float:
    return (zlib.crc32(response.encode()) % 1000) / 1000


def _step_times(model, run_dir, launcher: str) -> list[float]:
    rows = [{"prompt": f"{a}+{b}=", "answer": str(a + b)} for a in range(20) for b in range(20)]
    trainer = GRPOTrainer.from_pretrained(
        model, run_dir=run_dir, num_prompts_per_step=8, num_generations_per_prompt=8,
        max_num_steps=3, val_at_end=False, **{
            "cluster.launcher": launcher, "cluster.gpus_per_node": 1,
            "generation.max_new_tokens": 128, "policy.precision": "bfloat16",
            "loss.kl_penalty": 0.0, "policy.optimizer.lr": 1e-6,
            "policy.max_total_sequence_length": 512, "checkpointing.enabled": False,
        },
    )
    try:
        result = trainer.fit(dataset=rows, reward_fn=checksum_reward)
        assert (trainer.cluster.device_type, trainer.cluster.world_size) == ("cuda", 1)
    finally:
        trainer.close()
    assert result.steps == 3
    for metrics in result.history:
        assert math.isfinite(metrics["loss"]) and math.isfinite(metrics["grad_norm"]), metrics
    return [m["time/rollout_s"] + m["time/train_s"] for m in result.history]


def test_grpo_on_the_ray_cluster_runs_on_gpu(tmp_path, monkeypatch):
    pytest.importorskip("ray")
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    model = build_tiny_model(tmp_path / "qwen2-0.5b", **QWEN2_0_5B_SHAPE)
    inline = _step_times(model, tmp_path / "inline", "inline")
    on_ray = _step_times(model, tmp_path / "ray", "ray")  # starts and stops a local Ray
    # Steps after the first (warm-up) compare the steady state.
    ratio = sum(on_ray[1:]) / sum(inline[1:])
    print(f"GRPO step time, inline {inline} s, Ray {on_ray} s: Ray/inline {ratio:.2f}")
    import ray

    assert not ray.is_initialized()  # the cluster stopped the Ray instance it started
