"""The `nemo-rl` command line: `nemo-rl config ...`, `nemo-rl plugins`, and more.

Each subcommand lives in its own `*_cmd.py` module of this package exposing
`add_parser(subparsers)`; `nemo_rl.cli.main` finds them, so adding a command never edits main.py.

Example:
    >>> from nemo_rl.cli.main import main
    >>> main(["plugins", "--group", "datasets"])  # doctest: +SKIP
    0
"""
