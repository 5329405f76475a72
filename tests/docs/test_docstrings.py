"""Every public name has a docstring: the API reference (docs/reference/api/) is built from them.

Public names are those of `tools/public_api.py`: the `__all__` of every public module of our
packages (nemo_rl and the plugin packages), plus the definitions of nemo_rl.api, protocols and
registry.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

from public_api import PublicName, docstring, public_names  # noqa: E402


def test_every_public_name_has_a_docstring():
    names = public_names()
    assert len(names) > 150, f"only {len(names)} public names found; is the package scan broken?"
    missing = sorted(
        {f"{n.module}.{n.name} (defined at {n.target})" for n in names if not docstring(n)}
    )
    assert not missing, (
        f"{len(missing)} public names have no docstring; add one (with a short example) where "
        "each is defined, or for a constant a string literal on the line after it:\n  "
        + "\n  ".join(missing)
    )


def test_checker_sees_a_missing_docstring():
    def undocumented():
        pass

    assert docstring(PublicName("nemo_rl", "undocumented", undocumented)) is None
    assert docstring(PublicName("nemo_rl.config.types", "Seed", __import__(
        "nemo_rl.config.types", fromlist=["Seed"]).Seed)).startswith("A random seed")


def test_every_protocol_method_has_a_docstring():
    """The protocols are the contract plugins implement: each method says what it must do."""
    import inspect
    from typing import Protocol

    import nemo_rl.protocols as protocols

    missing = []
    for name, cls in vars(protocols).items():
        if not (inspect.isclass(cls) and issubclass(cls, Protocol)):
            continue
        if cls.__module__ != protocols.__name__:  # imported names (collections.abc.Callable)
            continue
        for attr, value in vars(cls).items():
            func = value.fget if isinstance(value, property) else value
            if attr.startswith("_") and attr != "__call__" or not inspect.isfunction(func):
                continue
            if not func.__doc__:
                missing.append(f"{name}.{attr}")
    assert not missing, f"protocol methods without a docstring: {missing}"
