"""docs/reference/configuration.md is generated from the config models and must match them."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

from pydantic import Field

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

import config_reference  # noqa: E402
from nemo_rl.config import AlgorithmConfig, ConfigModel  # noqa: E402
from nemo_rl.config.types import PositiveFloat, PositiveInt  # noqa: E402


def test_committed_page_matches_the_models():
    committed = config_reference.OUTPUT.read_text(encoding="utf-8")
    assert committed == config_reference.render(), (
        f"{config_reference.OUTPUT.relative_to(ROOT)} is out of date with the config models; "
        f"regenerate it: {config_reference.COMMAND}"
    )


def test_every_config_field_has_a_description():
    missing = config_reference.missing_descriptions()
    assert not missing, (
        f"{len(missing)} config fields have no description; add Field(description=...) to each "
        "(the configuration reference shows it):\n  " + "\n  ".join(missing)
    )


class _Adapter(ConfigModel):
    """A made-up nested section."""

    rank: PositiveInt = Field(8, description="Adapter rank.")
    kind: Literal["a", "b"] | None = Field(None, description="Which.")


class _Toy(AlgorithmConfig):
    """A made-up algorithm."""

    algorithm: Literal["toy"] = Field("toy", description="Name.")
    adapter: _Adapter = Field(default_factory=_Adapter, description="Adapters.")
    scale: PositiveFloat | None = Field(0.5, description="A | scale.")


def test_a_new_nested_section_appears_with_type_default_and_description():
    page = config_reference.render({"toy": _Toy})
    # The nested model gets its own section at its dotted key, linked from the field's type.
    assert "## _Adapter\n\n`adapter`: A made-up nested section." in page
    assert "| `adapter` | [_Adapter](#_adapter) | (section defaults) | Adapters. |" in page
    assert "| `rank` | int > 0 | 8 | Adapter rank. |" in page
    assert "| `kind` | 'a' or 'b' or None | null | Which. |" in page
    # A pipe in a description is escaped so the table keeps its columns.
    assert "| `scale` | float > 0 or None | 0.5 | A \\| scale. |" in page
    # Shared fields are listed once, under AlgorithmConfig, not under each algorithm.
    assert page.count("| `max_num_steps` |") == 1
    assert "Also every field of [AlgorithmConfig](#algorithmconfig)." in page


def test_a_field_without_description_is_reported():
    class _Bare(AlgorithmConfig):
        algorithm: Literal["bare"] = Field("bare", description="Name.")
        undocumented: int = 3

    missing = config_reference.missing_descriptions({"bare": _Bare})
    assert any(m.startswith("_Bare.undocumented") for m in missing)
