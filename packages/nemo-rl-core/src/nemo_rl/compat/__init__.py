"""Bring NeMo RL configs to nemo-rl: load a legacy YAML (with its `defaults:`, interpolations and
Hydra-style overrides), map every key to the new layout, and validate.

Example:
    >>> from nemo_rl.compat import is_legacy_config, migrate_legacy_config
    >>> raw = {"dpo": {"reference_policy_kl_penalty": 0.05}}
    >>> is_legacy_config(raw), migrate_legacy_config(raw).config.beta
    (True, 0.05)
"""

from __future__ import annotations

from nemo_rl.compat.legacy_launch import LegacyLaunchError, run_legacy_script
from nemo_rl.compat.legacy_loader import LegacyConfigError, load_legacy_config
from nemo_rl.compat.migrate import (
    MigrationResult,
    UnsupportedAlgorithmError,
    detect_algorithm,
    is_legacy_config,
    migrate_legacy_config,
)

__all__ = [
    "LegacyConfigError",
    "LegacyLaunchError",
    "MigrationResult",
    "UnsupportedAlgorithmError",
    "detect_algorithm",
    "is_legacy_config",
    "load_legacy_config",
    "migrate_legacy_config",
    "run_legacy_script",
]
