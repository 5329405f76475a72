"""Configuration of the trained policy: model, precision, optimizer, scheduler, batching.

Batch sizes are always counted in sequences (one prompt plus one response is one sequence), except
`max_tokens_per_microbatch`, which is counted in tokens.

Example:
    >>> from nemo_rl.config import PolicyConfig
    >>> cfg = PolicyConfig(model_name="Qwen/Qwen2.5-0.5B", train_micro_batch_size=2)
    >>> cfg.backend, cfg.optimizer.name
    ('dtensor', 'adamw')
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from nemo_rl.config.base import ConfigModel
from nemo_rl.config.lora import LoRAConfig
from nemo_rl.config.types import (
    AdamBeta,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    Probability,
)


class TokenizerConfig(ConfigModel):
    """Which tokenizer to load and how to apply chat templates.

    Example:
        >>> TokenizerConfig(name="gpt2").chat_template is None
        True
    """

    name: str | None = Field(None, description="Tokenizer path or hub name; None uses policy.model_name.")
    chat_template: str | None = Field(
        None, description="A Jinja chat template overriding the tokenizer's own; None keeps it."
    )


class OptimizerConfig(ConfigModel):
    """The optimizer built by the training backend.

    Example:
        >>> OptimizerConfig(lr=1e-6).weight_decay
        0.01
    """

    name: Literal["adamw", "adam", "sgd"] = "adamw"
    lr: PositiveFloat = 5.0e-6
    weight_decay: NonNegativeFloat = 0.01
    betas: tuple[AdamBeta, AdamBeta] = (0.9, 0.999)
    eps: PositiveFloat = 1.0e-8


class SchedulerConfig(ConfigModel):
    """The learning-rate schedule, stepped once per optimizer update.

    `min_lr_ratio` is the final learning rate of the linear and cosine schedules as a fraction of
    `optimizer.lr`. With `total_steps` None the trainer uses the run's number of updates.

    Example:
        >>> SchedulerConfig(name="cosine", warmup_steps=10).min_lr_ratio
        0.0
    """

    name: Literal["constant", "linear", "cosine"] = "constant"
    warmup_steps: NonNegativeInt = 0
    min_lr_ratio: Probability = 0.0
    total_steps: PositiveInt | None = None


class PolicyConfig(ConfigModel):
    """The policy model and how it is trained.

    `backend` names a registered training backend (`nemo-rl plugins` lists them); options that only
    one backend understands go to `backend_options`, which that backend validates.

    Example:
        >>> PolicyConfig(model_name="/models/tiny", precision="float32").precision
        'float32'
    """

    model_name: str = "Qwen/Qwen2.5-1.5B-Instruct"
    tokenizer: TokenizerConfig = Field(default_factory=TokenizerConfig)
    backend: str = Field("dtensor", description="Training backend: dtensor, or a plugin's (megatron: not available yet).")
    backend_options: dict[str, Any] = Field(default_factory=dict)
    precision: Literal["auto", "bfloat16", "float16", "float32"] = Field(
        "auto", description="auto: bfloat16 on GPU, float32 on CPU."
    )
    trust_remote_code: bool = False
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    max_grad_norm: PositiveFloat | None = 1.0
    train_global_batch_size: PositiveInt | None = Field(
        None,
        description="Sequences per optimizer update; None means all sequences of a step in one update.",
    )
    train_micro_batch_size: PositiveInt = Field(4, description="Sequences per forward/backward pass.")
    logprob_batch_size: PositiveInt | None = Field(
        None, description="Sequences per log-prob forward pass; None uses train_micro_batch_size."
    )
    max_total_sequence_length: PositiveInt = Field(
        1024, description="Longest prompt plus response, in tokens."
    )
    max_tokens_per_microbatch: PositiveInt | None = Field(
        None, description="If set, micro-batches are formed by token budget (dynamic batching)."
    )
    sequence_packing: bool = Field(False, description="Pack sequences so no padding is computed.")
    activation_checkpointing: bool = False
    offload_reference_to_cpu: bool = Field(
        True, description="Keep reference weights on CPU and swap them in for reference log-probs "
        "(with LoRA there is no copy: the reference is the model with its adapters off)."
    )
    lora: LoRAConfig = Field(
        default_factory=LoRAConfig,
        description="LoRA adapters: train low-rank adapters on a frozen model instead of all weights.",
    )

    @model_validator(mode="after")
    def _check_batch_sizes(self) -> PolicyConfig:
        gbs, mbs = self.train_global_batch_size, self.train_micro_batch_size
        if gbs is not None and gbs % mbs != 0:
            raise ValueError(
                f"policy.train_global_batch_size ({gbs}) must be a multiple of "
                f"policy.train_micro_batch_size ({mbs}); set one so that it divides the other"
            )
        if self.sequence_packing and self.max_tokens_per_microbatch is None:
            raise ValueError(
                "policy.sequence_packing needs policy.max_tokens_per_microbatch (the packed row "
                "length in tokens); set it, for example to policy.max_total_sequence_length"
            )
        return self

    @property
    def tokenizer_name(self) -> str:
        """The tokenizer to load: `tokenizer.name`, or the model's own."""
        return self.tokenizer.name or self.model_name
