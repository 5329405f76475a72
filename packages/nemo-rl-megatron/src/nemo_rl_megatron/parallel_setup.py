"""Process groups, precision and option checks of one Megatron rank (imports megatron-core lazily).

Example:
    >>> from nemo_rl.config import PolicyConfig
    >>> check_supported(PolicyConfig(backend="megatron"), "cuda")  # the defaults run
    >>> check_supported(PolicyConfig(backend="megatron"), "cpu")
    Traceback (most recent call last):
    ...
    RuntimeError: the megatron backend runs on CUDA GPUs only (cluster device 'cpu'); on a CPU use policy.backend: dtensor
"""

from __future__ import annotations

import os
import socket

import torch
from nemo_rl.config.policy import PolicyConfig


def check_supported(config: PolicyConfig, device_type: str) -> None:
    """Raise one clear error for a setting this backend cannot run, before anything is built."""
    if device_type != "cuda":
        raise RuntimeError(
            f"the megatron backend runs on CUDA GPUs only (cluster device {device_type!r}); on a "
            "CPU use policy.backend: dtensor"
        )
    if config.backend_options:
        raise ValueError(
            f"policy.backend_options {sorted(config.backend_options)} are not read by the megatron "
            "backend; its settings live in policy.megatron (see `nemo-rl config schema`)"
        )
    if config.megatron.context_parallel_size > 1:
        raise ValueError(
            "policy.megatron.context_parallel_size > 1 needs TransformerEngine attention, which "
            "the backend's local layer spec does not use; set it to 1"
        )
    if config.sequence_packing:
        raise ValueError(
            "policy.sequence_packing is not supported by the megatron backend yet; set it to "
            "false (policy.max_tokens_per_microbatch still batches by token budget)"
        )
    if config.lora.enabled:
        raise ValueError("policy.lora is not supported by the megatron backend; use dtensor")
    if config.megatron.pipeline_parallel_size > 1 and config.max_tokens_per_microbatch is not None:
        raise ValueError(
            "pipeline parallelism sends activations of one fixed shape between stages, so "
            "policy.max_tokens_per_microbatch (variable micro-batches) cannot be used with "
            "policy.megatron.pipeline_parallel_size > 1; remove it"
        )


def params_dtype(precision: str) -> torch.dtype:
    """The dtype of the model's parameters (the optimizer keeps float32 master weights).

    Example:
        >>> params_dtype("auto")
        torch.bfloat16
    """
    return {"auto": torch.bfloat16, "bfloat16": torch.bfloat16, "float16": torch.float16,
            "float32": torch.float32}[precision]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def init_parallel_state(config: PolicyConfig) -> None:
    """Join (or, alone in this process, start) torch.distributed with NCCL and build Megatron's
    tensor/pipeline/data-parallel groups; seed Megatron's per-rank RNG tracker."""
    import torch.distributed as dist
    from megatron.core import parallel_state
    from megatron.core.tensor_parallel.random import model_parallel_cuda_manual_seed

    if not dist.is_initialized():
        # An inline cluster runs one rank in the driver: a world of one, still with NCCL, because
        # Megatron's layers and schedules call collectives on their groups.
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", str(_free_port()))
        dist.init_process_group("nccl", rank=0, world_size=1)
    torch.cuda.set_device(torch.cuda.current_device())
    options = config.megatron
    world = dist.get_world_size()
    if world % options.model_parallel_size != 0:
        raise ValueError(
            f"the cluster has {world} GPU(s), which is not a multiple of tensor x pipeline x "
            f"context parallel = {options.model_parallel_size}; change policy.megatron or the "
            "cluster size"
        )
    if not parallel_state.model_parallel_is_initialized():
        parallel_state.initialize_model_parallel(
            tensor_model_parallel_size=options.tensor_parallel_size,
            pipeline_model_parallel_size=options.pipeline_parallel_size,
            context_parallel_size=options.context_parallel_size,
        )
    model_parallel_cuda_manual_seed(1234)
