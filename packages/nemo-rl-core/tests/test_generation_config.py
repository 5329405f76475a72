"""`generation.min_new_tokens`: its default, the one error for a floor above the cap, and
`GenerationConfig.sampling_params()` carrying it."""

from __future__ import annotations

import pytest
from nemo_rl.config import ConfigError, GenerationConfig, SamplingParams, load_config
from pydantic import ValidationError


def test_min_new_tokens_is_off_by_default():
    assert GenerationConfig().min_new_tokens == 0
    assert SamplingParams().min_new_tokens == 0
    assert GenerationConfig().sampling_params().min_new_tokens == 0


def test_sampling_params_carry_min_new_tokens_and_its_overrides():
    config = GenerationConfig(max_new_tokens=64, min_new_tokens=16, stop_token_ids=[7])
    sampling = config.sampling_params(temperature=0.0)
    assert (sampling.min_new_tokens, sampling.max_new_tokens, sampling.stop_token_ids) == (16, 64, [7])
    assert config.sampling_params(min_new_tokens=3).min_new_tokens == 3
    assert config.sampling_params(min_new_tokens=64).min_new_tokens == 64  # equal to the cap: allowed


def test_a_floor_above_the_cap_names_both_fields_and_the_fix():
    with pytest.raises(ValidationError) as caught:
        GenerationConfig(max_new_tokens=4, min_new_tokens=8)
    assert (
        "generation.min_new_tokens (8) is more than generation.max_new_tokens (4): responses end "
        "at generation.max_new_tokens, so none could reach the minimum; lower "
        "generation.min_new_tokens or raise generation.max_new_tokens"
    ) in str(caught.value)
    with pytest.raises(ValidationError, match=r"min_new_tokens \(5\) is more than max_new_tokens \(2\)"):
        SamplingParams(max_new_tokens=2, min_new_tokens=5)
    # An override that lowers the cap below the config's floor is refused the same way.
    with pytest.raises(ValidationError, match=r"min_new_tokens \(8\) is more than max_new_tokens \(4\)"):
        GenerationConfig(max_new_tokens=16, min_new_tokens=8).sampling_params(max_new_tokens=4)


def test_assignment_is_checked_too():
    config = GenerationConfig(max_new_tokens=16, min_new_tokens=8)
    with pytest.raises(ValidationError, match="lower generation.min_new_tokens or raise"):
        config.max_new_tokens = 4
    with pytest.raises(ValidationError, match="must be greater than or equal to 0|greater_than_equal"):
        SamplingParams(min_new_tokens=-1)


def test_a_config_file_with_the_floor_above_the_cap_is_one_config_error(tmp_path):
    run = tmp_path / "run.yaml"
    run.write_text("algorithm: grpo\ngeneration:\n  max_new_tokens: 32\n  min_new_tokens: 40\n")
    with pytest.raises(ConfigError) as caught:
        load_config(run)
    assert caught.value.problems == [
        "generation.min_new_tokens (40) is more than generation.max_new_tokens (32): responses "
        "end at generation.max_new_tokens, so none could reach the minimum; lower "
        "generation.min_new_tokens or raise generation.max_new_tokens"
    ]
    run.write_text("algorithm: grpo\ngeneration:\n  max_new_tokens: 32\n  min_new_tokens: 32\n")
    assert load_config(run).generation.min_new_tokens == 32
