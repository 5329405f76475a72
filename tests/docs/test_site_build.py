"""The documentation site builds with `mkdocs build --strict` (a broken link, a missing page in
the nav or an unresolvable API reference entry fails), as `uvx nox -s docs` builds it.

The build runs in an environment of the locked `docs` dependency group alone (mkdocstrings reads
the sources without importing them), kept under .nox/ between runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_site_builds_strict(tmp_path: Path):
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH; build the site with `uvx nox -s docs`")
    env = {
        **os.environ,
        "UV_PROJECT_ENVIRONMENT": str(ROOT / ".nox" / "docs-pytest"),
        "NO_MKDOCS_2_WARNING": "1",
    }
    env.pop("VIRTUAL_ENV", None)  # uv run would warn that it does not match the project's
    done = subprocess.run(
        [uv, "run", "--frozen", "--only-group", "docs", "mkdocs", "build", "--strict",
         "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, (
        f"mkdocs build --strict failed (rc {done.returncode}); run `uvx nox -s docs` to see it:\n"
        + done.stderr[-4000:]
    )
    assert (tmp_path / "site" / "reference" / "configuration" / "index.html").is_file()
