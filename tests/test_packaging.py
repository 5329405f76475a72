"""What the project tells users to install exists: every install hint of the registry points to a
package that declares the plugin's entry point (or to an extra that exists), a planned plugin's
package really is a skeleton, every extra of nemo-rl-core is named by some hint or dependency,
and no file sends readers to notes outside the repository.

A skeleton package is one whose pyproject declares no `nemo_rl.*` entry point.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from nemo_rl import registry

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {
    data["project"]["name"]: data
    for data in (
        tomllib.loads(p.read_text()) for p in sorted(ROOT.glob("packages/*/pyproject.toml"))
    )
}


def entry_points(package: str) -> dict[str, dict[str, str]]:
    """The `nemo_rl.*` entry-point groups a package declares."""
    declared = PACKAGES[package]["project"].get("entry-points", {})
    return {group: names for group, names in declared.items() if group.startswith("nemo_rl.")}


def split_requirement(spec: str) -> tuple[str, str | None]:
    """"nemo-rl-core[wandb]" -> ("nemo-rl-core", "wandb")."""
    match = re.fullmatch(r"([A-Za-z0-9_.-]+)(?:\[([A-Za-z0-9_,-]+)\])?", spec)
    assert match, f"not a requirement: {spec!r}"
    return match.group(1), match.group(2)


@pytest.mark.parametrize(("plugin", "provider"), sorted(registry.KNOWN_PROVIDERS.items()))
def test_every_install_hint_points_to_a_package_that_provides_the_plugin(plugin, provider):
    group, name = plugin
    package, extra = split_requirement(provider)
    assert package in PACKAGES, f"hint for {plugin} names {package}, which is not in packages/"
    assert name in entry_points(package).get(f"nemo_rl.{group}", {}), (
        f"the hint for {group} {name!r} says `pip install {provider}`, but {package} declares no "
        f"such entry point: move it to registry.PLANNED until the plugin exists"
    )
    if extra is not None:
        assert extra in PACKAGES[package]["project"].get("optional-dependencies", {})


@pytest.mark.parametrize(("plugin", "package"), sorted(registry.PLANNED.items()))
def test_planned_plugins_belong_to_skeletons_that_say_so(plugin, package):
    assert plugin not in registry.KNOWN_PROVIDERS
    assert package in PACKAGES
    if entry_points(package):
        pytest.fail(f"{package} now declares entry points: move {plugin} to KNOWN_PROVIDERS")
    assert "not available yet" in PACKAGES[package]["project"]["description"]


def test_skeleton_packages_are_described_as_not_available():
    for name in PACKAGES:
        if not entry_points(name) and name not in ("nemo-rl-recipes",):
            assert "not available yet" in PACKAGES[name]["project"]["description"], name


def test_every_core_extra_is_used():
    """An extra nothing installs through a hint or a dependency promises a feature that is not
    there (e.g. a `ray` extra before anything uses Ray)."""
    sources = "\n".join(
        p.read_text() for p in (ROOT / "packages").glob("*/src/**/*.py")
    ) + "\n".join(str(data["project"].get("dependencies", [])) for data in PACKAGES.values())
    sources += (ROOT / "pyproject.toml").read_text()
    for extra in PACKAGES["nemo-rl-core"]["project"].get("optional-dependencies", {}):
        used = re.search(rf"nemo-rl-core\[[^\]]*\b{re.escape(extra)}\b", sources)
        assert used, f"nemo-rl-core[{extra}] is named by no install hint or dependency"


def test_no_file_points_outside_the_repository_for_documentation():
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if tracked.returncode != 0:
        pytest.skip("not a git checkout")
    this = Path(__file__).resolve()
    for name in tracked.stdout.splitlines():
        path = ROOT / name
        if name == "uv.lock" or path.resolve() == this or not path.is_file():
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        assert "DESIGN.md" not in text, f"{name} mentions DESIGN.md, which users do not have"
        assert "../shared/" not in text, f"{name} points to ../shared/, outside the repository"


def test_every_core_extra_a_message_names_exists():
    """A hint naming `nemo-rl-core[x]` for an extra that is not declared sends users nowhere."""
    extras = set(PACKAGES["nemo-rl-core"]["project"].get("optional-dependencies", {}))
    for path in sorted((ROOT / "packages").glob("*/src/**/*.py")):
        for extra_list in re.findall(r"nemo-rl-core\[([A-Za-z0-9_,-]+)\]", path.read_text()):
            missing = set(extra_list.split(",")) - extras
            assert not missing, f"{path.relative_to(ROOT)} names nemo-rl-core{sorted(missing)}"
