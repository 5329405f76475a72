"""The generation comparison runs end to end on the CPU at the tiny shape: both sides make the
same tokens under the same settings (the GPU figures come from the same code at the 1.5B shape)."""

from __future__ import annotations

import pytest
from nemo_rl_recipes.benchmarks import backend_throughput, generation_vs_plain


def test_generation_vs_plain_times_the_same_tokens_on_both_sides(tmp_path):
    results = generation_vs_plain.main([
        "--device", "cpu", "--out", str(tmp_path), "--batch", "3", "--prompt-len", "5",
        "--new-tokens", "6", "--repeats", "2", "--count-ops",
    ])
    ours, plain = results["generate_b3"], results["plain_generate_b3"]
    # min_new_tokens in the model's config: exactly 6 tokens per row on both sides.
    assert ours["tokens"] == plain["tokens"] == 18
    assert results["ratio_b3"] == pytest.approx(
        ours["generate_tokens_per_s"] / plain["generate_tokens_per_s"]
    )
    ops = results["aten_ops_per_step_b3"]
    # Our backend runs generate plus a log-softmax, a gather and a few views per step, on a model
    # whose RMSNorm layers are fused (fewer ops than plain): at most 8 ops per step more.
    assert ops["plain"] > 0 and 0 < ops["ours"] <= ops["plain"] + 8


def test_backend_throughput_generation_only_writes_its_figures(tmp_path):
    backend_throughput.main([
        "--shape", "tiny", "--out", str(tmp_path), "--skip-training", "--baseline",
        "--gen-batch", "2", "--prompt-len", "4", "--new-tokens", "3", "--repeats", "1",
    ])
    import json

    results = json.loads((tmp_path / "bench_tiny.json").read_text())
    assert results["generate_b2"]["tokens"] == results["plain_generate_b2"]["tokens"] == 6
    assert results["ratio_b2"] > 0
