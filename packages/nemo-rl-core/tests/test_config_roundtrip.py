"""A config object loaded again (`load_config(config)`, as `nemo-rl train` and the legacy scripts
do) is the same config, and still knows which settings were given."""

from __future__ import annotations

import pytest
from nemo_rl.config import ConfigError, SFTConfig, load_config


def test_reloading_keeps_values_and_what_was_given():
    config = SFTConfig(data={"prompt_key": "prompt"}, max_num_steps=7)
    config.policy.optimizer.lr = 1e-3  # assigned inside a section left at its defaults
    again = load_config(config, ["seed=3"])
    assert (again.max_num_steps, again.policy.optimizer.lr, again.seed) == (7, 1e-3, 3)
    # a value given equal to its default stays given (column detection must leave it alone) ...
    assert again.data.model_fields_set == {"prompt_key"}
    # ... and the settings nobody gave stay free for detection
    assert "answer_key" not in again.data.model_fields_set
    assert load_config(again) == again


def test_a_full_dump_of_a_default_config_loads_back():
    """Every section is in a dump, the megatron one included, with its defaults."""
    config = load_config({"algorithm": "sft"})
    assert load_config(config.model_dump()) == config


def test_a_megatron_setting_without_the_megatron_backend_is_still_refused():
    with pytest.raises(ConfigError, match="policy.megatron.tensor_parallel_size set but policy.backend is 'dtensor'"):
        load_config({"algorithm": "sft", "policy": {"megatron": {"tensor_parallel_size": 2}}})
