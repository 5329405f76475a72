"""GRPO calls its environment through the EnvironmentPool: with a deliberately slow reward (0.2 s
per sample), 8 thread workers finish the step's environment calls at least 5x faster than one,
with the same rewards in the same order (hence the same loss)."""

from __future__ import annotations

import time

import pytest
from nemo_rl import GRPOTrainer


def slow_length_reward(prompt: str, response: str, **_: object) -> float:
    time.sleep(0.2)  # a sandbox or a remote judge: waiting, not computing
    return -abs(len(response) - 3) / 8


def _run(tiny_model, run_dir, settings, prompt_rows, workers: int) -> dict[str, float]:
    trainer = GRPOTrainer.from_pretrained(
        tiny_model,
        **settings["grpo"](
            run_dir, max_num_steps=1,
            **{"environment_pool.mode": "threads", "environment_pool.max_workers": workers},
        ),
    )
    try:
        result = trainer.fit(dataset=prompt_rows, reward_fn=slow_length_reward)
        assert trainer.env_pool.max_workers == workers and trainer.rollouts.environment is trainer.env_pool
        return result.history[0]
    finally:
        trainer.close()


def test_eight_pool_workers_run_a_slow_environment_five_times_faster(
    tiny_model, tmp_path, settings, prompt_rows
):
    one = _run(tiny_model, tmp_path / "one", settings, prompt_rows, workers=1)
    eight = _run(tiny_model, tmp_path / "eight", settings, prompt_rows, workers=8)
    assert one["time/environment_s"] >= 32 * 0.2  # 4 prompts x 8 samples, one after another
    speedup = one["time/environment_s"] / eight["time/environment_s"]
    print(f"environment time: 1 worker {one['time/environment_s']:.2f} s, 8 workers {eight['time/environment_s']:.2f} s, speedup {speedup:.1f}x")
    assert speedup >= 5, (speedup, one["time/environment_s"], eight["time/environment_s"])
    reward_keys = [k for k in one if k.startswith("reward")]
    assert reward_keys and all(one[k] == eight[k] for k in reward_keys)
    assert eight["loss"] == pytest.approx(one["loss"], abs=1e-6)
