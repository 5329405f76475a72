"""Configuration of the Megatron-core training backend (`policy.megatron`).

Read only when `policy.backend` is `megatron` (the `nemo-rl-megatron` package); setting it for
another backend is an error, since nothing would read it. This module is plain pydantic: core
never imports megatron-core. `policy.activation_checkpointing` switches recomputation on; the
fields here say how.

Example:
    >>> from nemo_rl.config.megatron import MegatronConfig
    >>> cfg = MegatronConfig(tensor_parallel_size=2, sequence_parallel=True)
    >>> cfg.use_distributed_optimizer, cfg.model_parallel_size
    (True, 2)
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from nemo_rl.config.base import ConfigModel
from nemo_rl.config.types import PositiveInt

RecomputeModule = Literal["core_attn", "mlp", "layernorm"]


class MegatronConfig(ConfigModel):
    """Parallelism and memory settings of the Megatron backend (see the module docstring).

    The data-parallel size is what is left: world size / (tensor x pipeline x context).

    Example:
        >>> MegatronConfig(pipeline_parallel_size=2).recompute_granularity
        'full'
    """

    tensor_parallel_size: PositiveInt = Field(
        1, description="Ranks that split each layer's weights (attention heads, MLP, vocabulary)."
    )
    pipeline_parallel_size: PositiveInt = Field(
        1, description="Ranks that split the layers into consecutive stages."
    )
    context_parallel_size: PositiveInt = Field(
        1, description="Ranks that split each sequence. Only 1 runs: context parallelism needs "
        "TransformerEngine attention, which the backend's local layer spec does not use.",
    )
    sequence_parallel: bool = Field(
        False, description="Split layer-norm and dropout activations along the sequence over the "
        "tensor-parallel ranks (needs tensor_parallel_size > 1).",
    )
    use_distributed_optimizer: bool = Field(
        True, description="Shard optimizer state and fp32 master weights over data-parallel ranks."
    )
    overlap_grad_reduce: bool = Field(
        False, description="Overlap the data-parallel gradient reduction with the backward pass."
    )
    overlap_param_gather: bool = Field(
        False, description="Overlap the distributed optimizer's parameter all-gather with the "
        "next forward pass (needs use_distributed_optimizer).",
    )
    recompute_granularity: Literal["full", "selective"] = Field(
        "full", description="With policy.activation_checkpointing: recompute whole layers (full) "
        "or only recompute_modules (selective).",
    )
    recompute_modules: list[RecomputeModule] | None = Field(
        None, description="Modules recomputed with recompute_granularity=selective; None: "
        "core_attn (Megatron's default).",
    )
    vocab_size_divisible_by: PositiveInt = Field(
        128, description="Pad the vocabulary to a multiple of this times tensor_parallel_size "
        "(padding rows never receive probability; exported weights drop them).",
    )

    @property
    def model_parallel_size(self) -> int:
        """Ranks that hold one copy of the model: tensor x pipeline x context."""
        return self.tensor_parallel_size * self.pipeline_parallel_size * self.context_parallel_size

    @model_validator(mode="after")
    def _check_combinations(self) -> MegatronConfig:
        if self.sequence_parallel and self.tensor_parallel_size == 1:
            raise ValueError(
                "policy.megatron.sequence_parallel splits activations over tensor-parallel ranks, "
                "but tensor_parallel_size is 1; set tensor_parallel_size > 1 or sequence_parallel: "
                "false"
            )
        if self.overlap_param_gather and not self.use_distributed_optimizer:
            raise ValueError(
                "policy.megatron.overlap_param_gather needs use_distributed_optimizer: true (only "
                "the distributed optimizer gathers parameters); enable it or set "
                "overlap_param_gather: false"
            )
        if self.recompute_modules is not None and self.recompute_granularity != "selective":
            raise ValueError(
                "policy.megatron.recompute_modules is only read with recompute_granularity: "
                "selective; set that, or remove recompute_modules"
            )
        return self
