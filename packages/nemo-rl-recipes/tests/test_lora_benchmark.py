"""The LoRA benchmark runs end to end (tiny shape on CPU; Qwen2.5-0.5B's shape on a GPU, where
LoRA must need clearly less memory than full-weight training)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from nemo_rl_recipes.benchmarks.lora_memory import main


def test_benchmark_reports_both_modes_on_cpu(tmp_path, capsys):
    results = main(["--shape", "tiny", "--out", str(tmp_path), "--batch", "2", "--seq-len", "16",
                    "--steps", "1", "--rank", "4"])
    full, lora = results
    assert (full["mode"], lora["mode"]) == ("full", "lora")
    assert full["trainable_params"] == full["total_params"]
    # 2 layers x rank 4 x (q 128+128, k/v 128+64, o 128+128, gate/up 128+256, down 256+128)
    assert lora["trainable_params"] == 2 * 4 * (256 * 2 + 192 * 2 + 384 * 3)
    assert lora["total_params"] == full["total_params"] + lora["trainable_params"]
    for r in results:
        assert r["train_tokens_per_s"] > 0 and all(math.isfinite(x) for x in r["losses"])
    saved = json.loads((tmp_path / "lora_tiny.json").read_text())
    assert [r["mode"] for r in saved["results"]] == ["full", "lora"]
    assert "lora: 16,384 of" in capsys.readouterr().out


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_lora_needs_less_memory_on_the_0_5b_shape(tmp_path):
    full, lora = main(["--shape", "qwen2.5-0.5b", "--out", str(tmp_path), "--batch", "4",
                       "--seq-len", "512", "--steps", "2"])
    # Full weights keep fp32 gradients and two AdamW moments for every weight; LoRA only for
    # its adapters.
    assert lora["peak_memory_gib"] < 0.7 * full["peak_memory_gib"], (full, lora)
    assert lora["trainable_params"] < 0.05 * full["trainable_params"]
