"""`nemo-rl templates [--algorithm A]` lists the config templates; `templates show NAME` prints one.

Templates come from the packages registering a source in the `nemo_rl.templates` entry-point
group (nemo-rl-recipes ships the standard ones), imported only when the command runs; with none
installed the command says what to install.

Example:
    >>> from nemo_rl.cli.main import main
    >>> main(["templates", "show", "grpo-math-1gpu"])  # doctest: +SKIP
    0
"""

from __future__ import annotations

import argparse
import sys

from rich.table import Table

from nemo_rl.cli.output import stdout_console
from nemo_rl.cli.template_sources import TemplateSources


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add `templates [--algorithm A]` and `templates show NAME`."""
    parser = subparsers.add_parser(
        "templates", help="list config templates; 'templates show NAME' prints one"
    )
    parser.add_argument("--algorithm", help="only the templates of this algorithm (grpo, sft, dpo)")
    parser.set_defaults(handler=run_list)
    actions = parser.add_subparsers(dest="templates_command", metavar="ACTION")
    show = actions.add_parser(
        "show", help="print a template's YAML (redirect it to start a config)"
    )
    show.add_argument("name", help="a template name from `nemo-rl templates`")
    show.set_defaults(handler=run_show)


def _templates_module() -> TemplateSources:
    """The installed template sources, or an error saying what to install."""
    return TemplateSources.installed()


def run_list(args: argparse.Namespace) -> int:
    """Print a table of name, algorithm and description, and how to use a template."""
    templates = _templates_module()
    infos = templates.list_templates(args.algorithm)
    if not infos:
        known = sorted({info.algorithm for info in templates.list_templates()})
        raise ValueError(
            f"no config templates for algorithm {args.algorithm!r}: templates exist for "
            f"{', '.join(known)}"
        )
    console = stdout_console()
    table = Table("name", "algorithm", "description", title="nemo-rl config templates")
    for info in infos:
        table.add_row(info.name, info.algorithm, info.description)
    console.print(table, markup=False)
    console.print(
        "start from one: nemo-rl templates show NAME > run.yaml && nemo-rl train run.yaml",
        markup=False,
        highlight=False,
    )
    return 0


def run_show(args: argparse.Namespace) -> int:
    """Print the template's YAML exactly as shipped (plain text, so it can be redirected)."""
    sys.stdout.write(_templates_module().template_text(args.name))
    return 0
