"""`nemo-rl quickstart`: the embedded first run (tiny model, SFT then GRPO, CPU, no network).

Registered in the `nemo_rl.cli_commands` entry-point group by nemo-rl-recipes' pyproject.toml, so
the core CLI finds it without importing this package by name.

Its last line is the test-split scores before SFT, after SFT and after GRPO: `correct` (the right
number, whatever the wording) and `format` (a bare number) separately, then the wall time.

Example:
    >>> from nemo_rl.cli.main import main  # finds this command through its entry point
    >>> main(["quickstart", "--workdir", "runs/quickstart"])  # doctest: +SKIP
    0
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add `quickstart [--workdir DIR] [--seed N] [--sft-steps N] [--grpo-steps N]`."""
    parser = subparsers.add_parser(
        "quickstart", help="train a tiny model offline: SFT then GRPO, a few minutes on a CPU"
    )
    parser.add_argument(
        "--workdir", type=Path, default=Path("runs/quickstart"), help="output folder"
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="model init, data order and sampling (the split is fixed)",
    )
    parser.add_argument("--sft-steps", type=int, default=None, help="override the SFT step count")
    parser.add_argument("--grpo-steps", type=int, default=None, help="override the GRPO step count")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run the quickstart in `args.workdir` and print its summary line."""
    from nemo_rl.cli.output import stdout_console

    from nemo_rl_recipes.quickstart import run_quickstart

    console = stdout_console()
    result = run_quickstart(
        args.workdir,
        seed=args.seed,
        sft_steps=args.sft_steps,
        grpo_steps=args.grpo_steps,
        console=console,
    )
    # The last line states the figures (the README quotes it; the quickstart test parses it).
    print(result.summary(), flush=True)
    return 0
