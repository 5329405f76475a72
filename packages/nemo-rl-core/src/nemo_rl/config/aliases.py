"""What TRL and NeMo RL call the settings nemo-rl names differently, for the unknown-key message.

A user coming from TRL writes `learning_rate` or `num_generations`; one coming from NeMo RL writes
`reference_policy_kl_penalty` at the top level. Neither is close to the nemo-rl name by spelling,
so the did-you-mean in `nemo_rl.config.errors` looks the key up here first.

Each entry maps a key (its last dotted part) to where it came from and, per algorithm ("*" for
any), either the nemo-rl key to use or a sentence saying what to do instead.

Example:
    >>> alias_hint("learning_rate", "grpo")
    "TRL's name for 'policy.optimizer.lr'"
    >>> alias_hint("beta", "grpo")
    "TRL's name for 'loss.kl_penalty'"
    >>> alias_hint("no_such_key", "sft") is None
    True
"""

from __future__ import annotations

_TRL = "TRL"
_NEMO_RL = "NeMo RL"
_ACCUMULATE = (
    "nemo-rl states the whole step instead: set batch_size (SFT, DPO) or num_prompts_per_step x "
    "num_generations_per_prompt (GRPO) sequences per step, accumulated in micro-batches of "
    "policy.train_micro_batch_size"
)

# key -> (origin, {algorithm or "*": nemo-rl key, or a sentence when there is no single key})
ALIASES: dict[str, tuple[str, dict[str, str]]] = {
    "learning_rate": (_TRL, {"*": "policy.optimizer.lr"}),
    "weight_decay": (_TRL, {"*": "policy.optimizer.weight_decay"}),
    "adam_epsilon": (_TRL, {"*": "policy.optimizer.eps"}),
    "optim": (_TRL, {"*": "policy.optimizer.name"}),
    "lr_scheduler_type": (_TRL, {"*": "policy.scheduler.name"}),
    "warmup_steps": (_TRL, {"*": "policy.scheduler.warmup_steps"}),
    "max_grad_norm": (_TRL, {"*": "policy.max_grad_norm"}),
    "model_name_or_path": (_TRL, {"*": "policy.model_name"}),
    "gradient_checkpointing": (_TRL, {"*": "policy.activation_checkpointing"}),
    "bf16": (_TRL, {"*": "policy.precision (bfloat16)"}),
    "per_device_train_batch_size": (_TRL, {"*": "policy.train_micro_batch_size"}),
    "per_device_eval_batch_size": (_TRL, {"*": "val_batch_size"}),
    "gradient_accumulation_steps": (_TRL, {"*": _ACCUMULATE}),
    "max_steps": (_TRL, {"*": "max_num_steps"}),
    "num_train_epochs": (_TRL, {"*": "max_num_epochs"}),
    "output_dir": (_TRL, {"*": "run_dir"}),
    "report_to": (_TRL, {"*": "logger.backends"}),
    "eval_steps": (_TRL, {"*": "val_period"}),
    "save_steps": (_TRL, {"*": "checkpointing.save_period"}),
    "save_total_limit": (_TRL, {"*": "checkpointing.keep_top_k"}),
    "resume_from_checkpoint": (_TRL, {"*": "checkpointing.resume"}),
    "max_length": (_TRL, {"*": "policy.max_total_sequence_length"}),
    "max_seq_length": (_TRL, {"*": "policy.max_total_sequence_length"}),
    "max_prompt_length": (_TRL, {"*": "data.max_input_seq_length"}),
    "dataset_text_field": (_TRL, {"*": "data.prompt_key"}),
    "completion_only_loss": (_TRL, {"sft": "loss_on_prompt (its opposite)"}),
    "num_generations": (_TRL, {"*": "num_generations_per_prompt"}),
    "max_completion_length": (_TRL, {"*": "generation.max_new_tokens"}),
    "temperature": (_TRL, {"*": "generation.temperature"}),
    "top_p": (_TRL, {"*": "generation.top_p"}),
    "top_k": (_TRL, {"*": "generation.top_k"}),
    "use_vllm": (_TRL, {"*": "generation.backend (vllm)"}),
    "beta": (_TRL, {"grpo": "loss.kl_penalty", "dpo": "beta", "*": "loss.kl_penalty (GRPO) or beta (DPO)"}),
    "epsilon": (_TRL, {"*": "loss.ratio_clip_min"}),
    "epsilon_high": (_TRL, {"*": "loss.ratio_clip_max"}),
    "num_iterations": (_TRL, {"*": "epochs_per_rollout"}),
    "scale_rewards": (_TRL, {"*": "normalize_rewards"}),
    "mask_truncated_completions": (_TRL, {"*": "overlong_filtering"}),
    "reference_policy_kl_penalty": (
        _NEMO_RL, {"dpo": "beta", "grpo": "loss.kl_penalty", "*": "loss.kl_penalty (GRPO) or beta (DPO)"}
    ),
    "reference_policy_kl_type": (_NEMO_RL, {"*": "loss.kl_type"}),
    "kl_penalty": (_NEMO_RL, {"*": "loss.kl_penalty"}),
    "ratio_clip_min": (_NEMO_RL, {"*": "loss.ratio_clip_min"}),
    "ratio_clip_max": (_NEMO_RL, {"*": "loss.ratio_clip_max"}),
    "model_name": (_NEMO_RL, {"*": "policy.model_name"}),
    "train_global_batch_size": (
        _NEMO_RL, {"sft": "batch_size", "dpo": "batch_size", "*": "policy.train_global_batch_size"}
    ),
    "train_micro_batch_size": (_NEMO_RL, {"*": "policy.train_micro_batch_size"}),
    "max_total_sequence_length": (_NEMO_RL, {"*": "policy.max_total_sequence_length"}),
    "val_global_batch_size": (_NEMO_RL, {"*": "val_batch_size"}),
    "generation_batch_size": (_NEMO_RL, {"*": "generation.batch_size"}),
    "dataset_name": (_NEMO_RL, {"*": "data.dataset"}),
    "input_key": (_NEMO_RL, {"*": "data.prompt_key"}),
    "output_key": (_NEMO_RL, {"*": "data.answer_key"}),
}


