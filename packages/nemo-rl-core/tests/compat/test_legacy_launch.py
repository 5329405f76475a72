"""The legacy launch command line: parsing, deprecation notice, algorithm check, summary, errors.

Training itself runs in nemo-rl-recipes/tests/test_legacy_launch.py (it needs a model backend).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from nemo_rl.compat import migrate_legacy_config
from nemo_rl.compat.legacy_launch import (
    LegacyLaunch,
    LegacyLaunchError,
    deprecation_message,
    load_for_script,
    migration_summary,
    parse_legacy_args,
    run_legacy_script,
)
from nemo_rl.compat.migrate import MigrationResult


def test_config_and_hydra_overrides_are_read_as_nemo_rl_read_them():
    launch = parse_legacy_args("grpo", [
        "--config=a.yaml", "policy.model_name=m", "+x.new=1", "++y=2", "~z", "--dry-run"])
    assert launch == LegacyLaunch(Path("a.yaml"), ("policy.model_name=m", "+x.new=1", "++y=2", "~z"),
                                  dry_run=True)


def test_missing_config_and_unknown_option_say_what_to_pass():
    with pytest.raises(LegacyLaunchError, match=r"--config is required.*grpo_math_1B\.yaml"):
        parse_legacy_args("grpo", ["policy.model_name=m"])
    with pytest.raises(LegacyLaunchError, match=r"run_sft: unknown option '--steps'"):
        parse_legacy_args("sft", ["--config", "a.yaml", "--steps", "3"])


def test_deprecation_points_to_migrate_and_train():
    text = deprecation_message("dpo", "configs/dpo.yaml")
    assert "nemo_rl.compat.run_dpo" in text
    assert "nemo-rl config migrate configs/dpo.yaml -o dpo.nemo-rl.yaml" in text
    assert "nemo-rl train dpo.nemo-rl.yaml" in text


def test_wrong_script_names_the_right_one(legacy_dir):
    launch = LegacyLaunch(legacy_dir / "grpo_math_1B.yaml", ())
    with pytest.raises(LegacyLaunchError, match="run_sft got a grpo config; use run_grpo"):
        load_for_script("sft", launch)
    launch = LegacyLaunch(legacy_dir / "dpo.yaml", ())
    with pytest.raises(LegacyLaunchError, match="run_grpo got a dpo config; use run_dpo"):
        load_for_script("grpo", launch)


def test_a_new_layout_config_runs_too_and_is_checked(tmp_path):
    path = tmp_path / "sft.yaml"
    path.write_text("algorithm: sft\nmax_num_steps: 3\n")
    assert load_for_script("sft", LegacyLaunch(path, ("max_num_steps=5",))).max_num_steps == 5
    with pytest.raises(LegacyLaunchError, match="run_dpo got a sft config; use run_sft"):
        load_for_script("dpo", LegacyLaunch(path, ()))


def test_overrides_reach_the_migrated_config_and_the_summary_is_printed(legacy_dir, capsys):
    launch = LegacyLaunch(legacy_dir / "sft.yaml", (
        "policy.model_name=/models/tiny", "~data.validation", "++sft.max_num_steps=7"))
    cfg = load_for_script("sft", launch)
    assert (cfg.policy.model_name, cfg.max_num_steps, cfg.data.val_dataset) == ("/models/tiny", 7, None)
    err = capsys.readouterr().err
    assert "legacy keys renamed" in err and "warning: 'logger.monitor_gpus'" in err
    assert "is deprecated" not in err  # renames are counted, not listed


def test_summary_counts_renames_and_shows_each_run_changing_warning_once():
    result = migrate_legacy_config({"sft": {"max_num_steps": 4}, "logger": {"monitor_gpus": True}})
    doubled = MigrationResult(result.config, result.mapping, result.dropped,
                              result.warnings + result.warnings, result.legacy_values)
    lines = migration_summary(doubled, "old.yaml")
    renamed = sum(1 for o, n in result.mapping.items() if n and n != o)
    assert lines[0].startswith(f"migrated old.yaml (sft): {renamed} legacy keys renamed, "
                               f"{len(result.dropped)} dropped")
    assert renamed >= 1
    assert lines[1:] == [f"warning: {w}" for w in result.warnings if "monitor_gpus" in w]


def test_grpo_without_an_environment_stops_with_the_fix_and_an_override_supplies_one(legacy_dir):
    path = legacy_dir / "grpo_rm_1B.yaml"
    with pytest.raises(LegacyLaunchError, match=r"names 'vlm', which nemo-rl lacks.*"
                                                r"\+\+data\.default\.env_name="):
        load_for_script("grpo", LegacyLaunch(path, ("++data.default.env_name=vlm",)))
    fixed = load_for_script("grpo", LegacyLaunch(path, ("++data.default.env_name=exact_match",)))
    assert fixed.environment == "exact_match"


def test_errors_exit_2_after_the_deprecation_notice(legacy_dir, capsys):
    code = run_legacy_script("sft", ["--config", str(legacy_dir / "grpo_smoke.yaml")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.index("DEPRECATED") < err.index("error: run_sft got a grpo config; use run_grpo")
    assert run_legacy_script("dpo", ["--config", str(legacy_dir / "ppo_math_1B.yaml")]) == 2
    assert "does not support PPO" in capsys.readouterr().err
