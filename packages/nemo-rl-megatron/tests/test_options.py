"""Settings the megatron backend refuses (one clear error each, before anything is built), and
the Megatron model settings derived from an HF config and policy.megatron."""

from __future__ import annotations

import pytest
import torch
from nemo_rl.config import ConfigError, PolicyConfig
from nemo_rl.config.loader import load_config
from nemo_rl.config.megatron import MegatronConfig
from nemo_rl.infra.cluster import InlineCluster
from nemo_rl_megatron import MegatronTrainingBackend
from nemo_rl_megatron.layout import ModelLayout, UnsupportedModelError
from nemo_rl_megatron.model_builder import rope_kwargs, transformer_config_kwargs
from nemo_rl_megatron.parallel_setup import check_supported


def megatron(**fields) -> PolicyConfig:
    return PolicyConfig(backend="megatron", **fields)


@pytest.mark.parametrize(("fields", "message"), [
    ({"backend_options": {"tp": 2}}, "policy.backend_options \\['tp'\\] are not read"),
    ({"megatron": {"context_parallel_size": 2}}, "context_parallel_size > 1 needs TransformerEngine"),
    ({"sequence_packing": True, "max_tokens_per_microbatch": 64}, "sequence_packing is not supported"),
    ({"megatron": {"pipeline_parallel_size": 2}, "max_tokens_per_microbatch": 64},
     "max_tokens_per_microbatch .* cannot be used"),
])
def test_unsupported_settings_are_refused_with_the_fix(fields, message):
    with pytest.raises(ValueError, match=message):
        check_supported(megatron(**fields), "cuda")


def test_a_cpu_cluster_is_refused_before_any_worker_starts():
    with pytest.raises(RuntimeError, match="CUDA GPUs only .* policy.backend: dtensor"):
        MegatronTrainingBackend().setup(megatron(), InlineCluster(device="cpu"))


def test_the_megatron_section_is_validated_and_tied_to_the_backend():
    with pytest.raises(ConfigError, match="sequence_parallel .* tensor_parallel_size is 1"):
        load_config({"algorithm": "sft", "policy": {"backend": "megatron",
                                                    "megatron": {"sequence_parallel": True}}})
    with pytest.raises(ConfigError, match="policy.megatron.tensor_parallel_size set but policy.backend is 'dtensor'"):
        load_config({"algorithm": "sft", "policy": {"megatron": {"tensor_parallel_size": 2}}})
    with pytest.raises(ConfigError, match="tensor_paralel_size"):
        load_config({"algorithm": "sft", "policy": {"backend": "megatron",
                                                    "megatron": {"tensor_paralel_size": 2}}})
    cfg = load_config({"algorithm": "sft", "policy": {"backend": "megatron",
                                                      "megatron": {"tensor_parallel_size": 4}}})
    assert cfg.policy.megatron.model_parallel_size == 4


def test_recompute_settings_follow_activation_checkpointing():
    layout = ModelLayout("llama", 2, 64, 4, 2, 16, 96, 100, False, False, False)
    off = transformer_config_kwargs({}, layout, MegatronConfig(), torch.bfloat16)
    assert off["recompute_granularity"] is None
    full = transformer_config_kwargs({}, layout, MegatronConfig(), torch.bfloat16, True)
    assert (full["recompute_granularity"], full["recompute_method"]) == ("full", "uniform")
    selective = transformer_config_kwargs(
        {}, layout, MegatronConfig(recompute_granularity="selective", recompute_modules=["mlp"]),
        torch.float32, True)
    assert selective["recompute_modules"] == ["mlp"] and selective["bf16"] is False


def test_rope_scaling_megatron_cannot_reproduce_is_refused():
    assert rope_kwargs({"rope_theta": 1e6}) == {"rotary_base": 1000000, "rope_scaling": False}
    with pytest.raises(UnsupportedModelError, match="RoPE scaling .*backend=dtensor"):
        rope_kwargs({"rope_parameters": {"rope_type": "yarn", "factor": 4.0, "rope_theta": 1e4}})
