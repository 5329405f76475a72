"""Subcommands and config templates that other packages add to `nemo-rl` through the
`cli_commands` and `templates` plugin groups, and what the CLI says when their package is missing."""

from __future__ import annotations

import argparse
import types
from importlib import metadata

import pytest
from nemo_rl import registry
from nemo_rl.cli.main import build_parser, main


@pytest.fixture
def without_recipes(monkeypatch: pytest.MonkeyPatch) -> None:
    """This environment as it would be without nemo-rl-recipes: its entry points are gone."""
    everything = metadata.entry_points

    def entry_points(**selection):
        return [ep for ep in everything(**selection)
                if not (ep.dist and ep.dist.name == "nemo-rl-recipes")]

    monkeypatch.setattr(metadata, "entry_points", entry_points)


def test_quickstart_without_recipes_says_what_to_install(without_recipes, capsys):
    assert "nemo-rl-recipes" in build_parser().format_help()
    assert main(["quickstart", "--workdir", "x", "--seed", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "error: `nemo-rl quickstart` ships with nemo-rl-recipes, which is not installed: "
        "pip install nemo-rl-recipes"
    )


def test_templates_without_any_source_say_what_to_install(without_recipes, capsys):
    assert main(["templates"]) == 2
    assert "config templates ship with nemo-rl-recipes" in capsys.readouterr().err


def test_a_registered_command_is_added_and_runs(capsys):
    def add_parser(subparsers: argparse._SubParsersAction) -> None:
        parser = subparsers.add_parser("hello", help="say hello")
        parser.add_argument("--name", default="world")
        parser.set_defaults(handler=lambda args: print(f"hello {args.name}") or 0)

    registry.register("cli_commands", "hello")(add_parser)
    try:
        assert main(["hello", "--name", "plugin"]) == 0
    finally:
        registry.unregister("cli_commands", "hello")
    assert capsys.readouterr().out == "hello plugin\n"


def test_templates_of_a_registered_source_are_listed_and_shown(tmp_path, capsys):
    path = tmp_path / "mine.yaml"
    path.write_text("# my template\nalgorithm: sft\n")
    info = types.SimpleNamespace(name="mine", algorithm="sft", description="my template", path=path)
    source = types.SimpleNamespace(list_templates=lambda algorithm=None: [info])
    registry.register("templates", "test_source")(source)
    try:
        assert main(["templates", "--algorithm", "sft"]) == 0
        assert "my template" in capsys.readouterr().out
        assert main(["templates", "show", "mine"]) == 0
        assert capsys.readouterr().out == path.read_text()
        assert main(["templates", "show", "mien"]) == 2
        assert "did you mean 'mine'" in capsys.readouterr().err
    finally:
        registry.unregister("templates", "test_source")