def alias_hint(key: str, algorithm: str | None = None) -> str | None:
    """"<origin>'s name for '<nemo-rl key>'" (or what to do instead) for a foreign `key`, or None.

    `algorithm` ("grpo", "sft", "dpo" or None) picks the target where it depends on it.

    Example:
        >>> alias_hint("train_global_batch_size", "sft")
        "NeMo RL's name for 'batch_size'"
        >>> alias_hint("gradient_accumulation_steps").split(":")[0]
        "TRL's name for a setting nemo-rl does not have; remove it"
    """
    entry = ALIASES.get(key)
    if entry is None:
        return None
    origin, targets = entry
    target = targets.get(algorithm or "*", targets.get("*"))
    if target is None:
        return None
    if target.startswith("nemo-rl "):
        return f"{origin}'s name for a setting nemo-rl does not have; remove it: {target}"
    name, _, note = target.partition(" ")
    return f"{origin}'s name for '{name}'" + (f" {note}" if note else "")


def alias_fix(key: str, algorithm: str | None = None) -> str | None:
    """`alias_hint` with what to do: write the nemo-rl key instead, or remove the foreign one.

    Example:
        >>> alias_fix("report_to")
        "TRL's name for 'logger.backends'; write logger.backends instead"
        >>> alias_fix("gradient_accumulation_steps").split(": ")[0]
        "TRL's name for a setting nemo-rl does not have; remove it"
    """
    hint = alias_hint(key, algorithm)
    if hint is None:
        return None
    if "does not have; remove it" in hint:
        return hint
    name = hint.split("'")[2]  # after the origin's apostrophe: "TRL's name for 'KEY'..."
    return f"{hint}; write {name} instead"


def alias_target(key: str, algorithm: str | None = None) -> str | None:
    """The nemo-rl dotted key `key` stands for, or None when there is no single one.

    Example:
        >>> alias_target("num_generations"), alias_target("gradient_accumulation_steps")
        ('num_generations_per_prompt', None)
    """
    entry = ALIASES.get(key)
    if entry is None:
        return None
    target = entry[1].get(algorithm or "*", entry[1].get("*"))
    if target is None or " " in target:
        return None
    return target
