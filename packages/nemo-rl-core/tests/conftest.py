"""Fixtures shared by core's tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def chain(tmp_path: Path) -> Path:
    """A three-file defaults chain: top.yaml -> mid.yaml -> base.yaml."""
    (tmp_path / "base.yaml").write_text(
        "algorithm: grpo\nseed: 1\npolicy:\n  model_name: tiny\n  optimizer: {lr: 1.0e-5}\n"
    )
    (tmp_path / "mid.yaml").write_text("defaults: base.yaml\nseed: 2\nnum_prompts_per_step: 4\n")
    top = tmp_path / "top.yaml"
    top.write_text("defaults: mid.yaml\npolicy: {precision: float32}\n")
    return top
