"""Every GRPO/SFT/DPO example config of NeMo RL migrates, and its common values survive."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from nemo_rl import registry
from nemo_rl.compat import UnsupportedAlgorithmError, migrate_legacy_config

LEGACY_FILES = sorted((Path(__file__).parents[1] / "data" / "legacy_configs").glob("*.yaml"))
REFUSED = {"ppo": "PPO", "rm": "reward-model", "distillation": "distillation",
           "xtoken": "distillation"}
UNSUPPORTED = [p for p in LEGACY_FILES if p.name.startswith(tuple(REFUSED))]
SUPPORTED = [p for p in LEGACY_FILES if p not in UNSUPPORTED]


def value_at(config: Any, dotted: str) -> Any:
    """The value of a dotted key in a config object (sub-models by attribute, dicts by key)."""
    node = config
    for part in dotted.split("."):
        node = node[part] if isinstance(node, dict) else getattr(node, part)
    return node


def _common_keys(algorithm: str, legacy: dict[str, Any]) -> dict[str, Any]:
    """Legacy key -> the value the new config must hold (hand-derived per NeMo RL semantics)."""
    megatron = legacy.get("policy.megatron_cfg.enabled") is True
    lr_key = "policy.megatron_cfg.optimizer.lr" if megatron else "policy.optimizer.kwargs.lr"
    expected = {
        "policy.model_name": legacy["policy.model_name"],
        f"{algorithm}.max_num_steps": legacy[f"{algorithm}.max_num_steps"],
        lr_key: legacy[lr_key],
        "policy.max_total_sequence_length": legacy["policy.max_total_sequence_length"],
        "policy.train_global_batch_size": legacy["policy.train_global_batch_size"],
        "policy.megatron_cfg.enabled": "megatron" if megatron else "dtensor",
        "cluster.num_nodes": legacy["cluster.num_nodes"],
        "cluster.gpus_per_node": legacy["cluster.gpus_per_node"],
    }
    micro = legacy["policy.train_micro_batch_size"]
    # NeMo RL counts DPO micro-batches in preference pairs, nemo-rl in sequences.
    expected["policy.train_micro_batch_size"] = 2 * micro if algorithm == "dpo" else micro
    for key in ("enabled", "save_period", "keep_top_k"):
        expected[f"checkpointing.{key}"] = legacy[f"checkpointing.{key}"]
    if legacy["checkpointing.enabled"]:
        # The checkpoints' folder becomes the run's one folder, under runs/ (results/x -> runs/x).
        folder = Path(legacy["checkpointing.checkpoint_dir"])
        expected["checkpointing.checkpoint_dir"] = str(Path("runs", *folder.parts[1:]))
    # NeMo RL's metric names, as nemo-rl logs the same metrics.
    expected["checkpointing.metric_name"] = {
        "val:accuracy": "val/accuracy", "train:loss": "loss", "val:val_loss": "val/loss",
        "val:validation-default_loss": "val/loss", None: None,
    }[legacy["checkpointing.metric_name"]]
    if algorithm == "grpo":
        for key in ("num_prompts_per_step", "num_generations_per_prompt"):
            expected[f"grpo.{key}"] = legacy[f"grpo.{key}"]
        for key in ("backend", "temperature", "top_p", "top_k", "max_new_tokens"):
            expected[f"policy.generation.{key}"] = legacy[f"policy.generation.{key}"]
        expected["policy.generation.colocated.enabled"] = legacy[
            "policy.generation.colocated.enabled"]
        for key in ("ratio_clip_min", "ratio_clip_max", "reference_policy_kl_penalty",
                    "reference_policy_kl_type"):
            expected[f"loss_fn.{key}"] = legacy[f"loss_fn.{key}"]
    if algorithm == "dpo":
        expected["dpo.reference_policy_kl_penalty"] = legacy["dpo.reference_policy_kl_penalty"]
    return expected


def test_the_bundled_files_are_all_there():
    assert len(LEGACY_FILES) == 36 and len(SUPPORTED) == 29


@pytest.mark.parametrize("path", SUPPORTED, ids=lambda p: p.name)
def test_supported_file_migrates_and_keeps_common_values(path):
    result = migrate_legacy_config(path)
    legacy, algorithm = result.legacy_values, result.config.algorithm
    assert set(result.mapping) == set(legacy)  # every leaf is accounted for
    assert {k for k, v in result.mapping.items() if v is None} == set(result.dropped)
    assert all(reason for reason in result.dropped.values())
    for old_key, want in _common_keys(algorithm, legacy).items():
        new_key = result.mapping[old_key]
        assert new_key is not None, f"{old_key} was dropped: {result.dropped.get(old_key)}"
        assert value_at(result.config, new_key) == want, (old_key, new_key)
    for name in ("wandb", "tensorboard", "mlflow"):
        assert (name in result.config.logger.backends) == bool(legacy[f"logger.{name}_enabled"])
    tokenizer = legacy.get("policy.tokenizer.name") or legacy["policy.model_name"]
    assert result.config.policy.tokenizer_name == tokenizer


@pytest.mark.parametrize("path", UNSUPPORTED, ids=lambda p: p.name)
def test_ppo_rm_and_distillation_are_refused_by_name(path):
    with pytest.raises(UnsupportedAlgorithmError) as err:
        migrate_legacy_config(path)
    name = next(name for prefix, name in REFUSED.items() if path.name.startswith(prefix))
    assert name in str(err.value) and "not support" in str(err.value)


def test_megatron_options_are_dropped_while_megatron_is_not_installed(legacy_dir):
    if "megatron" in registry.available("training_backends"):
        pytest.skip("nemo-rl-megatron is installed here")
    key = "policy.megatron_cfg.tensor_model_parallel_size"
    result = migrate_legacy_config(legacy_dir / "grpo_math_70B_megatron.yaml")
    assert result.config.policy.backend == "megatron"
    assert result.mapping[key] is None and result.config.policy.backend_options == {}
    assert result.config.policy.megatron.tensor_parallel_size == 1
    assert "pip install nemo-rl-megatron" in result.dropped[key]
    assert any("cannot run on this installation" in w for w in result.warnings)


def test_megatron_options_follow_the_chosen_backend(legacy_dir):
    dtensor = migrate_legacy_config(legacy_dir / "grpo_math_1B.yaml")
    key = "policy.megatron_cfg.tensor_model_parallel_size"
    assert dtensor.mapping[key] is None and "megatron_cfg.enabled is false" in dtensor.dropped[key]

    class InstalledMegatron:  # what a `nemo_rl.training_backends` entry point would provide
        pass

    registry.register("training_backends", "megatron")(InstalledMegatron)
    try:
        megatron = migrate_legacy_config(legacy_dir / "grpo_math_70B_megatron.yaml")
    finally:
        registry.unregister("training_backends", "megatron")
    assert megatron.mapping[key] == "policy.megatron.tensor_parallel_size"
    assert megatron.config.policy.megatron.tensor_parallel_size == megatron.legacy_values[key]
    assert megatron.config.policy.backend_options == {}
    assert megatron.mapping["policy.dtensor_cfg.tensor_parallel_size"] is None
    # Megatron's optimizer and scheduler feed the common fields.
    opt = "policy.megatron_cfg.optimizer"
    assert megatron.config.policy.optimizer.betas == (
        megatron.legacy_values[f"{opt}.adam_beta1"], megatron.legacy_values[f"{opt}.adam_beta2"])
    assert megatron.config.policy.scheduler.warmup_steps == (
        megatron.legacy_values["policy.megatron_cfg.scheduler.lr_warmup_iters"])


def test_grpo_math_1b_scheduler_and_batching(legacy_dir):
    cfg = migrate_legacy_config(legacy_dir / "grpo_math_1B.yaml").config
    # LinearLR(0.1 -> 1.0 over 50) then ConstantLR: constant after a 50-step warm-up.
    assert (cfg.policy.scheduler.name, cfg.policy.scheduler.warmup_steps) == ("constant", 50)
    # sequence packing on, with train_mb_tokens = 512 x 4.
    assert cfg.policy.sequence_packing and cfg.policy.max_tokens_per_microbatch == 2048
    assert cfg.cluster.launcher == "inline" and cfg.generation.backend_options == {}


def test_sft_and_dpo_batch_units(legacy_dir):
    sft = migrate_legacy_config(legacy_dir / "sft.yaml")
    assert sft.config.batch_size == 32 and sft.config.policy.train_global_batch_size is None
    assert sft.config.max_val_samples == 8 * 32  # val_batches x val_global_batch_size
    dpo = migrate_legacy_config(legacy_dir / "dpo.yaml")
    assert (dpo.config.batch_size, dpo.config.policy.train_micro_batch_size) == (128, 4)
    assert dpo.config.beta == 0.05


def test_unimplemented_estimator_is_dropped_with_a_warning(legacy_dir):
    result = migrate_legacy_config(legacy_dir / "gdpo_math_1B.yaml")
    assert "'gdpo' is not implemented" in result.dropped["grpo.adv_estimator.name"]
    assert any("grpo.adv_estimator.name" in w for w in result.warnings)
    # The estimator's own leave-one-out flag wins over grpo.use_leave_one_out_baseline.
    assert result.config.use_leave_one_out_baseline is False
    assert "superseded" in result.dropped["grpo.use_leave_one_out_baseline"]


def test_vllm_options_that_differ_from_nemo_rl_defaults_are_kept(legacy_dir):
    result = migrate_legacy_config(legacy_dir / "grpo_math_8B.yaml")
    options = result.config.generation.backend_options
    for key, value in result.legacy_values.items():
        if key.startswith("policy.generation.vllm_cfg."):
            new = result.mapping[key]
            assert (new is None) == (key in result.dropped)
            if new is not None:
                assert options[key.rsplit(".", 1)[-1]] == value
