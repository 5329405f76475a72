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
from nemo_rl.config.dtensor import DTensorConfig, moved_field_problem
from nemo_rl.config.lora import LoRAConfig
from nemo_rl.config.megatron import MegatronConfig
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

    name: Literal["adamw", "adam", "sgd"] = Field("adamw", description="adamw, adam or sgd.")
    lr: PositiveFloat = Field(
        5.0e-6, description="Learning rate (the peak, when a schedule is set)."
    )
    weight_decay: NonNegativeFloat = Field(
        0.01, description="Weight decay: decoupled for adamw, an L2 term for adam and sgd."
    )
    betas: tuple[AdamBeta, AdamBeta] = Field(
        (0.9, 0.999), description="Adam's moment coefficients (beta1, beta2), each in [0, 1)."
    )
    eps: PositiveFloat = Field(1.0e-8, description="Adam's epsilon, added to the denominator.")


class SchedulerConfig(ConfigModel):
    """The learning-rate schedule, stepped once per optimizer update.

    `min_lr_ratio` is the final learning rate of the linear and cosine schedules as a fraction of
    `optimizer.lr`. With `total_steps` None the trainer uses the run's number of updates.

    Example:
        >>> SchedulerConfig(name="cosine", warmup_steps=10).min_lr_ratio
        0.0
    """

    name: Literal["constant", "linear", "cosine"] = Field(
        "constant",
        description="After the warmup: constant, linear decay or cosine decay to min_lr_ratio.",
    )
    warmup_steps: NonNegativeInt = Field(
        0, description="Optimizer updates of linear warmup from 0 to optimizer.lr."
    )
    min_lr_ratio: Probability = Field(
        0.0,
        description="Final learning rate of the linear and cosine schedules, as a fraction of "
        "optimizer.lr.",
    )
    total_steps: PositiveInt | None = Field(
        None, description="Optimizer updates the schedule spans; None: the run's number of updates."
    )


class PolicyConfig(ConfigModel):
    """The policy model and how it is trained.

    `backend` names a registered training backend (`nemo-rl plugins` lists them); options that only
    one backend understands go to `backend_options`, which that backend validates.

    Example:
        >>> PolicyConfig(model_name="/models/tiny", precision="float32").precision
        'float32'
    """

    model_name: str = Field(
        "Qwen/Qwen2.5-1.5B-Instruct", description="HF model directory or hub name of the policy."
    )
    tokenizer: TokenizerConfig = Field(
        default_factory=TokenizerConfig, description="Which tokenizer and chat template."
    )
    backend: str = Field("dtensor", description="Training backend: dtensor, megatron (nemo-rl-megatron), or a plugin's.")
    backend_options: dict[str, Any] = Field(
        default_factory=dict,
        description="Options only the chosen training backend understands; that backend validates "
        "them.",
    )
    precision: Literal["auto", "bfloat16", "float16", "float32"] = Field(
        "auto", description="auto: bfloat16 on GPU, float32 on CPU."
    )
    trust_remote_code: bool = Field(
        False, description="Let transformers run Python code shipped with the model."
    )
    optimizer: OptimizerConfig = Field(
        default_factory=OptimizerConfig, description="The optimizer."
    )
    scheduler: SchedulerConfig = Field(
        default_factory=SchedulerConfig, description="The learning-rate schedule."
    )
    max_grad_norm: PositiveFloat | None = Field(
        1.0, description="Clip the global gradient norm to this value; None: no clipping."
    )
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
    activation_checkpointing: bool = Field(
        False, description="Recompute activations in the backward pass: less memory, more compute."
    )
    dtensor: DTensorConfig = Field(
        default_factory=DTensorConfig,
        description="Options of the dtensor backend (reference weights on CPU); only with "
        "backend: dtensor.",
    )
    lora: LoRAConfig = Field(
        default_factory=LoRAConfig,
        description="LoRA adapters: train low-rank adapters on a frozen model instead of all weights.",
    )
    megatron: MegatronConfig = Field(
        default_factory=MegatronConfig,
        description="Parallelism and recomputation of the megatron backend; only with backend: "
        "megatron.",
    )

    @model_validator(mode="before")
    @classmethod
    def _moved_fields(cls, data: Any) -> Any:
        problem = moved_field_problem(data)
        if problem:
            raise ValueError(problem)
        return data

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
        # Compared with the defaults, not model_fields_set: a full dump of any run names the
        # section, and loading that dump back must work.
        for section, default in (("megatron", MegatronConfig()), ("dtensor", DTensorConfig())):
            given = getattr(self, section)
            if given != default and self.backend != section:
                changed = [f"policy.{section}.{name}" for name in type(given).model_fields
                           if getattr(given, name) != getattr(default, name)]
                raise ValueError(
                    f"{', '.join(changed)} set but policy.backend is {self.backend!r}, which does "
                    f"not read the policy.{section} section; set policy.backend: {section}, or "
                    f"remove the policy.{section} section"
                )
        return self

    @property
    def tokenizer_name(self) -> str:
        """The tokenizer to load: `tokenizer.name`, or the model's own."""
        return self.tokenizer.name or self.model_name
