"""Migration rules for the algorithm sections: `grpo.*` and `loss_fn.*`, `sft.*`, `dpo.*`, and the
batch sizes whose unit differs per algorithm.

Example:
    >>> [r.new for r in GRPO_RULES if r.old == "loss_fn.reference_policy_kl_penalty"]
    ['loss.kl_penalty']
"""

from __future__ import annotations

from typing import Any

from nemo_rl.compat.rule_types import Drop, MigrationContext, Rule, dropped, unsupported

_LOOP_KEYS = ("max_num_steps", "max_num_epochs", "val_at_start", "val_at_end", "seed")


def _val_period(value: Any, ctx: MigrationContext) -> int:
    return max(int(value), 0)  # NeMo RL disables periodic validation with 0 or a negative value


def _loop_rules(section: str) -> list[Rule]:
    return [
        *[Rule(f"{section}.{k}", k) for k in _LOOP_KEYS],
        Rule(f"{section}.val_period", "val_period", "negative -> 0 (off)", _val_period),
    ]


# NeMo RL's estimator names that nemo-rl ships under the same name (nemo_rl.advantage_estimators).
_ESTIMATORS = ("grpo", "reinforce_plus_plus")


def _estimator_name(value: Any, ctx: MigrationContext) -> Any:
    if value in _ESTIMATORS:
        return value
    return Drop(f"advantage estimator {value!r} is not implemented in nemo-rl; the run uses GRPO's "
                "group-normalised advantages", changes_behaviour=True)


_GRPO_SAME = (
    "num_prompts_per_step", "num_generations_per_prompt", "max_rollout_turns", "overlong_filtering",
    "max_val_samples", "val_batch_size", "use_dynamic_sampling", "dynamic_sampling_max_gen_batches",
    "normalize_rewards", "use_leave_one_out_baseline",
    *[f"reward_scaling.{k}" for k in ("enabled", "source_min", "source_max", "target_min",
                                      "target_max")],
    *[f"reward_shaping.{k}" for k in ("enabled", "overlong_buffer_length", "overlong_buffer_penalty")],
)


def _max_response_length(value: Any, ctx: MigrationContext) -> Any:
    """Kept as is, with a warning where the overlong penalty differs from NeMo RL's: nemo-rl stops
    it at -penalty from max_response_length on (DAPO eq. 13), NeMo RL let it keep falling for the
    responses that run past max_response_length, up to max_new_tokens."""
    max_new = ctx.get("policy.generation.max_new_tokens")
    enabled = ctx.get("grpo.reward_shaping.enabled") is True
    if not enabled or not isinstance(value, int) or not isinstance(max_new, int) or value >= max_new:
        return value
    buffer = ctx.get("grpo.reward_shaping.overlong_buffer_length", 128)
    penalty = float(ctx.get("grpo.reward_shaping.overlong_buffer_penalty", 1.0))
    start = value - buffer  # where the penalty begins
    reach = round((max_new - start) / buffer * penalty, 6)  # NeMo RL's penalty at max_new_tokens
    ctx.notes.append(
        f"grpo.reward_shaping.max_response_length ({value}) is below "
        f"policy.generation.max_new_tokens ({max_new}): nemo-rl caps DAPO's overlong penalty at "
        f"-{penalty} (-overlong_buffer_penalty) from {value} tokens on, while NeMo RL kept it "
        f"growing by {penalty} per {buffer} tokens, to -{reach} at {max_new} tokens. For NeMo "
        f"RL's values set reward_shaping.max_response_length={max_new}, "
        f"overlong_buffer_length={max_new - start}, overlong_buffer_penalty={reach}"
    )
    return value


_LOSS = {
    "reference_policy_kl_penalty": "kl_penalty",
    "reference_policy_kl_type": "kl_type",
    "kl_input_clamp_value": "kl_input_clamp",
    "kl_output_clamp_value": "kl_output_clamp",
    **{k: k for k in ("ratio_clip_min", "ratio_clip_max", "ratio_clip_c", "token_level_loss",
                      "sequence_level_importance_ratios", "use_importance_sampling_correction",
                      "truncated_importance_sampling_type", "truncated_importance_sampling_ratio",
                      "truncated_importance_sampling_ratio_min", "use_cispo")},
}

