"""The `nemo-rl` CLI: config validate/show/diff/schema and plugins, called through `main`."""

from __future__ import annotations

import json

import pytest
import yaml
from nemo_rl import registry
from nemo_rl.cli.main import build_parser, main, subcommand_modules
from nemo_rl.config import ConfigError


def test_validate_a_three_file_chain(chain, capsys):
    assert main(["config", "validate", str(chain)]) == 0
    assert capsys.readouterr().out.strip() == f"OK: {chain} is a valid grpo config"


def test_validate_reports_a_misspelled_key_with_a_suggestion(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("algorithm: grpo\nnum_generation_per_prompt: 4\n")
    assert main(["config", "validate", str(bad)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "Traceback" not in captured.err
    assert captured.err.strip() == (
        f"error: invalid config in {bad}: unknown key 'num_generation_per_prompt'; "
        "did you mean 'num_generations_per_prompt'?"
    )


def test_validate_reports_a_wrong_type_from_an_override(chain, capsys):
    assert main(["config", "validate", str(chain), "policy.optimizer.lr=fast"]) == 2
    err = capsys.readouterr().err
    assert "policy.optimizer.lr = 'fast'" in err
    assert "expected float > 0" in err


def test_show_prints_the_resolved_yaml_with_defaults_and_overrides(chain, capsys):
    assert main(["config", "show", str(chain), "policy.optimizer.lr=1e-6", "seed=9"]) == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown["algorithm"] == "grpo"
    assert shown["seed"] == 9
    assert shown["num_prompts_per_step"] == 4
    assert shown["policy"]["model_name"] == "tiny"
    assert shown["policy"]["precision"] == "float32"
    assert shown["policy"]["optimizer"]["lr"] == 1e-6
    assert shown["num_generations_per_prompt"] == 16  # a class default, shown too


def test_show_minimal_keeps_only_changed_values(chain, capsys):
    assert main(["config", "show", "--minimal", str(chain)]) == 0
    assert yaml.safe_load(capsys.readouterr().out) == {
        "algorithm": "grpo",
        "seed": 2,
        "policy": {"model_name": "tiny", "precision": "float32", "optimizer": {"lr": 1e-5}},
        "num_prompts_per_step": 4,
    }


def test_diff_prints_the_differing_keys_with_both_values(chain, tmp_path, capsys):
    other = tmp_path / "other.yaml"
    other.write_text("defaults: top.yaml\nseed: 5\nlogger: {backends: [console]}\n")
    assert main(["config", "diff", str(chain), str(other)]) == 0
    rows = [
        line
        for line in capsys.readouterr().out.splitlines()
        if "seed" in line or "backends" in line
    ]
    assert len(rows) == 2
    assert "seed" in rows[0] and " 2 " in rows[0] and " 5 " in rows[0]
    assert '["console", "jsonl"]' in rows[1] and '["console"]' in rows[1]


def test_diff_of_equal_configs_says_so(chain, capsys):
    assert main(["config", "diff", str(chain), str(chain)]) == 0
    assert "resolve to the same config" in capsys.readouterr().out


def test_schema_prints_json_or_writes_a_file(tmp_path, capsys):
    assert main(["config", "schema", "sft"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["properties"]["algorithm"]["const"] == "sft"
    target = tmp_path / "out" / "dpo.schema.json"
    assert main(["config", "schema", "dpo", "-o", str(target)]) == 0
    assert f"wrote {target}" in capsys.readouterr().out
    assert json.loads(target.read_text())["properties"]["algorithm"]["const"] == "dpo"


def test_schema_of_an_unknown_algorithm_is_one_error_line(capsys):
    assert main(["config", "schema", "grop"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: invalid config: algorithm = 'grop'")
    assert "did you mean 'grpo'" in err


def test_plugins_lists_group_name_target_and_package(capsys):
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    jsonl_row = next(line for line in out.splitlines() if " jsonl " in line)
    for cell in ("loggers", "nemo_rl.infra.logging.jsonl:JsonlBackend", "nemo-rl-core"):
        assert cell in jsonl_row
    assert any(" grpo " in line and "algorithms" in line for line in out.splitlines())


def test_plugins_for_an_empty_group_says_none(capsys, monkeypatch):
    entry_points = registry._entry_points
    monkeypatch.setattr(registry, "_entry_points", lambda group: {} if group == "datasets" else entry_points(group))
    assert not registry.available("datasets")  # core's dataset adapters hidden for this test
    assert main(["plugins", "--group", "datasets"]) == 0
    assert "no plugins installed in: datasets" in capsys.readouterr().out


def test_plugins_lists_the_dataset_adapters_core_ships(capsys):
    assert main(["plugins", "--group", "datasets"]) == 0
    squad_row = next(line for line in capsys.readouterr().out.splitlines() if " squad " in line)
    assert "nemo_rl.data.adapters.squad:squad" in squad_row and "nemo-rl-core" in squad_row


def test_debug_flag_shows_the_exception_instead(tmp_path):
    missing = tmp_path / "absent.yaml"
    with pytest.raises(ConfigError, match="does not exist"):
        main(["--debug", "config", "validate", str(missing)])


def test_usage_errors_and_no_command_exit_2(capsys):
    assert main([]) == 2
    assert "config" in capsys.readouterr().out  # the help lists the subcommands
    assert main(["config"]) == 2
    assert main(["no-such-command"]) == 2
    assert main(["--help"]) == 0


def test_subcommands_are_discovered_from_cmd_modules():
    assert {"nemo_rl.cli.config_cmd", "nemo_rl.cli.plugins_cmd"} <= set(subcommand_modules())
    commands = build_parser()._subparsers._group_actions[0].choices
    assert {"config", "plugins"} <= set(commands)
