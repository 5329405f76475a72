"""The side-by-side benchmarks run end to end on the CPU at a tiny shape (the GPU figures come
from the same code at the 1.5B shape, see docs/performance.md)."""

from __future__ import annotations

import importlib.util
import math

import pytest
import torch
from nemo_rl_recipes.benchmarks import grpo_vs_trl, sft_vs_plain

HAS_TRL = importlib.util.find_spec("trl") is not None


@pytest.mark.slow
def test_grpo_vs_trl_tiny_runs_both_trainers_with_the_same_token_counts(tmp_path):
    args = ["--tiny", "--out", str(tmp_path)] + ([] if HAS_TRL else ["--skip", "trl"])
    results = grpo_vs_trl.main(args)
    ours = results["ours"]
    # 2 prompts x 4 generations x exactly 8 tokens (min_new_tokens in the model's config).
    assert ours["completion_tokens"] == [64.0, 64.0, 64.0]
    assert len(ours["step_s"]) == 3 and all(t > 0 for t in ours["step_s"])
    for phases in ours["phases"]:
        assert phases["generation"] > 0 and phases["training"] > 0
        # One update per rollout and no KL term: the training forward's own log-probs are reused
        # (reuse_training_logprobs: auto), so no separate log-prob pass runs.
        assert "logprobs" not in phases
        # The phases are parts of the step.
    assert all(sum(p.values()) <= t for p, t in zip(ours["phases"], ours["step_s"], strict=True))
    assert grpo_vs_trl.grad_norms_ok(ours["grad_norms"])
    if not HAS_TRL:
        pytest.skip("trl is not installed (pip install 'nemo-rl-recipes[bench]'); TRL's half not run")
    trl = results["trl"]
    assert len(trl["step_s"]) == 3 and len(trl["grad_norms"]) == 3
    assert grpo_vs_trl.grad_norms_ok(trl["grad_norms"])
    assert all(p["generation"] > 0 for p in trl["phases"])
    assert math.isclose(
        results["step_time_ratio"],
        grpo_vs_trl.steady_state(ours["step_s"], 1) / grpo_vs_trl.steady_state(trl["step_s"], 1),
    )
    assert results["finite_gradients"] is True


@pytest.mark.slow
def test_sft_vs_plain_tiny_trains_the_same_tokens_on_both_sides(tmp_path):
    results = sft_vs_plain.main(["--tiny", "--out", str(tmp_path)])
    ours, plain = results["ours"], results["plain"]
    assert ours["tokens"] == plain["tokens"] == 2 * 64
    # Packed documents pair up to exactly one row each: no padding is trained.
    assert len(ours["sequence_lengths"]) == 4 and sum(ours["sequence_lengths"]) == 128
    for side in (ours, plain):
        assert len(side["step_s"]) == 3
        assert all(math.isfinite(n) and n > 0 for n in side["grad_norms"])
    summary = results["summary"]
    assert results["tokens_per_s_ratio"] == pytest.approx(
        summary["ours"]["tokens_per_s"] / summary["plain"]["tokens_per_s"]
    )


def test_mfu_flops_match_a_brute_force_count():
    """The closed form against counting every attended query-key pair one by one."""
    lengths = sft_vs_plain.paired_lengths(3, 50, seed=4)
    pairs = sum(1 for s in lengths for q in range(s) for k in range(s) if k <= q)
    assert sft_vs_plain.attention_pairs(lengths) == pairs
    # The 1.5B shape by hand: 28 layers x (q, o 1536^2 each; k, v 1536 x 256 each; MLP 3 x 1536
    # x 8960) + the tied LM head 151936 x 1536 = 1,543,569,408 matmul parameters.
    from nemo_rl_dtensor.testing import QWEN2_1_5B_SHAPE, tiny_model_config
    from transformers import AutoModelForCausalLM

    shape = {k: v for k, v in QWEN2_1_5B_SHAPE.items() if k != "arch"}
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(tiny_model_config("qwen2", **shape))
    assert sft_vs_plain.matmul_params(model) == 28 * (2 * 1536**2 + 2 * 1536 * 256 + 3 * 1536 * 8960) + 151936 * 1536
    flops = sft_vs_plain.step_flops(1_543_569_408, 28, 1536, tokens=2048, lengths=[2048])
    assert flops == 6 * 1_543_569_408 * 2048 + 12 * 28 * 1536 * 2048 * 2049 / 2
