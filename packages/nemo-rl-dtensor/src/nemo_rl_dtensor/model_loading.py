"""Load an HF causal LM for training and shard it with FSDP2.

Master weights are always float32: on one device, bf16 compute comes from `torch.autocast`; with
several workers, from FSDP2's `MixedPrecisionPolicy` (bf16 parameters, float32 gradient
reduction). World size 1 keeps the plain module (no process group, no `fully_shard`), which is the
same math.

Example:
    >>> import torch
    >>> resolve_compute_dtype("auto", "cpu"), resolve_compute_dtype("auto", "cuda")
    (torch.float32, torch.bfloat16)
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from nemo_rl.config.policy import PolicyConfig

from nemo_rl_dtensor.fused_norms import fuse_rms_norms


def resolve_compute_dtype(precision: str, device_type: str) -> torch.dtype:
    """The dtype of forward/backward compute: `auto` is bfloat16 on GPU and float32 on CPU.

    float16 is refused: it needs dynamic loss scaling, which this backend does not do.

    Example:
        >>> resolve_compute_dtype("bfloat16", "cpu")
        torch.bfloat16
    """
    if precision == "auto":
        return torch.bfloat16 if device_type == "cuda" else torch.float32
    if precision == "bfloat16":
        return torch.bfloat16
    if precision == "float32":
        return torch.float32
    if precision == "float16":
        raise ValueError(
            "policy.precision='float16' is not supported by the dtensor backend (float16 training "
            "needs loss scaling); use 'bfloat16' or 'float32'"
        )
    raise ValueError(f"policy.precision={precision!r} is unknown; use auto, bfloat16 or float32")


def autocast_context(device: torch.device, compute_dtype: torch.dtype, sharded: bool) -> Any:
    """`torch.autocast` for an unsharded module computing below float32, else a no-op.

    Sharded modules get their compute dtype from FSDP2's mixed-precision policy instead.

    Example:
        >>> import torch
        >>> with autocast_context(torch.device("cpu"), torch.float32, sharded=False):
        ...     pass
    """
    if sharded or compute_dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=compute_dtype)


def load_causal_lm(
    model_name: str, trust_remote_code: bool = False, attention: str | None = None
) -> torch.nn.Module:
    """Load `model_name` (local path or hub name) as a float32 `AutoModelForCausalLM` on CPU,
    with attention implementation `attention` (None: transformers' default).

    Example:
        >>> # model = load_causal_lm("/models/tiny")
    """
    from nemo_rl.hub import pretrained_kwargs
    from transformers import AutoModelForCausalLM

    # A missing path or an unreachable hub fails here in one line, not after a minute of retries.
    extra = pretrained_kwargs(model_name, "policy.model_name")
    if attention is not None:
        extra["attn_implementation"] = attention
    try:
        model = AutoModelForCausalLM.from_pretrained(
            model_name, dtype=torch.float32, trust_remote_code=trust_remote_code, **extra
        )
    except OSError as err:
        raise OSError(
            f"policy.model_name={model_name!r} could not be loaded as a causal LM ({err}); pass a "
            "local HF model directory (config.json + safetensors) or a reachable hub name"
        ) from err
    model.config.use_cache = False  # training never reuses a KV cache
    return model


def decoder_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The transformer blocks of an HF causal LM (`model.model.layers` and common variants).

    Example:
        >>> # len(decoder_layers(model)) == model.config.num_hidden_layers
    """
    if hasattr(model, "peft_config") and hasattr(model, "get_base_model"):
        model = model.get_base_model()  # a LoRA-wrapped model: its blocks are the HF model's
    for owner_path in ("model", "model.decoder", "transformer", "gpt_neox"):
        owner: Any = model
        for part in owner_path.split("."):
            owner = getattr(owner, part, None)
        for attr in ("layers", "h", "blocks"):
            layers = getattr(owner, attr, None) if owner is not None else None
            if isinstance(layers, torch.nn.ModuleList):
                return list(layers)
    raise ValueError(
        f"cannot find the decoder layers of {type(model).__name__} (looked for model.layers, "
        "transformer.h and similar); the dtensor backend shards HF decoder-only models"
    )


def enable_activation_checkpointing(model: torch.nn.Module) -> None:
    """Recompute each decoder layer's activations in backward instead of storing them.

    Example:
        >>> # enable_activation_checkpointing(model); model.is_gradient_checkpointing -> True
    """
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.2x
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def compile_decoder_layers(model: torch.nn.Module) -> int:
    """`torch.compile` every decoder layer in place (`Module.compile`: names, parameters and
    checkpoints stay as they are); returns the number of layers.

    Shapes start static and become dynamic after the first recompilation (packed rows change
    length every micro-batch), so a run compiles about twice.

    Example:
        >>> # compile_decoder_layers(model) == model.config.num_hidden_layers
    """
    layers = decoder_layers(model)
    for layer in layers:
        layer.compile()
    return len(layers)


def shard_with_fsdp2(
    model: torch.nn.Module, device: torch.device, compute_dtype: torch.dtype
) -> None:
    """Shard `model` in place over the default process group: each decoder layer, then the root.

    Gradients are SUMMED over ranks (divide factor 1), not averaged: losses are already normalised
    by the global token/sequence counts, so the sum is the gradient of the global loss.

    Example:
        >>> # torch.distributed.init_process_group("gloo"); shard_with_fsdp2(model, cpu, float32)
    """
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import FSDPModule, MixedPrecisionPolicy, fully_shard

    mesh = init_device_mesh(device.type, (dist.get_world_size(),))
    policy = MixedPrecisionPolicy(param_dtype=compute_dtype, reduce_dtype=torch.float32)
    for layer in decoder_layers(model):
        fully_shard(layer, mesh=mesh, mp_policy=policy)
    fully_shard(model, mesh=mesh, mp_policy=policy)
    for module in model.modules():
        if isinstance(module, FSDPModule):
            module.set_gradient_divide_factor(1.0)
            # A plain SUM collective: gloo has no PREMUL_SUM, and a factor of 1 needs no scaling.
            module.set_force_sum_reduction_for_comms(True)


def _attention(config: PolicyConfig, device: torch.device, compute_dtype: torch.dtype) -> str | None:
    from transformers import AutoConfig

    from nemo_rl_dtensor.attention import resolve_attention

    choice = config.dtensor.attention
    if choice != "auto" or device.type != "cuda":  # only auto on CUDA reads the model's config
        return resolve_attention(choice, device.type, compute_dtype, None)
    hf_config = AutoConfig.from_pretrained(config.model_name, trust_remote_code=config.trust_remote_code)
    return resolve_attention(choice, device.type, compute_dtype, hf_config)


def prepare_training_model(
    config: PolicyConfig, device: torch.device, world_size: int
) -> tuple[torch.nn.Module, torch.dtype]:
    """Load, checkpoint, add LoRA adapters (`policy.lora.enabled`), shard (world size > 1) and
    place the policy; return it and its compute dtype.

    Example:
        >>> # model, dtype = prepare_training_model(cfg, torch.device("cpu"), world_size=1)
    """
    compute_dtype = resolve_compute_dtype(config.precision, device.type)
    if config.lora.enabled:
        from nemo_rl_dtensor.lora import require_peft

        require_peft()  # before the model loads: a missing package fails in a second
    model = load_causal_lm(config.model_name, config.trust_remote_code,
                           _attention(config, device, compute_dtype))
    fuse_rms_norms(model)  # one kernel per norm: HF decoding and training launch far fewer
    if config.activation_checkpointing:
        enable_activation_checkpointing(model)
    if config.lora.enabled:
        from nemo_rl_dtensor.lora import add_lora_adapters

        # Before fully_shard, so FSDP2 groups the adapters with the frozen weights of each layer.
        model = add_lora_adapters(model, config.lora)
    if config.dtensor.compile:
        compile_decoder_layers(model)  # after adapters (compiled with them), before sharding
    if world_size > 1:
        shard_with_fsdp2(model, device, compute_dtype)
    model.to(device)
    model.train()
    return model, compute_dtype
