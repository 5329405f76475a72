"""Fixtures of the compat tests: the bundled legacy NeMo RL configs (see ../data/legacy_configs)."""

from __future__ import annotations

from pathlib import Path

import pytest

# The migration reads legacy files with OmegaConf, an optional extra (nemo-rl-core[compat]):
# with core's dependencies alone (`nox -s core`) these tests are skipped, not failed.
pytest.importorskip("omegaconf", reason="legacy migration needs nemo-rl-core[compat]")


@pytest.fixture(scope="session")
def legacy_dir() -> Path:
    return Path(__file__).resolve().parents[1] / "data" / "legacy_configs"
