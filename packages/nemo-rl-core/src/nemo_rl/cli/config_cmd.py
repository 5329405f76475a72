"""`nemo-rl config validate|show|diff|schema`: check, print, compare and describe configs.

Example:
    >>> from nemo_rl.cli.main import main
    >>> main(["config", "show", "run.yaml", "seed=7"])  # doctest: +SKIP
    0
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.table import Table
from rich.text import Text

from nemo_rl.cli.output import stdout_console


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add `config` and its four subcommands."""
    parser = subparsers.add_parser("config", help="validate, show, diff configs; print schemas")
    commands = parser.add_subparsers(dest="config_command", metavar="COMMAND", required=True)

    overrides_help = (
        "dotted overrides such as policy.optimizer.lr=1e-6, ~key (delete), +key=v (add)"
    )
    validate = commands.add_parser(
        "validate", help="check a config file (exit 0 if valid, 2 if not)"
    )
    validate.add_argument("file", help="YAML or JSON config file")
    validate.add_argument("overrides", nargs="*", help=overrides_help)
    validate.set_defaults(handler=run_validate)

    show = commands.add_parser("show", help="print the resolved config (defaults included) as YAML")
    show.add_argument("file", help="YAML or JSON config file")
    show.add_argument("overrides", nargs="*", help=overrides_help)
    show.add_argument(
        "--minimal", action="store_true", help="only the values that differ from the defaults"
    )
    show.set_defaults(handler=run_show)

    diff = commands.add_parser("diff", help="the keys whose resolved values differ between A and B")
    diff.add_argument("a", help="first config file")
    diff.add_argument("b", help="second config file")
    diff.set_defaults(handler=run_diff)

    schema = commands.add_parser("schema", help="print the JSON schema of an algorithm's config")
    schema.add_argument("algorithm", help="an installed algorithm (see `nemo-rl plugins`)")
    schema.add_argument("-o", "--output", type=Path, help="write the schema to this file")
    schema.set_defaults(handler=run_schema)


def run_validate(args: argparse.Namespace) -> int:
    """Load and validate; a `ConfigError` propagates to `main` (one red message, exit 2)."""
    from nemo_rl.config import load_config

    cfg = load_config(args.file, args.overrides)
    stdout_console().print(
        f"OK: {args.file} is a valid {cfg.algorithm} config", markup=False, highlight=False
    )
    return 0


def run_show(args: argparse.Namespace) -> int:
    """Print the resolved config as YAML (plain text, so it can be redirected to a file)."""
    from nemo_rl.config import dump_config, load_config

    cfg = load_config(args.file, args.overrides)
    print(dump_config(cfg, minimal=args.minimal), end="")
    return 0


def run_diff(args: argparse.Namespace) -> int:
    """Print a table of the dotted keys whose values differ, with both values."""
    from nemo_rl.config import diff_configs, load_config

    differences = diff_configs(load_config(args.a), load_config(args.b))
    console = stdout_console()
    if not differences:
        console.print(f"{args.a} and {args.b} resolve to the same config", markup=False)
        return 0
    # Text cells: values such as ["console"] must not be read as rich markup.
    table = Table()
    for header in ("key", args.a, args.b):
        table.add_column(Text(header))
    for key, value_a, value_b in differences:
        table.add_row(Text(key), Text(_show(value_a)), Text(_show(value_b)))
    console.print(table)
    return 0


def _show(value: object) -> str:
    return (
        json.dumps(value) if isinstance(value, (str, list, dict, bool, type(None))) else str(value)
    )


def run_schema(args: argparse.Namespace) -> int:
    """Print the JSON schema, or write it to `--output`."""
    from nemo_rl.config import config_json_schema

    text = json.dumps(config_json_schema(args.algorithm), indent=2) + "\n"
    if args.output is None:
        print(text, end="")
    else:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf-8")
        stdout_console().print(f"wrote {args.output}", markup=False, highlight=False)
    return 0
