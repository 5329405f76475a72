"""LoRA weight math and names: merge against hand-computed values, a brute-force sum and peft's
own merge; HF and adapter-file names against a real peft model's state dict."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from nemo_rl_dtensor.lora_weights import (
    hf_weight_name,
    live_adapter_name,
    merge_lora_weight,
    merge_plan,
    saved_adapter_name,
)


def test_merge_matches_hand_computed_values():
    base = torch.tensor([[1.0, 0.0, 2.0], [0.0, -1.0, 0.5]])
    lora_a = torch.tensor([[1.0, 2.0, 0.0], [0.0, 1.0, -1.0]])  # rank 2 x in 3
    lora_b = torch.tensor([[2.0, 0.0], [1.0, 1.0]])  # out 2 x rank 2
    # B @ A = [[2, 4, 0], [1, 3, -1]]; times 0.5 added to base:
    expected = torch.tensor([[2.0, 2.0, 2.0], [0.5, 0.5, 0.0]])
    assert torch.equal(merge_lora_weight(base, lora_a, lora_b, 0.5), expected)


def test_merge_keeps_the_base_dtype_and_refuses_wrong_shapes():
    base = torch.zeros(2, 3, dtype=torch.bfloat16)
    merged = merge_lora_weight(base, torch.ones(1, 3), torch.ones(2, 1), 1.0)
    assert merged.dtype == torch.bfloat16 and torch.equal(merged.float(), torch.ones(2, 3))
    with pytest.raises(ValueError, match=r"does not give the base weight's shape \(2, 3\)"):
        merge_lora_weight(base, torch.ones(1, 4), torch.ones(2, 1), 1.0)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    out_dim=st.integers(1, 5), in_dim=st.integers(1, 5), rank=st.integers(1, 4),
    scaling=st.floats(-4, 4, allow_nan=False), seed=st.integers(0, 2**16),
)
def test_merge_equals_brute_force_sum(out_dim, in_dim, rank, scaling, seed):
    gen = torch.Generator().manual_seed(seed)
    base = torch.randn(out_dim, in_dim, generator=gen, dtype=torch.float64)
    lora_a = torch.randn(rank, in_dim, generator=gen, dtype=torch.float64)
    lora_b = torch.randn(out_dim, rank, generator=gen, dtype=torch.float64)
    merged = merge_lora_weight(base, lora_a, lora_b, scaling)
    for i in range(out_dim):
        for j in range(in_dim):
            total = sum(float(lora_b[i, k]) * float(lora_a[k, j]) for k in range(rank))
            assert float(merged[i, j]) == pytest.approx(float(base[i, j]) + scaling * total,
                                                        rel=1e-5, abs=1e-5)


def test_names_and_merge_agree_with_peft(tiny_qwen2_path):
    peft = pytest.importorskip("peft")
    from nemo_rl_dtensor.lora import lora_scalings
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_qwen2_path)
    config = peft.LoraConfig(r=4, lora_alpha=12, target_modules=["q_proj", "down_proj"])
    wrapped = peft.get_peft_model(model, config)
    with torch.no_grad():  # B starts at zero: give it values so the merge is not a no-op
        for name, param in wrapped.named_parameters():
            if "lora_B" in name:
                param.normal_()
    state = wrapped.state_dict()
    plan = merge_plan(state, lora_scalings(wrapped))
    ours = {name: merge_lora_weight(state[w.base], state[w.lora_a], state[w.lora_b], w.scaling)
            if w.lora_a else state[w.base] for name, w in plan.items()}

    merged = wrapped.merge_and_unload().state_dict()
    assert list(ours) == list(merged)  # every HF name, in the same order
    for name, tensor in merged.items():
        torch.testing.assert_close(ours[name], tensor, atol=1e-6, rtol=0)
    assert {w.scaling for w in plan.values() if w.lora_a} == {3.0}


def test_adapter_file_names_round_trip():
    live = "base_model.model.model.layers.1.mlp.up_proj.lora_B.default.weight"
    saved = saved_adapter_name(live)
    assert saved == "base_model.model.model.layers.1.mlp.up_proj.lora_B.weight"
    assert live_adapter_name(saved) == live
    assert hf_weight_name("base_model.model.model.layers.1.mlp.up_proj.base_layer.bias") == (
        "model.layers.1.mlp.up_proj.bias"
    )
    assert hf_weight_name(live) is None
