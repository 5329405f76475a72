"""NeMo RL's Megatron recipes migrate with their learning rate and parallelism kept, once the
megatron backend is installed (registered here in-process, as its entry point would be)."""

from __future__ import annotations

from pathlib import Path

import pytest
from nemo_rl import registry
from nemo_rl.compat import UnsupportedAlgorithmError, migrate_legacy_config
from nemo_rl.compat.legacy_loader import load_legacy_config
from nemo_rl.config.schema import flatten
from nemo_rl_megatron import MegatronTrainingBackend

LEGACY = Path(__file__).parents[2] / "nemo-rl-core" / "tests" / "data" / "legacy_configs"
MEGATRON_FILES = sorted(
    p for p in LEGACY.rglob("*.yaml")
    if flatten(load_legacy_config(p)).get("policy.megatron_cfg.enabled") is True
)
PARALLELISM = {
    "tensor_model_parallel_size": "tensor_parallel_size",
    "pipeline_model_parallel_size": "pipeline_parallel_size",
    "context_parallel_size": "context_parallel_size",
    "sequence_parallel": "sequence_parallel",
}


@pytest.fixture()
def megatron_installed():
    registry.register("training_backends", "megatron")(MegatronTrainingBackend)
    yield
    registry.unregister("training_backends", "megatron")


def test_the_held_recipes_include_megatron_ones():
    assert len(MEGATRON_FILES) >= 11, [p.name for p in MEGATRON_FILES]


@pytest.mark.parametrize("path", MEGATRON_FILES, ids=lambda p: p.stem)
def test_megatron_recipes_keep_lr_and_parallelism(path, megatron_installed):
    try:
        result = migrate_legacy_config(path)
    except UnsupportedAlgorithmError:
        pytest.skip("PPO / distillation / reward models are not nemo-rl algorithms")
    legacy = result.legacy_values
    policy = result.config.policy
    assert policy.backend == "megatron"
    assert policy.optimizer.lr == legacy["policy.megatron_cfg.optimizer.lr"]
    for old, new in PARALLELISM.items():
        assert getattr(policy.megatron, new) == legacy[f"policy.megatron_cfg.{old}"], old
        assert result.mapping[f"policy.megatron_cfg.{old}"] == f"policy.megatron.{new}"
    distributed = legacy.get("policy.megatron_cfg.optimizer.use_distributed_optimizer")
    if distributed is not None:
        assert policy.megatron.use_distributed_optimizer == distributed
    assert policy.backend_options == {}
    assert not any(w.startswith("'policy.backend: megatron' cannot run") for w in result.warnings)


def test_without_the_backend_the_megatron_section_is_dropped_with_the_install_command():
    path = LEGACY / "grpo_math_70B_megatron.yaml"
    result = migrate_legacy_config(path)
    key = "policy.megatron_cfg.tensor_model_parallel_size"
    if "megatron" in registry.available("training_backends"):
        pytest.skip("nemo-rl-megatron is installed in this environment")
    assert result.mapping[key] is None and "pip install nemo-rl-megatron" in result.dropped[key]
    assert result.config.policy.megatron.tensor_parallel_size == 1
