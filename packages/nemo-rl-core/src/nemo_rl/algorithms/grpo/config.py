"""GRPO configuration: the loss (with its DAPO, Dr.GRPO, GSPO and CISPO variants) and the loop.

Example:
    >>> from nemo_rl.algorithms.grpo import GRPOConfig
    >>> cfg = GRPOConfig(num_prompts_per_step=8, num_generations_per_prompt=4)
    >>> cfg.sequences_per_step
    32
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from nemo_rl.config.algorithm import AlgorithmConfig
from nemo_rl.config.base import ConfigModel
from nemo_rl.config.generation import GenerationConfig
from nemo_rl.config.types import FiniteFloat, NonNegativeFloat, PositiveFloat, PositiveInt


class GRPOLossConfig(ConfigModel):
    """The policy loss: `name` picks a registered loss (`clipped_pg`, the clipped policy gradient
    with its DAPO, Dr.GRPO, GSPO and CISPO variants, see `ClippedPGLoss`); the other fields are
    that family's options, and `options` holds a plugin loss's own settings.

    Example:
        >>> GRPOLossConfig(ratio_clip_max=0.28).ratio_clip_min  # DAPO's clip-higher
        0.2
    """

    name: str = Field(
        "clipped_pg",
        description="A registered policy loss: clipped_pg, or a plugin's (group "
        "`nemo_rl.policy_losses`); it is built from this `loss` section.",
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="Settings of a plugin loss, validated by that loss; clipped_pg takes none.",
    )
    ratio_clip_min: NonNegativeFloat = Field(
        0.2, description="Lower clip of the probability ratio r: r >= 1 - ratio_clip_min."
    )
    ratio_clip_max: NonNegativeFloat = Field(
        0.2,
        description="Upper clip of the probability ratio r: r <= 1 + ratio_clip_max (DAPO's "
        "clip-higher uses 0.28).",
    )
    ratio_clip_c: PositiveFloat | None = Field(None, description="Dual-clip constant c > 1, or None.")
    kl_penalty: NonNegativeFloat = Field(
        0.01, description="Weight of the KL penalty to the reference policy; 0 turns it off."
    )
    kl_type: Literal["k1", "k2", "k3"] = Field(
        "k3",
        description="KL estimator, with d = reference - policy log-prob: k1 = -d, k2 = d^2 / 2, "
        "k3 = exp(d) - 1 - d.",
    )
    kl_input_clamp: PositiveFloat | None = Field(
        20.0, description="Clamp of d to [-c, c] before the KL estimate; None: no clamp."
    )
    kl_output_clamp: PositiveFloat | None = Field(
        10.0, description="Clamp of each token's KL estimate to [-c, c]; None: no clamp."
    )
    token_level_loss: bool = Field(
        True,
        description="true: average over every valid token of the batch; false: average each "
        "sequence over its tokens, then over sequences.",
    )
    sequence_level_importance_ratios: bool = Field(
        False,
        description="GSPO: one probability ratio per sequence (exp of its mean token log-ratio) "
        "instead of one per token.",
    )
    use_importance_sampling_correction: bool = Field(
        False,
        description="Weight each token by exp(prev_logprobs - generation_logprobs): corrects for "
        "the generation backend's numerical gap to the trained policy.",
    )
    truncated_importance_sampling_type: Literal["tis", "icepop", "seq-mask-tis"] | None = Field(
        None,
        description="Truncation of that weight to [ratio_min, ratio]: tis clamps it, icepop sets "
        "it to 0 outside, seq-mask-tis drops whole sequences whose geometric-mean "
        "weight is outside; None: none.",
    )
    truncated_importance_sampling_ratio: PositiveFloat | None = Field(
        None, description="Upper bound of the truncated importance weight."
    )
    truncated_importance_sampling_ratio_min: NonNegativeFloat | None = Field(
        None, description="Lower bound of the truncated importance weight; None: 0."
    )
    use_cispo: bool = Field(
        False,
        description="CISPO: the clipped, detached ratio weights the log-prob gradient instead of "
        "clipping the objective.",
    )

    @model_validator(mode="after")
    def _check(self) -> GRPOLossConfig:
        if self.name == "clipped_pg" and self.options:
            raise ValueError(
                f"loss.options {sorted(self.options)} are not read by the clipped_pg loss; set "
                "its fields under loss directly (e.g. loss.ratio_clip_max), or remove "
                "loss.options"
            )
        if self.ratio_clip_c is not None and self.ratio_clip_c <= 1.0:
            raise ValueError(
                f"loss.ratio_clip_c must be greater than 1 (got {self.ratio_clip_c}); "
                "use 3.0 as in the dual-clip paper, or None to disable it"
            )
        if self.truncated_importance_sampling_type is not None:
            if not self.use_importance_sampling_correction:
                raise ValueError(
                    "loss.truncated_importance_sampling_type needs "
                    "loss.use_importance_sampling_correction=true"
                )
            if self.truncated_importance_sampling_ratio is None:
                raise ValueError(
                    "loss.truncated_importance_sampling_type needs an upper bound: set "
                    "loss.truncated_importance_sampling_ratio (for example 2.0)"
                )
        return self


class RewardScalingConfig(ConfigModel):
    """Linear map of rewards from [source_min, source_max] to [target_min, target_max], clipped."""

    enabled: bool = Field(
        False,
        description="Map rewards linearly from [source_min, source_max] to [target_min, "
        "target_max], clipped.",
    )
    source_min: FiniteFloat = Field(0.0, description="The reward mapped to target_min.")
    source_max: FiniteFloat = Field(1.0, description="The reward mapped to target_max.")
    target_min: FiniteFloat = Field(0.0, description="Lowest reward after scaling.")
    target_max: FiniteFloat = Field(1.0, description="Highest reward after scaling.")

    @model_validator(mode="after")
    def _check_range(self) -> RewardScalingConfig:
        # The map divides by source_max - source_min: caught at load time rather than at step 1.
        if self.enabled and self.source_max == self.source_min:
            raise ValueError(
                f"reward_scaling.source_min and reward_scaling.source_max are both "
                f"{self.source_min}: the source range is empty; set source_max above source_min "
                "(for example 0 and 1)"
            )
        return self


class RewardShapingConfig(ConfigModel):
    """DAPO's overlong penalty: responses longer than max_response_length - overlong_buffer_length
    lose up to `overlong_buffer_penalty` reward, linearly in the excess length."""

    enabled: bool = Field(False, description="Apply the overlong penalty.")
    overlong_buffer_length: PositiveInt = Field(
        128, description="The penalty starts this many tokens before max_response_length."
    )
    overlong_buffer_penalty: NonNegativeFloat = Field(
        1.0,
        description="Reward lost by a response of max_response_length tokens (linear in the "
        "excess length).",
    )
    max_response_length: PositiveInt | None = Field(
        None, description="None uses generation.max_new_tokens."
    )


class EnvironmentPoolConfig(ConfigModel):
    """Where the environment's steps run (`nemo_rl.environments.EnvironmentPool`).

    Example:
        >>> EnvironmentPoolConfig(mode="threads", max_workers=8).timeout_s is None
        True
    """

    mode: Literal["inline", "threads", "processes", "ray"] = Field(
        "inline",
        description="inline; threads (environments waiting on I/O); processes (CPU-bound Python "
        "scoring); ray (expensive environments, as Ray actors).",
    )
    max_workers: PositiveInt = Field(4, description="Chunks stepped at once (threads/processes/actors).")
    timeout_s: PositiveFloat | None = Field(None, description="Limit of one step call; None: none.")
    ray_num_cpus: NonNegativeFloat = Field(1.0, description="CPUs each Ray environment actor reserves.")
    ray_num_gpus: NonNegativeFloat = Field(0.0, description="GPUs each Ray environment actor reserves.")


class GRPOConfig(AlgorithmConfig):
    """Group Relative Policy Optimization and its variants.

    Each step samples `num_prompts_per_step` prompts and `num_generations_per_prompt` responses
    for each: `sequences_per_step` sequences in all.

    Example:
        >>> GRPOConfig(loss=GRPOLossConfig(kl_penalty=0.0)).loss.kl_penalty
        0.0
    """

    algorithm: Literal["grpo"] = Field("grpo", description="Selects this config: algorithm: grpo.")
    trainer_class: ClassVar[str] = "nemo_rl.algorithms.grpo.trainer:GRPOTrainer"
    num_prompts_per_step: PositiveInt = Field(32, description="Prompts sampled per step.")
    num_generations_per_prompt: PositiveInt = Field(
        16, description="Responses generated per prompt: the group whose rewards are compared."
    )
    generation: GenerationConfig = Field(
        default_factory=GenerationConfig, description="The generation backend and how it samples."
    )
    loss: GRPOLossConfig = Field(
        default_factory=GRPOLossConfig,
        description="The clipped policy-gradient loss and its variants.",
    )
    advantage_estimator: str = Field(
        "grpo",
        description="A registered advantage estimator: grpo, rloo, reinforce_plus_plus, or a "
        "plugin's (group `nemo_rl.advantage_estimators`).",
    )
    use_leave_one_out_baseline: bool = Field(
        True,
        description="grpo estimator: a sample's baseline is the mean reward of the other samples "
        "of its prompt, not of all of them.",
    )
    normalize_rewards: bool = Field(
        True,
        description="grpo estimator: divide each advantage by the standard deviation of its "
        "prompt's rewards.",
    )
    minus_baseline: bool = Field(
        True, description="reinforce_plus_plus: subtract each prompt's mean reward before whitening."
    )
    reward_scaling: RewardScalingConfig = Field(
        default_factory=RewardScalingConfig,
        description="A linear map of the rewards, applied before the advantages.",
    )
    reward_shaping: RewardShapingConfig = Field(
        default_factory=RewardShapingConfig, description="DAPO's overlong penalty."
    )
    overlong_filtering: bool = Field(False, description="Truncated responses get sample_mask 0.")
    overlong_prompts: Literal["filter", "truncate"] = Field(
        "filter",
        description="Prompts longer than policy.max_total_sequence_length - 1 tokens (or "
        "data.max_input_seq_length if lower), each on its own: filter (not generated from nor "
        "trained on) or truncate (keep the last tokens). Counted as data/prompts_filtered and "
        "data/prompts_truncated.",
    )
    use_dynamic_sampling: bool = Field(
        False, description="DAPO: keep only groups whose rewards differ, refill until full."
    )
    dynamic_sampling_max_gen_batches: PositiveInt = Field(
        10,
        description="With use_dynamic_sampling: generation rounds allowed to fill one step before "
        "the run stops with an error.",
    )
    epochs_per_rollout: PositiveInt = Field(
        1, description="Optimizer passes over each rollout batch (prev_logprobs fixed before the first)."
    )
    reuse_training_logprobs: Literal["auto"] | bool = Field(
        "auto",
        description="Skip the prev_logprobs forward pass and take prev_logprobs from the training "
        "forward itself (detached). Exact when each rollout gets one optimizer update "
        "(epochs_per_rollout 1 and policy.train_global_batch_size null or the sequences per "
        "step): that forward then runs the same weights. auto: on exactly then, if the loss "
        "supports it; true: on (an error with more updates or a loss without support); false: "
        "always run the pass.",
    )
    max_rollout_turns: PositiveInt = Field(
        1,
        description="Generation/environment turns per sample; 1 is single-turn, multi-turn "
        "environments need more.",
    )
    environment: str | None = Field(
        None,
        description="A registered environment (e.g. 'math' from nemo-rl-envs) or a reward "
        "function as 'module:function' (imported from the working directory first), used when "
        "fit() gets no reward_fn; `nemo-rl train` needs one.",
    )
    environment_options: dict[str, Any] = Field(
        default_factory=dict,
        description="Keyword arguments for the constructor of the registered `environment`.",
    )
    on_reward_error: Literal["raise", "zero"] = Field(
        "raise",
        description="raise: a reward that raises or returns NaN stops the run, naming the sample; "
        "zero: that sample scores 0 and is counted in the reward_errors metric.",
    )
    reward_timeout_s: PositiveFloat | None = Field(
        60.0,
        description="The longest one reward call may take (one sample, or one batched call); "
        "past it the call counts as a reward error and on_reward_error decides. None: no limit.",
    )
    environment_pool: EnvironmentPoolConfig = Field(
        default_factory=EnvironmentPoolConfig, description="Where the environment's steps run."
    )

    @property
    def sequences_per_step(self) -> int:
        return self.num_prompts_per_step * self.num_generations_per_prompt

    @property
    def updates_per_rollout(self) -> int:
        """Optimizer updates each rollout batch gets: epochs_per_rollout x the updates per pass.

        Example:
            >>> GRPOConfig(epochs_per_rollout=2).updates_per_rollout
            2
        """
        gbs = self.policy.train_global_batch_size
        per_pass = 1 if gbs is None else max(1, self.sequences_per_step // gbs)
        return self.epochs_per_rollout * per_pass

    @model_validator(mode="after")
    def _check_batches(self) -> GRPOConfig:
        gbs = self.policy.train_global_batch_size
        if gbs is not None and self.sequences_per_step % gbs != 0:
            raise ValueError(
                f"policy.train_global_batch_size ({gbs}) must divide the sequences per step "
                f"(num_prompts_per_step x num_generations_per_prompt = {self.sequences_per_step}); "
                f"set it to {self.sequences_per_step} or a divisor of it"
            )
        if self.reuse_training_logprobs is True and self.updates_per_rollout > 1:
            raise ValueError(
                f"reuse_training_logprobs is true, but epochs_per_rollout "
                f"({self.epochs_per_rollout}) and policy.train_global_batch_size "
                f"({'null' if gbs is None else gbs}) give "
                f"{self.updates_per_rollout} optimizer updates per rollout: after the first, the "
                "training forward runs updated weights, whose log-probs are not prev_logprobs. "
                "Set reuse_training_logprobs to auto (on only with one update) or false, or train "
                "with one update (epochs_per_rollout 1, policy.train_global_batch_size null)"
            )
        return self
