"""HF -> Megatron -> HF round trips (bit-exact) on tiny Llama, Qwen2 and Qwen3 models, tensor-
parallel shard/merge, and the fused layouts against loop-built references."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from nemo_rl_megatron.conversion import (
    ConversionError,
    fuse_qkv,
    hf_to_megatron,
    megatron_to_hf,
    split_qkv,
)
from nemo_rl_megatron.layout import ModelLayout, UnsupportedModelError
from nemo_rl_megatron.sharding import (
    merge_pipeline,
    merge_tensor_parallel,
    pipeline_layer_counts,
    shard_tensor_parallel,
    split_pipeline,
)

COMMON = dict(
    vocab_size=100, hidden_size=64, intermediate_size=96, num_hidden_layers=4,
    num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
)


def tiny_hf_model(arch: str) -> torch.nn.Module:
    from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config, Qwen3Config

    config = {
        "llama": lambda: LlamaConfig(**COMMON, tie_word_embeddings=False),
        "qwen2": lambda: Qwen2Config(**COMMON, tie_word_embeddings=True),
        # head_dim 24 differs from hidden / heads = 16, as in real Qwen3 models.
        "qwen3": lambda: Qwen3Config(**COMMON, head_dim=24, tie_word_embeddings=False),
    }[arch]()
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(config, dtype=torch.float32)


@pytest.mark.parametrize("arch", ["llama", "qwen2", "qwen3"])
@pytest.mark.parametrize("tp", [1, 2, 4])
def test_round_trip_through_tensor_parallel_shards_is_bit_exact(arch, tp):
    model = tiny_hf_model(arch)
    layout = ModelLayout.from_hf_config(model.config)
    hf_state = model.state_dict()
    padded = layout.padded_vocab_size(tp, divisible_by=8)  # 100 -> 104 / 112 / 128 rows
    mc_state = hf_to_megatron(hf_state, layout, padded)
    assert mc_state["embedding.word_embeddings.weight"].shape[0] == padded
    assert not mc_state["embedding.word_embeddings.weight"][layout.vocab_size :].any()
    assert ("output_layer.weight" in mc_state) == (not layout.tied_embeddings)
    shards = shard_tensor_parallel(mc_state, tp)
    qkv = "decoder.layers.0.self_attention.linear_qkv.weight"
    assert shards[0][qkv].shape[0] == mc_state[qkv].shape[0] // tp
    stages = [split_pipeline(s, pipeline_layer_counts(layout.num_layers, 2), layout.tied_embeddings)
              for s in shards]
    merged = merge_tensor_parallel([merge_pipeline(s, layout.tied_embeddings) for s in stages])
    back = megatron_to_hf(merged, layout)
    assert set(back) == set(hf_state)
    for name, tensor in hf_state.items():
        assert torch.equal(back[name], tensor), name


def test_family_features_land_in_the_megatron_names():
    qwen2 = hf_to_megatron(tiny_hf_model("qwen2").state_dict(), ModelLayout.from_hf_config(
        tiny_hf_model("qwen2").config))
    assert "decoder.layers.0.self_attention.linear_qkv.bias" in qwen2
    qwen3_model = tiny_hf_model("qwen3")
    qwen3 = hf_to_megatron(qwen3_model.state_dict(), ModelLayout.from_hf_config(qwen3_model.config))
    assert qwen3["decoder.layers.0.self_attention.q_layernorm.weight"].shape == (24,)
    # 4 query heads + 2 key + 2 value heads of 24 rows each.
    assert qwen3["decoder.layers.0.self_attention.linear_qkv.weight"].shape == (8 * 24, 64)


def test_mismatched_weights_are_named():
    model = tiny_hf_model("llama")
    layout = ModelLayout.from_hf_config(model.config)
    state = dict(model.state_dict())
    state["model.layers.0.self_attn.q_proj.bias"] = torch.zeros(64)
    with pytest.raises(ConversionError, match="q_proj.bias"):
        hf_to_megatron(state, layout)
    del state["model.layers.0.self_attn.q_proj.bias"], state["model.norm.weight"]
    with pytest.raises(ConversionError, match="model.norm.weight"):
        hf_to_megatron(state, layout)


def test_unsupported_models_and_splits_say_what_to_do():
    with pytest.raises(UnsupportedModelError, match="model_type 'gpt2'.*dtensor"):
        ModelLayout.from_hf_config({"model_type": "gpt2"})
    layout = ModelLayout.from_hf_config(tiny_hf_model("llama").config)
    with pytest.raises(UnsupportedModelError, match="num_key_value_heads"):
        layout.check_tensor_parallel(4)
    with pytest.raises(ValueError, match="does not divide the model's 4 layers"):
        pipeline_layer_counts(4, 3)


# ------------------------------------------------------------------ references built by loops
def reference_fused_qkv(q, k, v, groups, per, dim):
    rows = []
    for g in range(groups):
        for h in range(per):
            rows += [q[(g * per + h) * dim + d] for d in range(dim)]
        rows += [k[g * dim + d] for d in range(dim)]
        rows += [v[g * dim + d] for d in range(dim)]
    return torch.stack(rows)


def reference_tp_fc1(gate, up, tp, rank):
    rows = gate.shape[0] // tp
    return torch.cat([gate[rank * rows : (rank + 1) * rows], up[rank * rows : (rank + 1) * rows]])


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    groups=st.integers(1, 4), per=st.integers(1, 3), dim=st.integers(1, 5),
    hidden=st.integers(1, 6), tp_exp=st.integers(0, 2), bias=st.booleans(),
)
def test_fused_layouts_match_loop_references(groups, per, dim, hidden, tp_exp, bias):
    tp = 2**tp_exp
    groups = groups * tp  # query groups must split over the tensor-parallel ranks
    layout = ModelLayout("llama", 1, hidden, groups * per, groups, dim, 2 * tp, 7, True, bias, False)
    shape = (hidden,) if not bias else ()
    q = torch.randn(groups * per * dim, *shape)
    k, v = torch.randn(groups * dim, *shape), torch.randn(groups * dim, *shape)
    fused = fuse_qkv(q, k, v, layout)
    assert torch.equal(fused, reference_fused_qkv(q, k, v, groups, per, dim))
    assert all(torch.equal(a, b) for a, b in zip(split_qkv(fused, layout), (q, k, v), strict=True))
    # A rank's contiguous qkv slice is the fused layout of its own query groups.
    name = "decoder.layers.0.self_attention.linear_qkv.weight"
    shards = shard_tensor_parallel({name: fused}, tp)
    local = groups // tp
    for rank, shard in enumerate(shards):
        g0, g1 = rank * local, (rank + 1) * local
        expected = reference_fused_qkv(
            q[g0 * per * dim : g1 * per * dim], k[g0 * dim : g1 * dim], v[g0 * dim : g1 * dim],
            local, per, dim,
        )
        assert torch.equal(shard[name], expected)
    gate, up = torch.randn(2 * tp, hidden), torch.randn(2 * tp, hidden)
    fc1 = "decoder.layers.0.mlp.linear_fc1.weight"
    fc1_shards = shard_tensor_parallel({fc1: torch.cat([gate, up])}, tp)
    for rank, shard in enumerate(fc1_shards):
        assert torch.equal(shard[fc1], reference_tp_fc1(gate, up, tp, rank))
    assert torch.equal(merge_tensor_parallel(fc1_shards)[fc1], torch.cat([gate, up]))


@settings(max_examples=30, deadline=None, derandomize=True)
@given(
    layers=st.integers(1, 4), pp=st.integers(1, 4), groups=st.integers(1, 2), per=st.integers(1, 2),
    dim=st.integers(1, 3), vocab=st.integers(1, 9), tied=st.booleans(), qkv_bias=st.booleans(),
    qk_norm=st.booleans(), tp=st.sampled_from([1, 2]),
)
def test_random_shapes_round_trip(layers, pp, groups, per, dim, vocab, tied, qkv_bias, qk_norm, tp):
    layers *= pp
    groups *= tp
    hidden, ffn = 3, 2 * tp
    layout = ModelLayout("qwen3", layers, hidden, groups * per, groups, dim, ffn, vocab, tied,
                         qkv_bias, qk_norm)
    heads = groups * per
    state = {"model.embed_tokens.weight": torch.randn(vocab, hidden),
             "model.norm.weight": torch.randn(hidden)}
    if not tied:
        state["lm_head.weight"] = torch.randn(vocab, hidden)
    for i in range(layers):
        p = f"model.layers.{i}."
        state.update({
            p + "input_layernorm.weight": torch.randn(hidden),
            p + "post_attention_layernorm.weight": torch.randn(hidden),
            p + "self_attn.q_proj.weight": torch.randn(heads * dim, hidden),
            p + "self_attn.k_proj.weight": torch.randn(groups * dim, hidden),
            p + "self_attn.v_proj.weight": torch.randn(groups * dim, hidden),
            p + "self_attn.o_proj.weight": torch.randn(hidden, heads * dim),
            p + "mlp.gate_proj.weight": torch.randn(ffn, hidden),
            p + "mlp.up_proj.weight": torch.randn(ffn, hidden),
            p + "mlp.down_proj.weight": torch.randn(hidden, ffn),
        })
        if qkv_bias:
            state.update({p + "self_attn.q_proj.bias": torch.randn(heads * dim),
                          p + "self_attn.k_proj.bias": torch.randn(groups * dim),
                          p + "self_attn.v_proj.bias": torch.randn(groups * dim)})
        if qk_norm:
            state.update({p + "self_attn.q_norm.weight": torch.randn(dim),
                          p + "self_attn.k_norm.weight": torch.randn(dim)})
    mc = hf_to_megatron(state, layout, layout.padded_vocab_size(tp, 4))
    stages = split_pipeline(mc, pipeline_layer_counts(layers, pp), tied)
    assert sum("decoder.layers.0.input_layernorm.weight" in s for s in stages) == pp
    tp_stages = [shard_tensor_parallel(s, tp) for s in stages]
    rebuilt = merge_pipeline([merge_tensor_parallel(s) for s in tp_stages], tied)
    assert set(rebuilt) == set(mc)
    back = megatron_to_hf(rebuilt, layout, with_tied_lm_head=False)
    assert set(back) == set(state)
    assert all(torch.equal(back[n], t) for n, t in state.items())
