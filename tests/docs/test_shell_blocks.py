"""The `nemo-rl` commands shown in the shell blocks of the README and docs/ exist.

Python blocks run (`test_code_blocks.py`); shell blocks mostly train on hub models or GPUs, so
here every `nemo-rl ...` line of a ```bash / ```console block is checked against the CLI itself:
its subcommand path answers `--help` (an argparse error exits 2), and a template it names
(`nemo-rl templates show NAME`) is one `nemo-rl templates` lists.
"""

from __future__ import annotations

import re
from pathlib import Path

from nemo_rl.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
SHELL = {"bash", "console", "sh", "shell"}
FENCE = re.compile(r"^\s*```(?P<lang>[\w+-]*)\s*$")
WORD = re.compile(r"^[a-z][a-z-]*$")


def nemo_rl_commands(text: str) -> list[list[str]]:
    """The argument lists of the `nemo-rl` lines of the shell blocks of a markdown text.

    Example:
        >>> nemo_rl_commands("```bash\\n$ nemo-rl templates show sft-chat > a.yaml  # x\\n```\\n")
        [['templates', 'show', 'sft-chat', '>', 'a.yaml']]
    """
    commands, lang = [], None
    for line in text.splitlines():
        fence = FENCE.match(line)
        if fence:
            lang = None if lang is not None else fence["lang"]
            continue
        if lang not in SHELL:
            continue
        line = line.strip().removeprefix("$ ").split("#")[0].strip()
        if line.startswith("nemo-rl "):
            commands.append(line.split()[1:])
    return commands


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def test_every_shown_command_exists(capsys):
    from nemo_rl_recipes import list_templates

    templates = {t.name for t in list_templates()}
    checked = set()
    for page in pages():
        for args in nemo_rl_commands(page.read_text(encoding="utf-8")):
            path = []
            for word in args[:2]:
                if not WORD.match(word):
                    break
                path.append(word)
            where = f"{page.relative_to(ROOT)}: nemo-rl {' '.join(args)}"
            if tuple(path) not in checked:
                try:
                    code = main([*path, "--help"])
                except SystemExit as done:  # argparse exits after printing the help
                    code = done.code
                assert code in (0, None), f"{where}: `nemo-rl {' '.join(path)}` is not a command"
                checked.add(tuple(path))
            if path == ["templates", "show"]:
                assert args[2] in templates, f"{where}: no template {args[2]!r} ({sorted(templates)})"
    assert len(checked) >= 5, f"only {sorted(checked)} found: is the block parser broken?"
    try:  # the check itself tells a missing command apart
        code = main(["no-such-command", "--help"])
    except SystemExit as done:
        code = done.code
    assert code not in (0, None)
    capsys.readouterr()
