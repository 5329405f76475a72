"""`nemo-rl config migrate OLD.yaml [-o NEW.yaml] [k=v ...]`: turn a NeMo RL config into a minimal
nemo-rl config, and show where every old key went.

Example:
    >>> from nemo_rl.cli.main import main
    >>> main(["config", "migrate", "grpo_math_1B.yaml", "-o", "grpo.yaml"])  # doctest: +SKIP
    0
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.table import Table
from rich.text import Text

from nemo_rl.cli.output import stdout_console


def _config_subcommands(subparsers: argparse._SubParsersAction) -> argparse._SubParsersAction:
    """The subcommands of `nemo-rl config` (made here when config_cmd is absent)."""
    parser = subparsers.choices.get("config")
    if parser is None:
        parser = subparsers.add_parser("config", help="work with config files")
    for action in parser._actions:  # argparse offers no public accessor for a parser's subparsers
        if isinstance(action, argparse._SubParsersAction):
            return action
    return parser.add_subparsers(dest="config_command", metavar="COMMAND", required=True)


class _OutputThenOverrides(argparse.Action):
    """`-o NEW.yaml [k=v ...]`: argparse cannot take positionals after an option on its own, so
    the values following the output path are collected here as more overrides."""

    def __call__(self, parser, namespace, values, option_string=None):  # noqa: ANN001
        namespace.output = Path(values[0])
        namespace.late_overrides = list(values[1:])


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add `migrate` under `nemo-rl config`."""
    migrate = _config_subcommands(subparsers).add_parser(
        "migrate", help="convert a legacy NeMo RL config to a minimal nemo-rl config"
    )
    migrate.add_argument("file", help="legacy NeMo RL YAML config (its defaults: are followed)")
    migrate.add_argument(
        "overrides", nargs="*", help="Hydra-style overrides of legacy keys: a.b=1 +a.new=2 ~a.gone"
    )
    migrate.add_argument(
        "-o", "--output", nargs="+", action=_OutputThenOverrides, metavar="NEW.yaml",
        help="write the new config here (overrides may follow)",
    )
    migrate.add_argument(
        "--full", action="store_true", help="write every value, not only those that differ from "
        "the new defaults"
    )
    migrate.set_defaults(handler=run_migrate, late_overrides=[])


def run_migrate(args: argparse.Namespace) -> int:
    """Migrate, write (or print) the new config, then print the key mapping and what was dropped."""
    from nemo_rl.compat import migrate_legacy_config
    from nemo_rl.config import dump_config

    result = migrate_legacy_config(args.file, [*args.overrides, *args.late_overrides])
    text = dump_config(result.config, minimal=not args.full)
    console = stdout_console()
    if args.output is None:
        print(text, end="")
    else:
        args.output.write_text(text, encoding="utf-8")
    table = Table(title=f"{args.file}: legacy key -> new key")
    table.add_column("legacy key")
    table.add_column("new key")
    for old, new in result.mapping.items():
        if new is not None:
            table.add_row(Text(old), Text(new))
    console.print(table)
    dropped = Table(title="dropped (no equivalent, or no effect)")
    dropped.add_column("legacy key")
    dropped.add_column("reason")
    for old, reason in result.dropped.items():
        dropped.add_row(Text(old), Text(reason))
    console.print(dropped)
    for warning in result.warnings:
        if "is deprecated" not in warning:  # renames are in the table above
            console.print(Text(f"warning: {warning}", style="yellow"))
    if args.output is not None:
        lines = len(text.splitlines())
        console.print(Text(f"wrote {args.output} ({lines} lines, {result.config.algorithm})"))
    return 0
