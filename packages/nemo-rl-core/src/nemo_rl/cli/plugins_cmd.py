"""`nemo-rl plugins`: every installed plugin, by group, with the package that provides it.

Example:
    >>> from nemo_rl.cli.main import main
    >>> main(["plugins"])  # doctest: +SKIP
    0
"""

from __future__ import annotations

import argparse

from rich.table import Table

from nemo_rl import registry
from nemo_rl.cli.output import stdout_console


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add `plugins [--group GROUP]`."""
    parser = subparsers.add_parser(
        "plugins", help="list installed plugins (backends, environments, algorithms, ...)"
    )
    parser.add_argument("--group", choices=registry.GROUPS, help="only this plugin group")
    parser.set_defaults(handler=run_plugins)


def run_plugins(args: argparse.Namespace) -> int:
    """Print a table of group, name, target and package."""
    groups = [args.group] if args.group else list(registry.GROUPS)
    table = Table("group", "name", "target", "package", title="nemo-rl plugins")
    for group in groups:
        for info in registry.available(group).values():
            table.add_row(info.group, info.name, info.target, info.package)
    console = stdout_console()
    if table.row_count == 0:
        console.print(f"no plugins installed in: {', '.join(groups)}")
    else:
        console.print(table)
    return 0
