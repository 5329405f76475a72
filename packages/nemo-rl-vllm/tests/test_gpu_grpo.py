"""GPU (marker `gpu`): colocated GRPO with `generation.backend: vllm` on the Qwen2.5-1.5B shape
(random bf16 weights, no hub access). vLLM and the policy share the one GPU: the engine sleeps
while the policy trains and wakes (with a weight refit) for each rollout. Several steps must run
with finite losses and gradients; step and phase times are printed (run with -s).

vLLM's sleep mode allows one engine per process: run this file in its own pytest process.
"""

from __future__ import annotations

import math
import zlib

import pytest
import torch

pytestmark = pytest.mark.gpu
pytest.importorskip("vllm")

STEPS = 4


def checksum_reward(prompt: str, response: str, **_: object) -> float:
    """A reward that differs per response, so advantages (and gradients) are not all zero."""
    return (zlib.crc32(response.encode()) % 1000) / 1000


def test_gpu_colocated_grpo_with_vllm_on_the_1_5b_shape(tmp_path):
    from nemo_rl import GRPOTrainer
    from nemo_rl_dtensor.testing import QWEN2_1_5B_SHAPE, build_tiny_model
    from nemo_rl_vllm import VLLMGenerationBackend

    model = build_tiny_model(tmp_path / "qwen2-1.5b", **QWEN2_1_5B_SHAPE)
    rows = [{"prompt": f"{a}+{b}=", "answer": str(a + b)} for a in range(20) for b in range(20)]
    trainer = GRPOTrainer.from_pretrained(
        model, run_dir=tmp_path / "run", num_prompts_per_step=8, num_generations_per_prompt=8,
        max_num_steps=STEPS, val_at_end=False, **{
            "generation.backend": "vllm", "generation.colocated": True,
            "generation.max_new_tokens": 256,
            "generation.backend_options": {
                "dtype": "bfloat16", "gpu_memory_utilization": 0.4, "max_model_len": 512, "enforce_eager": True,
            },
            "policy.precision": "bfloat16", "policy.activation_checkpointing": True,
            "loss.kl_penalty": 0.0, "policy.optimizer.lr": 1e-6,
            "policy.max_total_sequence_length": 512, "checkpointing.enabled": False,
        },
    )
    try:
        result = trainer.fit(dataset=rows, reward_fn=checksum_reward)
        assert isinstance(trainer.generation, VLLMGenerationBackend)
        peak = torch.cuda.max_memory_allocated() / 2**30
    finally:
        trainer.close()
    assert result.steps == STEPS
    lines = []
    for step, m in enumerate(result.history, 1):
        assert math.isfinite(m["loss"]) and math.isfinite(m["grad_norm"]) and m["grad_norm"] > 0, m
        lines.append(
            f"step {step}: {m['time/step_s']:.2f} s (rollout {m['time/rollout_s']:.2f} s, "
            f"train {m['time/train_s']:.2f} s; hand-over " + ", ".join(
                f"{k[5:-2]} {m[k]:.2f}" for k in ("time/offload_s", "time/wake_s", "time/refit_s",
                                                  "time/sleep_s", "time/onload_s") if k in m
            ) + f"), grad_norm {m['grad_norm']:.3g}"
        )
    print(f"\n{torch.cuda.get_device_name()}, Qwen2.5-1.5B shape, vLLM colocated, 8x8x256 tokens, "
          f"torch peak {peak:.1f} GiB:\n  " + "\n  ".join(lines))
