"""NeMo RL's DTensor LoRA settings (policy.dtensor_cfg.lora_cfg) migrate into policy.lora, and
what has no equivalent is reported."""

from __future__ import annotations

from nemo_rl.compat import migrate_legacy_config

NEMO_RL_DEFAULTS = {  # lora_cfg as NeMo RL's example configs write it
    "enabled": False, "target_modules": [], "exclude_modules": [], "match_all_linear": True,
    "dim": 8, "alpha": 32, "dropout": 0.0, "dropout_position": "post", "lora_A_init": "xavier",
    "use_triton": True,
}


def migrate(**lora_cfg):
    legacy = {"sft": {}, "policy": {"dtensor_cfg": {
        "enabled": True, "lora_cfg": {**NEMO_RL_DEFAULTS, **lora_cfg}}}}
    return migrate_legacy_config(legacy)


def test_disabled_lora_carries_nothing_and_warns_about_nothing():
    result = migrate()
    assert not result.config.policy.lora.enabled
    assert result.config.policy.lora.model_fields_set == set()
    lora_keys = [k for k in result.mapping if ".lora_cfg." in k]
    assert len(lora_keys) == 10 and all(result.mapping[k] is None for k in lora_keys)
    assert "LoRA is off" in result.dropped["policy.dtensor_cfg.lora_cfg.dim"]
    assert not any("lora" in w for w in result.warnings)


def test_enabled_lora_keeps_rank_alpha_dropout_and_all_linear():
    result = migrate(enabled=True, dim=16, alpha=32, dropout=0.1)
    lora = result.config.policy.lora
    assert (lora.enabled, lora.rank, lora.alpha, lora.dropout) == (True, 16, 32.0, 0.1)
    assert lora.target_modules == "all-linear" and lora.exclude_modules == []
    assert result.mapping["policy.dtensor_cfg.lora_cfg.dim"] == "policy.lora.rank"
    assert "overrode target_modules" in result.dropped["policy.dtensor_cfg.lora_cfg.target_modules"]
    # dropout on the adapter's output is not available: the one behaviour change is a warning.
    lora_warnings = [w for w in result.warnings if "lora_cfg" in w and "dropped" in w]
    assert len(lora_warnings) == 1 and "dropout_position" in lora_warnings[0]
    assert "Kaiming" in result.dropped["policy.dtensor_cfg.lora_cfg.lora_A_init"]
    assert "kernel switch" in result.dropped["policy.dtensor_cfg.lora_cfg.use_triton"]


def test_named_targets_and_excludes_are_carried_when_match_all_linear_is_off():
    result = migrate(enabled=True, match_all_linear=False, target_modules=["q_proj", "v_proj"],
                     exclude_modules=["model.layers.0.self_attn.q_proj"])
    lora = result.config.policy.lora
    assert lora.target_modules == ["q_proj", "v_proj"]
    assert lora.exclude_modules == ["model.layers.0.self_attn.q_proj"]
    assert lora.alpha == 32.0  # NeMo RL's default is carried: nemo-rl's own is 16
    assert not any("dropout_position" in w for w in result.warnings)  # no dropout: no effect


def test_no_targets_without_match_all_linear_falls_back_to_the_family_default_with_a_warning():
    result = migrate(enabled=True, match_all_linear=False)
    assert result.config.policy.lora.target_modules is None
    assert any("lora_cfg.target_modules" in w and "attention and MLP" in w
               for w in result.warnings)


def test_unknown_lora_key_and_megatron_peft_are_reported():
    result = migrate(enabled=True, use_dora=True)
    assert any("lora_cfg.use_dora" in w and "does not offer" in w for w in result.warnings)
    megatron = migrate_legacy_config({"sft": {}, "policy": {"megatron_cfg": {
        "enabled": True, "peft": {"enabled": True, "dim": 8}}}})
    assert not megatron.config.policy.lora.enabled
    assert any("megatron_cfg.peft.enabled" in w and "not available yet" in w
               for w in megatron.warnings)
