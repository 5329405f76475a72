"""policy.lora is validated like every config section: each bad value is one ConfigError naming
the field and the fix, and nothing set while LoRA is off is silently ignored."""

from __future__ import annotations

import pytest
from nemo_rl.config import ConfigError, load_config


def sft(*overrides: str):
    return load_config({"algorithm": "sft"}, overrides=list(overrides))


def test_lora_is_off_by_default_and_on_with_its_defaults():
    assert not sft().policy.lora.enabled
    lora = sft("policy.lora.enabled=true").policy.lora
    assert (lora.rank, lora.alpha, lora.dropout, lora.scaling) == (8, 16.0, 0.0, 2.0)
    assert lora.target_modules is None and lora.layers is None and not lora.save_merged
    lora = sft("policy.lora.enabled=true", "policy.lora.target_modules=all-linear",
               "policy.lora.layers=[0,3]", "policy.lora.alpha=32").policy.lora
    assert (lora.target_modules, lora.layers, lora.alpha) == ("all-linear", [0, 3], 32.0)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["policy.lora.rank=16"], "policy.lora.rank is set but policy.lora.enabled is false"),
        (["policy.lora.enabled=true", "policy.lora.rank=0"], r"policy\.lora\.rank = 0"),
        (["policy.lora.enabled=true", "policy.lora.alpha=-1"], r"policy\.lora\.alpha = -1"),
        (["policy.lora.enabled=true", "policy.lora.dropout=1.0"], r"policy\.lora\.dropout = 1\.0"),
        (["policy.lora.enabled=true", "policy.lora.target_modules=[]"],
         "target_modules is an empty list"),
        (["policy.lora.enabled=true", "policy.lora.target_modules=all_linear"],
         r"policy\.lora\.target_modules"),
        (["policy.lora.enabled=true", "policy.lora.target_modules=[q_proj,q_proj]"],
         r"repeats \['q_proj'\]"),
        (["policy.lora.enabled=true", "policy.lora.exclude_modules=[' q_proj']"],
         "without surrounding spaces"),
        (["policy.lora.enabled=true", "policy.lora.layers=[]"], "layers is an empty list"),
        (["policy.lora.enabled=true", "policy.lora.layers=[1,1]"], "repeats an index"),
        (["policy.lora.enabled=true", "policy.lora.layers=[-1]"], r"policy\.lora\.layers"),
        (["policy.lora.enabled=true", "policy.lora.rnk=4"], "did you mean 'rank'"),
    ],
)
def test_bad_lora_settings_are_config_errors(overrides, message):
    with pytest.raises(ConfigError, match=message):
        sft(*overrides)


def test_a_value_equal_to_the_default_is_accepted_while_off():
    # A file that spells out the defaults (as NeMo RL's example configs did) is not an error.
    assert not sft("policy.lora.rank=8", "policy.lora.exclude_modules=[]").policy.lora.enabled
