"""GRPO with an over-long prompt in the step: that prompt is filtered (or truncated, by
`overlong_prompts`) on its own, counted in the step's metrics and warned about once, while the
other prompts generate their full responses and train.

The tiny model has a character tokenizer (one token per character), so a prompt's length in
tokens is its rendered length in characters; `policy.max_total_sequence_length` is 64 and
`generation.max_new_tokens` 8 (see conftest.py).
"""

from __future__ import annotations

import logging
import math

from nemo_rl import GRPOTrainer

LIMIT = 64
HUGE = {"prompt": "say " + "x" * 100_000}  # 100k characters: 100k tokens for this tokenizer


def _fit(tiny_model, run_dir, settings, rewards, recorder, rows, **overrides):
    trainer = GRPOTrainer.from_pretrained(
        tiny_model,
        **settings["grpo"](run_dir, max_num_steps=2, **{"data.shuffle": False}, **overrides),
    )
    try:
        return trainer.fit(dataset=rows, reward_fn=rewards["length"], callbacks=[recorder])
    finally:
        trainer.close()


def _prompt_len(tokenizer, text: str) -> int:
    from nemo_rl.data import tokenize_prompt

    return len(tokenize_prompt(tokenizer, [{"role": "user", "content": text}]))


def test_one_over_long_prompt_is_filtered_and_the_step_still_trains(
    tiny_model, tmp_path, settings, rewards, recorder, prompt_rows, caplog
):
    rows = [*prompt_rows[:3], HUGE]  # every step of 4 prompts holds the huge one
    with caplog.at_level(logging.WARNING, logger="nemo_rl"):
        result = _fit(tiny_model, tmp_path, settings, rewards, recorder, rows)
    assert [m["data/prompts_filtered"] for m in result.history] == [1.0, 1.0]
    assert [m["data/prompts_truncated"] for m in result.history] == [0.0, 0.0]
    for metrics, batch in zip(result.history, recorder.rollouts, strict=True):
        huge = batch["filtered"]
        assert huge.tolist() == [False] * 24 + [True] * 8  # its 8 samples, and only those
        assert batch["sample_mask"][huge].sum() == 0 and batch["response_lengths"][huge].sum() == 0
        # The log-prob and training passes see at most the sequence limit, never 100k tokens.
        assert batch["input_ids"].shape[1] <= LIMIT
        # The others generate and train as in a step without the huge prompt.
        assert int(batch["response_lengths"][~huge].min()) > 0
        assert metrics["reward/mean"] == float(batch["rewards"][~huge].mean()) != 0.0
        assert float(batch["advantages"][~huge].abs().sum()) > 0
        assert math.isfinite(metrics["loss"]) and metrics["loss"] != 0.0
    said = [r.getMessage() for r in caplog.records if "prompt limit" in r.getMessage()]
    assert len(said) == 1, said  # once per run, not once per step
    assert "1 of 4 prompts are longer than the prompt limit of 63 tokens" in said[0]
    assert "overlong_prompts: truncate" in said[0] and "data/prompts_filtered" in said[0]


def test_truncate_keeps_the_end_of_an_over_long_prompt_and_counts_it(
    tiny_model, tmp_path, settings, rewards, recorder, prompt_rows, tokenizer
):
    rows = [*prompt_rows[:3], HUGE]
    result = _fit(tiny_model, tmp_path, settings, rewards, recorder, rows, overlong_prompts="truncate")
    assert [m["data/prompts_truncated"] for m in result.history] == [1.0, 1.0]
    assert [m["data/prompts_filtered"] for m in result.history] == [0.0, 0.0]
    batch = recorder.rollouts[0]
    assert batch["sample_mask"].tolist() == [1.0] * 32
    huge = slice(24, 32)
    # 63 prompt tokens leave room for exactly one generated token, and that is all it gets.
    assert batch["input_lengths"][huge].tolist() == [LIMIT] * 8
    assert batch["response_lengths"][huge].tolist() == [1] * 8
    kept = tokenizer.decode(batch["input_ids"][24, : LIMIT - 1].tolist())
    assert kept.endswith("xxx<|im_end|>\n<|im_start|>assistant\n")
    assert int(batch["response_lengths"][:24].max()) == 8  # the others keep their full budget
    assert all(math.isfinite(m["loss"]) for m in result.history)


def test_the_generation_budget_is_per_sample_not_from_the_longest_prompt(
    tiny_model, tmp_path, settings, rewards, recorder, prompt_rows, tokenizer
):
    base = _prompt_len(tokenizer, "say ")
    near = {"prompt": "say " + "y" * (LIMIT - 3 - base)}  # 3 tokens of room: within the limit
    assert _prompt_len(tokenizer, near["prompt"]) == LIMIT - 3
    result = _fit(tiny_model, tmp_path, settings, rewards, recorder, [*prompt_rows[:3], near])
    assert [m["data/prompts_filtered"] for m in result.history] == [0.0, 0.0]
    batch = recorder.rollouts[0]
    assert int(batch["input_lengths"].max()) <= LIMIT
    assert int(batch["response_lengths"][24:].max()) <= 3  # the long prompt stops at the limit
    assert batch["truncated"][24:].any()
    # Before, every sample of the step got the long prompt's 3 tokens; now the others get 8.
    assert int(batch["response_lengths"][:24].max()) == 8
