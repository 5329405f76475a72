"""docs/migration.md shows what `nemo-rl config migrate` prints and writes (issue #18, item 6).

Each `$ nemo-rl config migrate examples/configs/...` line of a ```console block is run (NeMo RL's
examples are the bundled copies) and every output line the page shows under it, up to the next
`$`, must appear in what it printed, in that order ("..." stands for lines left out; rich wraps
long lines, so whitespace is compared collapsed). A ```yaml block after
`<!-- docs-test: written by: COMMAND -->` must be exactly the file COMMAND writes.
"""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest
from nemo_rl.cli.main import main

PAGE = Path(__file__).resolve().parents[4] / "docs" / "migration.md"
WRITTEN_BY = re.compile(r"<!--\s*docs-test:\s*written by:\s*(?P<command>.+?)\s*-->")
PREFIX = "nemo-rl config migrate examples/configs/"


def _blocks(lang: str) -> list[tuple[str, list[str]]]:
    """(line before the fence, lines inside) of each ```<lang> block of the page."""
    lines, found = PAGE.read_text().splitlines(), []
    for i, line in enumerate(lines):
        if line.strip() == f"```{lang}":
            end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
            found.append((lines[i - 1] if i else "", lines[i + 1 : end]))
    return found


def _examples() -> list[tuple[str, list[str]]]:
    """(command, the output lines shown under it) for every migrate command of the page."""
    examples = []
    for _, body in _blocks("console"):
        for i, line in enumerate(body):
            if line.startswith(f"$ {PREFIX}"):
                shown = []
                for later in body[i + 1 :]:
                    if later.startswith("$ "):
                        break
                    shown.append(later)
                examples.append((line[2:], [s for s in shown if s.strip() and s.strip() != "..."]))
    return examples


def _written() -> list[tuple[str, str]]:
    return [(m["command"], "\n".join(body) + "\n") for before, body in _blocks("yaml")
            if (m := WRITTEN_BY.search(before))]


@pytest.fixture
def nemo_rl_checkout(tmp_path, monkeypatch, legacy_dir) -> Path:
    """A working directory laid out as a NeMo RL checkout: examples/configs/ holds its configs."""
    shutil.copytree(legacy_dir, tmp_path / "examples" / "configs")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path


def _run(command: str) -> int:
    argv = shlex.split(command)
    assert argv[0] == "nemo-rl"
    return main(argv[1:])


def test_the_page_has_the_examples_this_test_checks():
    assert len(_examples()) >= 4 and len(_written()) == 1


@pytest.mark.parametrize(("command", "shown"), _examples(), ids=[c for c, _ in _examples()])
def test_each_migrate_example_prints_what_the_page_shows(nemo_rl_checkout, capsys, command, shown):
    assert _run(command) == 0
    printed = " ".join(capsys.readouterr().out.split())
    position = 0
    for line in shown:
        expected = " ".join(line.split())
        found = printed.find(expected, position)
        assert found >= 0, f"{command!r} did not print {line!r} (after position {position})"
        position = found + len(expected)


@pytest.mark.parametrize(("command", "text"), _written(), ids=[c for c, _ in _written()])
def test_a_file_the_page_shows_is_the_file_the_command_writes(nemo_rl_checkout, capsys, command, text):
    assert _run(command) == 0
    output = shlex.split(command)[shlex.split(command).index("-o") + 1]
    assert Path(output).read_text() == text
