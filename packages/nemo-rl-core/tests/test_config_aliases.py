"""TRL and NeMo RL key names point to their nemo-rl names (issue #18, item 7)."""

from __future__ import annotations

import pytest
from nemo_rl.config import ConfigError, load_config
from nemo_rl.config.aliases import ALIASES, alias_target


@pytest.mark.parametrize(
    ("algorithm", "key", "expected"),
    [
        ("grpo", "learning_rate", "unknown key 'learning_rate': TRL's name for 'policy.optimizer.lr'; write policy.optimizer.lr instead"),
        ("grpo", "num_generations", "unknown key 'num_generations'; did you mean 'num_generations_per_prompt'?"),
        ("sft", "report_to", "unknown key 'report_to': TRL's name for 'logger.backends'; write logger.backends instead"),
        ("dpo", "per_device_train_batch_size",
         "unknown key 'per_device_train_batch_size': TRL's name for 'policy.train_micro_batch_size'; "
         "write policy.train_micro_batch_size instead"),
        ("grpo", "max_completion_length",
         "unknown key 'max_completion_length': TRL's name for 'generation.max_new_tokens'; "
         "write generation.max_new_tokens instead"),
        ("grpo", "beta", "unknown key 'beta': TRL's name for 'loss.kl_penalty'; write loss.kl_penalty instead"),
        ("sft", "train_global_batch_size", "unknown key 'train_global_batch_size'; did you mean 'batch_size'?"),
        ("dpo", "reference_policy_kl_penalty", "unknown key 'reference_policy_kl_penalty'; did you mean 'beta'?"),
        ("grpo", "reference_policy_kl_penalty",
         "unknown key 'reference_policy_kl_penalty': NeMo RL's name for 'loss.kl_penalty'; "
         "write loss.kl_penalty instead"),
    ],
)
def test_foreign_key_in_an_override_names_the_nemo_rl_key(algorithm, key, expected):
    with pytest.raises(ConfigError) as err:
        load_config({"algorithm": algorithm}, [f"{key}=1"])
    assert str(err.value) == f"invalid config: override '{key}': {expected}"


def test_foreign_key_in_a_file_names_the_nemo_rl_key(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("algorithm: grpo\nlearning_rate: 1.0e-6\ngradient_accumulation_steps: 4\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert "unknown key 'learning_rate': TRL's name for 'policy.optimizer.lr'; write policy.optimizer.lr instead" in message
    assert ("unknown key 'gradient_accumulation_steps': TRL's name for a setting nemo-rl does not "
            "have; remove it: nemo-rl states the whole step instead: set batch_size") in message


def test_inside_its_own_section_the_short_name_is_suggested():
    with pytest.raises(ConfigError, match=r"'policy.optimizer.learning_rate'; did you mean 'lr'\?"):
        load_config({"algorithm": "sft"}, ["policy.optimizer.learning_rate=1e-5"])


@pytest.mark.parametrize("algorithm", ["grpo", "sft", "dpo"])
def test_every_alias_target_is_a_real_key(algorithm):
    """A table entry that named a key nemo-rl does not have would send users to a second error."""
    config = load_config({"algorithm": algorithm})
    for key in ALIASES:
        target = alias_target(key, algorithm)
        if target is None:
            continue
        node = config
        parts = target.split(".")
        if algorithm != "grpo" and parts[0] in ("generation", "loss", "num_generations_per_prompt",
                                                "epochs_per_rollout", "normalize_rewards",
                                                "overlong_filtering"):
            continue  # GRPO-only settings: the message still names them for GRPO users
        for part in parts:
            assert hasattr(node, part), f"{key} -> {target}: no {part!r} in {algorithm}"
            node = getattr(node, part)
