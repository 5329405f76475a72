"""Validated configuration: pydantic models, loading from YAML/JSON/dicts, overrides, errors.

Example:
    >>> from nemo_rl.config import GRPOConfig, PolicyConfig
    >>> cfg = GRPOConfig(policy=PolicyConfig(model_name="Qwen/Qwen2.5-1.5B"), num_prompts_per_step=8)
    >>> cfg.algorithm, cfg.policy.backend
    ('grpo', 'dtensor')
"""

from __future__ import annotations

from typing import Any

from nemo_rl.config.algorithm import AlgorithmConfig
from nemo_rl.config.base import ConfigModel
from nemo_rl.config.cluster import ClusterConfig
from nemo_rl.config.dtensor import DTensorConfig
from nemo_rl.config.errors import ConfigError
from nemo_rl.config.generation import GenerationConfig, SamplingParams
from nemo_rl.config.infra import (
    CheckpointConfig,
    DataConfig,
    LoggerConfig,
    MLflowConfig,
    TensorBoardConfig,
    WandbConfig,
)
from nemo_rl.config.loader import load_config
from nemo_rl.config.lora import LoRAConfig
from nemo_rl.config.policy import OptimizerConfig, PolicyConfig, SchedulerConfig, TokenizerConfig
from nemo_rl.config.schema import (
    config_json_schema,
    diff_configs,
    dump_config,
    write_json_schemas,
)

# The algorithm configs live with their algorithms; they are re-exported here lazily so that
# importing nemo_rl.config does not import the algorithm packages.
_LAZY = {
    "GRPOConfig": "nemo_rl.algorithms.grpo.config",
    "GRPOLossConfig": "nemo_rl.algorithms.grpo.config",
    "SFTConfig": "nemo_rl.algorithms.sft.config",
    "DPOConfig": "nemo_rl.algorithms.dpo.config",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'nemo_rl.config' has no attribute {name!r}")


__all__ = [
    "AlgorithmConfig",
    "CheckpointConfig",
    "ClusterConfig",
    "ConfigError",
    "ConfigModel",
    "DataConfig",
    "DTensorConfig",
    "GenerationConfig",
    "LoRAConfig",
    "LoggerConfig",
    "MLflowConfig",
    "OptimizerConfig",
    "PolicyConfig",
    "SamplingParams",
    "SchedulerConfig",
    "TensorBoardConfig",
    "TokenizerConfig",
    "WandbConfig",
    "config_json_schema",
    "diff_configs",
    "dump_config",
    "load_config",
    "write_json_schemas",
    *_LAZY,
]
