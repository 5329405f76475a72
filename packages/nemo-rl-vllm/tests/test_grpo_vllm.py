"""GRPO end to end with `generation.backend: vllm` on the CPU: a tiny Qwen2 learns the toy length
task while vLLM generates, the policy trains and a refit pushes the weights every step.

Run with `nox -s vllm`; skipped where vLLM is not installed.
"""

from __future__ import annotations

import math
import random
import string

import pytest
import torch

pytest.importorskip("vllm")

TARGET_LENGTH, MAX_NEW_TOKENS, STEPS = 3, 8, 12


def length_reward(prompt: str, response: str, **_: object) -> float:
    """0 for a response of TARGET_LENGTH characters, less the further away (a random model writes
    MAX_NEW_TOKENS characters and has to learn to stop)."""
    return -abs(len(response) - TARGET_LENGTH) / MAX_NEW_TOKENS


@pytest.mark.slow
def test_grpo_with_vllm_generation_raises_the_reward(tmp_path):
    from nemo_rl import GRPOTrainer
    from nemo_rl_dtensor.testing import build_tiny_model
    from nemo_rl_vllm import VLLMGenerationBackend

    model = build_tiny_model(tmp_path / "model", arch="qwen2", hidden_size=64, layers=1, heads=2)
    rng = random.Random(0)
    rows = [{"prompt": "say " + "".join(rng.choice(string.ascii_lowercase) for _ in range(4))} for _ in range(64)]
    trainer = GRPOTrainer.from_pretrained(
        model,
        run_dir=tmp_path / "run",
        seed=0,
        max_num_steps=STEPS,
        max_num_epochs=100,
        val_at_end=False,
        num_prompts_per_step=4,
        num_generations_per_prompt=8,
        **{
            "generation.backend": "vllm",
            "generation.max_new_tokens": MAX_NEW_TOKENS,
            "logger.backends": ["jsonl"],
            "logger.log_dir": str(tmp_path / "run"),
            "checkpointing.enabled": False,
            "checkpointing.checkpoint_dir": str(tmp_path / "run" / "checkpoints"),
            "loss.kl_penalty": 0.0,
            "policy.precision": "float32",
            "policy.optimizer.lr": 1e-2,
            "policy.optimizer.weight_decay": 0.0,
            "policy.train_micro_batch_size": 16,
            "policy.max_total_sequence_length": 64,
        },
    )
    threads = torch.get_num_threads()
    try:
        result = trainer.fit(dataset=rows, reward_fn=length_reward)
    finally:
        if isinstance(getattr(trainer, "generation", None), VLLMGenerationBackend):
            trainer.generation.shutdown()
        torch.set_num_threads(threads)
    assert isinstance(trainer.generation, VLLMGenerationBackend)
    history = result.history
    assert result.steps == STEPS and len(history) == STEPS
    assert all(math.isfinite(float(v)) for m in history for v in m.values())
    curve = [m["reward/mean"] for m in history]
    print("reward/mean per step:", [round(c, 3) for c in curve])
    first, last = sum(curve[:2]) / 2, sum(curve[-2:]) / 2
    assert last > first + 0.1, f"mean reward did not rise: {curve}"
