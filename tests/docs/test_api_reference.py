"""The API reference pages (docs/reference/api/) list every public object and are in the site."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

import api_reference  # noqa: E402
from public_api import public_names  # noqa: E402


def test_committed_pages_match_the_public_names():
    pages = api_reference.render_pages()
    committed = {p.stem: p.read_text(encoding="utf-8") for p in api_reference.OUTPUT.glob("*.md")}
    stale = sorted(
        name for name in set(pages) | set(committed) if pages.get(name) != committed.get(name)
    )
    assert not stale, (
        f"docs/reference/api/{{{', '.join(stale)}}}.md are out of date with the public names; "
        f"regenerate them: {api_reference.COMMAND} (and delete pages of packages that are gone)"
    )


def test_every_public_object_is_rendered_once_and_every_page_is_in_the_nav():
    pages = api_reference.render_pages()
    text = "\n".join(pages.values())
    for entry in public_names():
        assert text.count(f"::: {entry.target}\n") == 1, f"{entry.target} rendered not exactly once"
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for package in pages:
        assert f"reference/api/{package}.md" in nav, (
            f"docs/reference/api/{package}.md is not in mkdocs.yml's nav; add it under Reference"
        )
