"""Fixtures of the compat tests: the bundled legacy NeMo RL configs (see ../data/legacy_configs)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def legacy_dir() -> Path:
    return Path(__file__).resolve().parents[1] / "data" / "legacy_configs"
