"""GPU: several GRPO steps on a random Qwen2.5-0.5B-shaped model in bf16 keep finite gradients.

The setting where a step once logged `grad_norm nan` and the next died in sampling: 8 prompts x 8
generations x 256 new tokens, HF generation, bf16, activation checkpointing, kl 0, lr 1e-6. The
reward varies per response (a checksum of the text), so advantages are not all 0 and the
gradient is real.
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


def test_grpo_steps_on_the_0_5b_shape_have_finite_gradients(tmp_path):
    model = build_tiny_model(tmp_path / "qwen2-0.5b", **QWEN2_0_5B_SHAPE)
    rows = [{"prompt": f"{a}+{b}=", "answer": str(a + b)} for a in range(20) for b in range(20)]
    trainer = GRPOTrainer.from_pretrained(
        model, run_dir=tmp_path / "run", num_prompts_per_step=8, num_generations_per_prompt=8,
        max_num_steps=3, val_at_end=False, **{
            "generation.max_new_tokens": 256, "policy.precision": "bfloat16",
            "policy.activation_checkpointing": True, "loss.kl_penalty": 0.0,
            "policy.optimizer.lr": 1e-6, "policy.max_total_sequence_length": 512,
            "checkpointing.enabled": False,
        },
    )
    try:
        result = trainer.fit(dataset=rows, reward_fn=checksum_reward)
    finally:
        trainer.close()
    assert result.steps == 3
    for metrics in result.history:
        assert math.isfinite(metrics["grad_norm"]) and metrics["grad_norm"] > 0, metrics
        assert metrics["nonfinite/skipped_updates"] == 0.0, metrics
