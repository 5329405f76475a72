"""A megatron-core GPTModel (local layer spec, no TransformerEngine) shaped like an HF decoder.

`transformer_config_kwargs` and `rope_kwargs` are pure: they read the HF config and
`policy.megatron` and return the keyword arguments of Megatron's `TransformerConfig` and of
`GPTModel`'s rotary settings. `build_gpt_model` imports megatron-core and builds this rank's
pipeline stage (it needs `parallel_state.initialize_model_parallel` done first).

Example:
    >>> rope_kwargs({"rope_parameters": {"rope_type": "default", "rope_theta": 1e6}})
    {'rotary_base': 1000000, 'rope_scaling': False}
"""

from __future__ import annotations

from typing import Any

import torch
from nemo_rl.config.megatron import MegatronConfig

from nemo_rl_megatron.layout import ModelLayout, UnsupportedModelError

# Megatron applies Llama 3's frequency scaling with these constants built in.
_LLAMA3_FIXED = {"low_freq_factor": 1.0, "high_freq_factor": 4.0,
                 "original_max_position_embeddings": 8192}


def _as_dict(hf_config: Any) -> dict[str, Any]:
    return hf_config.to_dict() if hasattr(hf_config, "to_dict") else dict(hf_config)


def rope_kwargs(hf_config: Any) -> dict[str, Any]:
    """GPTModel's rotary arguments for the HF config's RoPE (default, or Llama 3 scaling).

    Example:
        >>> rope_kwargs({"rope_theta": 500000.0, "rope_scaling": {"rope_type": "llama3",
        ...     "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
        ...     "original_max_position_embeddings": 8192}})
        {'rotary_base': 500000, 'rope_scaling': True, 'rope_scaling_factor': 32.0}
    """
    cfg = _as_dict(hf_config)
    # transformers 5 keeps RoPE settings in rope_parameters, older versions in rope_theta/rope_scaling.
    params = dict(cfg.get("rope_parameters") or cfg.get("rope_scaling") or {})
    theta = params.get("rope_theta", cfg.get("rope_theta", 10000.0))
    kind = params.get("rope_type", params.get("type", "default"))
    out: dict[str, Any] = {"rotary_base": int(theta), "rope_scaling": False}
    if kind == "default":
        return out
    if kind == "llama3" and all(params.get(k) == v for k, v in _LLAMA3_FIXED.items()):
        return {**out, "rope_scaling": True, "rope_scaling_factor": float(params["factor"])}
    raise UnsupportedModelError(
        f"RoPE scaling {params} is not one the Megatron backend reproduces (default, or llama3 "
        f"with {_LLAMA3_FIXED}); train this model with policy.backend=dtensor"
    )


def transformer_config_kwargs(
    hf_config: Any,
    layout: ModelLayout,
    options: MegatronConfig,
    params_dtype: torch.dtype,
    activation_checkpointing: bool = False,
) -> dict[str, Any]:
    """Keyword arguments of Megatron's `TransformerConfig` for this model and these options.

    Dropout is off (RL fine-tuning compares log-probs across passes); fusions that need
    TransformerEngine or Apex are off.

    Example:
        >>> layout = ModelLayout("qwen2", 2, 64, 4, 2, 16, 96, 100, True, True, False)
        >>> kw = transformer_config_kwargs({"rms_norm_eps": 1e-6}, layout, MegatronConfig(), torch.bfloat16)
        >>> kw["num_query_groups"], kw["add_qkv_bias"], kw["bf16"], kw["recompute_granularity"]
        (2, True, True, None)
    """
    cfg = _as_dict(hf_config)
    recompute: dict[str, Any] = {"recompute_granularity": None}
    if activation_checkpointing:
        recompute = {"recompute_granularity": options.recompute_granularity}
        if options.recompute_granularity == "full":
            recompute.update(recompute_method="uniform", recompute_num_layers=1)
        else:
            recompute["recompute_modules"] = list(options.recompute_modules or ["core_attn"])
    return dict(
        num_layers=layout.num_layers,
        hidden_size=layout.hidden_size,
        num_attention_heads=layout.num_heads,
        num_query_groups=layout.num_query_groups,
        kv_channels=layout.head_dim,
        ffn_hidden_size=layout.ffn_hidden_size,
        normalization="RMSNorm",
        layernorm_epsilon=float(cfg.get("rms_norm_eps", 1e-6)),
        gated_linear_unit=True,
        activation_func=torch.nn.functional.silu,
        add_bias_linear=False,
        add_qkv_bias=layout.qkv_bias,
        qk_layernorm=layout.qk_norm,
        hidden_dropout=0.0,
        attention_dropout=0.0,
        bias_dropout_fusion=False,
        apply_rope_fusion=False,
        masked_softmax_fusion=False,
        gradient_accumulation_fusion=False,
        persist_layer_norm=False,
        params_dtype=params_dtype,
        bf16=params_dtype == torch.bfloat16,
        fp16=params_dtype == torch.float16,
        pipeline_dtype=params_dtype,
        tensor_model_parallel_size=options.tensor_parallel_size,
        pipeline_model_parallel_size=options.pipeline_parallel_size,
        context_parallel_size=options.context_parallel_size,
        sequence_parallel=options.sequence_parallel,
        # Losses arrive normalised by the global token count: gradients are summed, not averaged.
        calculate_per_token_loss=True,
        perform_initialization=False,  # every weight is loaded from the HF checkpoint
        **recompute,
    )


def build_gpt_model(
    hf_config: Any,
    layout: ModelLayout,
    padded_vocab_size: int,
    params_dtype: torch.dtype,
    options: MegatronConfig | None = None,
    activation_checkpointing: bool = False,
    cpu: bool = False,
) -> torch.nn.Module:
    """This rank's GPTModel stage (embedding on the first stage, output layer on the last).

    `cpu=True` allocates on the CPU (tests of names and shapes); otherwise on the current GPU.

    Example:
        >>> # model = build_gpt_model(hf_config, layout, 151936, torch.bfloat16, options)
    """
    from megatron.core import parallel_state
    from megatron.core.models.gpt import GPTModel
    from megatron.core.models.gpt.gpt_layer_specs import get_gpt_layer_local_spec
    from megatron.core.transformer.transformer_config import TransformerConfig

    options = options or MegatronConfig()
    kwargs = transformer_config_kwargs(
        hf_config, layout, options, params_dtype, activation_checkpointing
    )
    config = TransformerConfig(**kwargs, use_cpu_initialization=cpu)
    spec = get_gpt_layer_local_spec(qk_layernorm=layout.qk_norm, normalization="RMSNorm")
    max_positions = int(_as_dict(hf_config).get("max_position_embeddings", 4096))
    return GPTModel(
        config,
        spec,
        vocab_size=padded_vocab_size,
        max_sequence_length=max_positions,
        pre_process=parallel_state.is_pipeline_first_stage(),
        post_process=parallel_state.is_pipeline_last_stage(),
        share_embeddings_and_output_weights=layout.tied_embeddings,
        position_embedding_type="rope",
        **rope_kwargs(hf_config),
    )