GRPO_RULES: list[Rule] = [
    *_loop_rules("grpo"),
    *[Rule(f"grpo.{k}", k) for k in _GRPO_SAME],
    Rule("grpo.reward_shaping.max_response_length", "reward_shaping.max_response_length",
         "warns where it is below max_new_tokens: nemo-rl caps the penalty there, NeMo RL did not",
         _max_response_length),
    # NeMo RL's advantage estimator reads its own copies of these two flags, so they win.
    Rule("grpo.adv_estimator.normalize_rewards", "normalize_rewards", priority=1),
    Rule("grpo.adv_estimator.use_leave_one_out_baseline", "use_leave_one_out_baseline",
         priority=1),
    Rule("grpo.adv_estimator.name", "advantage_estimator", "grpo and reinforce_plus_plus; others "
         "dropped", _estimator_name),
    Rule("grpo.adv_estimator.minus_baseline", "minus_baseline"),
    *[Rule(f"loss_fn.{old}", f"loss.{new}") for old, new in _LOSS.items()],
    unsupported("loss_fn.use_on_policy_kl_approximation", "the on-policy KL approximation"),
    unsupported("loss_fn.force_on_policy_ratio", "forcing the policy ratio to 1"),
    unsupported("loss_fn.use_kl_in_reward", "KL-in-reward (Reinforce++)"),
    unsupported("loss_fn.disable_ppo_ratio", "the REINFORCE surrogate without PPO ratio"),
    unsupported("loss_fn.positive_example_nll_weight", "VAPO's positive-example NLL term",
                (0, 0.0, None)),
    unsupported("grpo.advantage_clip_low", "advantage clipping"),
    unsupported("grpo.advantage_clip_high", "advantage clipping"),
    unsupported("grpo.val_start_at", "delayed validation start", (-1, None, 0)),
    unsupported("grpo.val_num_generations_per_prompt", "pass@k validation", (1, None)),
    unsupported("grpo.stop_at_validation_metric", "early stopping on a validation metric"),
    unsupported("grpo.stop_at_validation_threshold", "early stopping on a validation metric"),
    unsupported("grpo.seq_logprob_error_threshold", "filtering by log-prob mismatch"),
    unsupported("grpo.invalid_tool_call_advantage", "tool-call advantage overrides"),
    unsupported("grpo.malformed_thinking_advantage", "malformed-<think> advantage overrides"),
    unsupported("grpo.batch_multiplier", "dynamic-sampling batch multiplier", (1, 1.0, None)),
    unsupported("grpo.reward_shaping.stop_properly_penalty_coef", "stop-properly reward penalty"),
    unsupported("grpo.deduplicate_multimodal_data", "multimodal payload deduplication"),
    unsupported("grpo.debug_payload_metrics", "payload debugging metrics"),
    unsupported("grpo.async_grpo.enabled", "asynchronous GRPO"),
    unsupported("grpo.async_grpo", "asynchronous GRPO"),
    *dropped("only used with grpo.async_grpo.enabled (asynchronous GRPO is not in nemo-rl)",
             "grpo.async_grpo.*"),
]


def _validation_samples(value: Any, ctx: MigrationContext) -> Any:
    section = ctx.key.split(".", 1)[0]
    return int(value) * int(ctx.get(f"{section}.val_global_batch_size", 1))


def _supervised_rules(section: str) -> list[Rule]:
    """SFT and DPO: one optimizer update per step over `policy.train_global_batch_size` samples."""
    return [
        *_loop_rules(section),
        Rule(f"{section}.val_global_batch_size", "val_batch_size"),
        Rule(f"{section}.val_batches", "max_val_samples", "val_batches x val_global_batch_size",
             _validation_samples),
        *dropped("validation micro-batches follow policy.logprob_batch_size",
                 f"{section}.val_micro_batch_size"),
        # NeMo RL's dataloader batch is train_global_batch_size and one step is one update:
        # nemo-rl's `batch_size` with policy.train_global_batch_size left null says the same.
        Rule("policy.train_global_batch_size", "batch_size", "samples per step"),
    ]


def _pairs_to_sequences(value: Any, ctx: MigrationContext) -> int:
    return 2 * int(value)  # NeMo RL counts DPO micro-batches in pairs; nemo-rl in sequences


SFT_RULES: list[Rule] = [
    *_supervised_rules("sft"),
    unsupported("sft.only_unmask_final", "training only on the final assistant turn"),
    *dropped("SFT does not generate", "policy.generation.*", "policy.generation_batch_size"),
]

DPO_RULES: list[Rule] = [
    *_supervised_rules("dpo"),
    Rule("dpo.reference_policy_kl_penalty", "beta"),
    *[Rule(f"dpo.{k}", k) for k in ("preference_average_log_probs", "sft_average_log_probs",
                                     "preference_loss_weight", "sft_loss_weight")],
    Rule("policy.train_micro_batch_size", "policy.train_micro_batch_size",
         "x2: pairs -> sequences", _pairs_to_sequences),
    *dropped("DPO does not generate", "policy.generation.*", "policy.generation_batch_size"),
]

ALGORITHM_RULES: dict[str, list[Rule]] = {"grpo": GRPO_RULES, "sft": SFT_RULES, "dpo": DPO_RULES}
