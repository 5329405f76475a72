"""GRPO with a reward that hangs on one prompt: `reward_timeout_s` turns each stuck call into a
reward error, `on_reward_error: zero` scores those samples 0, and the step trains on the rest."""

from __future__ import annotations

import math
import threading
import time

from nemo_rl import GRPOTrainer


def test_a_reward_hanging_on_one_prompt_costs_its_timeout_not_the_run(tiny_model, tmp_path, settings, prompt_rows):
    release = threading.Event()
    stuck_prompt = prompt_rows[0]["prompt"]

    def sometimes_stuck(prompt, response, **_):
        if prompt == stuck_prompt:
            release.wait()  # a judge server that never answers
        return -abs(len(response) - 3) / 8

    trainer = GRPOTrainer.from_pretrained(
        tiny_model,
        **settings["grpo"](
            tmp_path, max_num_steps=1, reward_timeout_s=0.2, on_reward_error="zero",
            **{"data.shuffle": False},
        ),
    )
    started = time.perf_counter()
    try:
        result = trainer.fit(dataset=prompt_rows[:4], reward_fn=sometimes_stuck)
    finally:
        release.set()
        trainer.close()
    assert time.perf_counter() - started < 60
    (metrics,) = result.history
    assert metrics["reward_errors"] == 8.0  # the stuck prompt's 8 samples, and only those
    assert math.isfinite(metrics["loss"]) and metrics["loss"] != 0.0
