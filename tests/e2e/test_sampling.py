"""Every generation round draws fresh sampling noise, even when nothing else changed."""

from __future__ import annotations

from nemo_rl import GRPOTrainer


def test_dynamic_sampling_rounds_draw_new_samples(
    tiny_model, tmp_path, settings, rewards, recorder
):
    """The same prompt everywhere and the same weights within a step: a refill round that replayed
    the first round's noise would return the same responses, so the kept groups would repeat (or
    no group would ever qualify). Every kept group must be a different draw."""
    rows = [{"prompt": "say abc"}] * 16
    trainer = GRPOTrainer.from_pretrained(
        tiny_model,
        **settings["grpo"](
            tmp_path,
            max_num_steps=1,
            num_prompts_per_step=4,
            num_generations_per_prompt=2,
            use_dynamic_sampling=True,
            **{"data.shuffle": False},
        ),
    )
    result = trainer.fit(dataset=rows, reward_fn=rewards["parity"], callbacks=[recorder])

    assert result.history[0]["dynamic_sampling/rounds"] >= 1, "the test needs a refill round"
    batch = recorder.rollouts[0]
    groups = [tuple(batch["responses"][i : i + 2]) for i in range(0, batch.size, 2)]
    assert len(groups) == 4
    assert len(set(groups)) == len(groups), f"refill rounds repeated earlier samples: {groups}"
