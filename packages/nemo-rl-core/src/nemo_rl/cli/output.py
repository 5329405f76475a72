"""Consoles shared by the subcommands: tables stay readable in a terminal and greppable in a pipe.

Example:
    >>> from nemo_rl.cli.output import stdout_console
    >>> stdout_console().print("OK")  # doctest: +SKIP
"""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

# Wide enough that a dotted key, a plugin target or a value never wraps when output is piped.
PIPE_WIDTH = 240


def stdout_console() -> Console:
    """A console on stdout; outside a terminal it is wide, so lines are not folded."""
    console = Console(soft_wrap=True)
    if not console.is_terminal:
        console = Console(soft_wrap=True, width=PIPE_WIDTH)
    return console


def print_error(message: str) -> None:
    """`message` in red on stderr, printed as plain text (no rich markup is interpreted)."""
    Console(stderr=True, soft_wrap=True).print(Text(f"error: {message}", style="red"))
