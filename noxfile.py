"""Nox sessions. `nox -s lint`, `nox -s core` (core tests with only core's dependencies),
`nox -s tests` (the whole CPU workspace).

The vLLM and Megatron backends are not available yet (nemo-rl-vllm and nemo-rl-megatron are empty
skeletons with no tests), so they have no session; theirs arrive with them.
"""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "uv"
nox.options.sessions = ["lint", "core", "tests"]

CORE = "packages/nemo-rl-core"


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over the whole workspace."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", "packages", "tests", "noxfile.py")


@nox.session
def core(session: nox.Session) -> None:
    """Core's tests with nothing but core's hard dependencies (torch, pydantic, pyyaml, rich)."""
    session.install("-e", CORE, "pytest>=8")
    session.run("pytest", f"{CORE}/tests", *session.posargs)


@nox.session
def tests(session: nox.Session) -> None:
    """Every CPU test of the workspace, in the locked development environment."""
    session.run_install("uv", "sync", "--locked", env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location})
    session.run("pytest", *session.posargs)

