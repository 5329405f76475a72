"""Datasets of migrated NeMo RL configs (issue #18, item 6): names nemo-rl adapts load through
their adapter (a local copy through NAME:PATH), and every other name is warned about with the
exact override, for every bundled example config."""

from __future__ import annotations

from pathlib import Path

import pytest
from nemo_rl import registry
from nemo_rl.compat import migrate_legacy_config
from nemo_rl.compat.migrate import UnsupportedAlgorithmError
from nemo_rl.data.sources import registered_with_path


def test_sft_yaml_keeps_squad_which_now_resolves(legacy_dir):
    result = migrate_legacy_config(legacy_dir / "sft.yaml")
    assert (result.config.data.dataset, result.config.data.val_dataset) == ("squad", "squad")
    assert "squad" in registry.available("datasets")
    assert not [w for w in result.warnings if w.startswith(("data.dataset:", "data.val_dataset:"))]


def test_a_data_path_for_an_adapted_name_reads_that_copy_for_both_splits(legacy_dir, tmp_path):
    result = migrate_legacy_config(legacy_dir / "sft.yaml", [f"+data.train.data_path={tmp_path}"])
    data = result.config.data
    assert (data.dataset, data.val_dataset) == (f"squad:{tmp_path}", f"squad:{tmp_path}")
    assert (data.split, data.val_split) == ("train", "validation")
    assert result.mapping["data.train.data_path"] == result.mapping["data.train.dataset_name"] == "data.dataset"
    assert "data.train.data_path" not in result.dropped


def test_a_generic_loader_with_a_data_path_becomes_the_path(legacy_dir, tmp_path):
    rows = tmp_path / "pairs.jsonl"
    result = migrate_legacy_config(legacy_dir / "dpo.yaml", [
        "data.train.dataset_name=PreferenceDataset", f"+data.train.data_path={rows}", "~data.validation"])
    assert result.config.data.dataset == str(rows)
    assert result.mapping["data.train.data_path"] == "data.dataset"
    assert "nemo-rl reads that file itself" in result.dropped["data.train.dataset_name"]


def test_an_unadapted_name_is_warned_about_with_the_override(legacy_dir):
    result = migrate_legacy_config(legacy_dir / "vlm_grpo_3B.yaml")
    train = next(w for w in result.warnings if w.startswith("data.dataset:"))
    assert train.startswith("data.dataset: 'clevr-cogent' is a dataset NeMo RL resolved itself, "
                            "and nemo-rl has no adapter for it (it adapts AIME2024, ")
    assert "Point it at your rows: data.dataset=FILE (with the legacy scripts: data.train.dataset_name=FILE)" in train
    val = next(w for w in result.warnings if w.startswith("data.val_dataset:"))
    assert "data.val_dataset=FILE (with the legacy scripts: data.validation.dataset_name=FILE)" in val


CONFIGS = sorted(p.name for p in (Path(__file__).parents[1] / "data" / "legacy_configs").glob("*.yaml"))


@pytest.mark.parametrize("name", CONFIGS)
def test_every_example_config_names_a_dataset_that_resolves_or_is_warned_about(legacy_dir, name):
    try:
        result = migrate_legacy_config(legacy_dir / name)
    except UnsupportedAlgorithmError:
        pytest.skip("PPO, RM and distillation do not migrate")
    adapters = registry.available("datasets")
    for key in ("dataset", "val_dataset"):
        value = getattr(result.config.data, key)
        if value is None or value in adapters or registered_with_path(value) or "/" in value:
            continue
        assert any(w.startswith(f"data.{key}: {value!r}") for w in result.warnings), (name, value)


def test_openmathinstruct2_without_a_split_gets_the_split_nemo_rl_loaded(legacy_dir):
    assert migrate_legacy_config(legacy_dir / "grpo_math_1B.yaml").config.data.split == "train_1M"
    named = migrate_legacy_config(legacy_dir / "sft_openmathinstruct2.yaml")  # names train_1M itself
    assert named.config.data.split == "train_1M"
    other = migrate_legacy_config(legacy_dir / "grpo_math_1B.yaml", ["+data.train.split=train_2M"])
    assert other.config.data.split == "train_2M"
