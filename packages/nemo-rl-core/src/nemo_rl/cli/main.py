"""Entry point of the `nemo-rl` console script: builds the parser from the subcommand modules.

A subcommand module is any `nemo_rl/cli/<name>_cmd.py` with `add_parser(subparsers)`; that function
adds its parser and sets `handler=<function(args) -> int>` as a default. Other packages add
subcommands the same way through the `nemo_rl.cli_commands` entry-point group, whose entries name
such an `add_parser` function (nemo-rl-recipes adds `quickstart`); core's own commands win a name
clash. A well-known command whose package is missing still parses and says what to install.
Handlers raise on failure; `main` prints the error as one red line and returns exit code 2
(`--debug` shows the traceback instead).

Example:
    >>> from nemo_rl.cli.main import main
    >>> main(["config", "validate", "run.yaml", "policy.optimizer.lr=1e-6"])  # doctest: +SKIP
    0
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
from collections.abc import Sequence

from nemo_rl import registry
from nemo_rl.cli.output import print_error

USAGE_ERROR = 2


def subcommand_modules() -> list[str]:
    """Names of the `*_cmd` modules of this package, sorted (their order in `--help`)."""
    import nemo_rl.cli as package

    return sorted(
        f"{package.__name__}.{info.name}"
        for info in pkgutil.iter_modules(package.__path__)
        if info.name.endswith("_cmd")
    )


def build_parser() -> argparse.ArgumentParser:
    """The `nemo-rl` parser with every subcommand module's parser added."""
    parser = argparse.ArgumentParser(
        prog="nemo-rl", description="Post-training for language models (GRPO, SFT, DPO)."
    )
    parser.add_argument(
        "--debug", action="store_true", help="show the full traceback when a command fails"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in subcommand_modules():
        importlib.import_module(name).add_parser(subparsers)
    add_plugin_commands(subparsers)
    return parser


def add_plugin_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add the subcommands of the `cli_commands` plugin group; a known one that is not installed
    (or fails to import) gets a placeholder whose handler says what to install."""
    taken = set(subparsers.choices)
    installed = registry.available("cli_commands")
    known = [n for (group, n) in registry.KNOWN_PROVIDERS if group == "cli_commands"]
    for name in sorted(set(installed) | set(known)):
        if name in taken:
            continue
        try:
            registry.resolve("cli_commands", name)(subparsers)
        except registry.PluginNotFoundError as err:
            package = registry.KNOWN_PROVIDERS.get(("cli_commands", name), "its package")
            problem = (
                f"`nemo-rl {name}` ships with {package}, which is not installed: pip install {package}"
                if name not in installed
                else f"`nemo-rl {name}`: {err}"
            )
            _add_missing_command(subparsers, name, package, problem)


def _add_missing_command(
    subparsers: argparse._SubParsersAction, name: str, package: str, problem: str
) -> None:
    # No option prefix: every argument, --help included, lands in `rest`, so any command line
    # the real command would take gets the install message instead of a usage error.
    parser = subparsers.add_parser(
        name, help=f"(needs {package}: pip install {package})", prefix_chars="\0", add_help=False
    )
    parser.add_argument("rest", nargs="*", help=argparse.SUPPRESS)

    def missing(_: argparse.Namespace) -> int:
        raise RuntimeError(problem)

    parser.set_defaults(handler=missing)


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse `argv`, taking `key=value` overrides wherever they stand among the options.

    argparse fills a `nargs="*"` positional once, before the first option, so in
    `train run.yaml --dry-run lr=1` the override would be "unrecognized"; the leftovers of a
    command that takes overrides are appended to them in order instead.

    Example:
        >>> args = parse_args(build_parser(), ["train", "run.yaml", "--dry-run", "seed=3"])
        >>> args.dry_run, args.overrides
        (True, ['seed=3'])
    """
    args, extra = parser.parse_known_args(argv)
    takes_overrides = isinstance(getattr(args, "overrides", None), list)
    stray = [item for item in extra if item.startswith("-") or not takes_overrides]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)}{_foreign_flag_hint(stray)}")
    if extra:
        args.overrides = [*args.overrides, *extra]
    return args


def _foreign_flag_hint(stray: list[str]) -> str:
    """'; --learning_rate is TRL's name for ...' for the first flag TRL or NeMo RL would know.

    Example:
        >>> _foreign_flag_hint(["--learning_rate", "1e-5"])
        "; --learning_rate is TRL's name for 'policy.optimizer.lr': write policy.optimizer.lr=VALUE"
    """
    from nemo_rl.config.aliases import alias_hint, alias_target

    for item in stray:
        name = item[2:].split("=", 1)[0].replace("-", "_") if item.startswith("--") else ""
        hint = alias_hint(name) if name else None
        if hint:
            target = alias_target(name)
            fix = f": write {target}=VALUE" if target else ""
            return f"; {item.split('=', 1)[0]} is {hint}{fix}"
    return ""


def main(argv: Sequence[str] | None = None) -> int:
    """Run `nemo-rl` with `argv` (default: the process arguments); returns the exit code."""
    parser = build_parser()
    try:
        args = parse_args(parser, argv)
    except SystemExit as exit_:  # argparse exits on --help and on usage errors
        return exit_.code if isinstance(exit_.code, int) else USAGE_ERROR
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return USAGE_ERROR
    try:
        return handler(args)
    except KeyboardInterrupt as err:
        if not str(err):  # a trainer's TrainingInterrupted has printed where to resume
            print_error("interrupted")
        return 130
    except Exception as err:  # every failure becomes one readable line unless --debug
        if args.debug:
            raise
        print_error(str(err))
        return USAGE_ERROR


if __name__ == "__main__":
    raise SystemExit(main())
