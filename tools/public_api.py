"""The public surface of nemo-rl: every name in the `__all__` of a public module of our packages.

A module is public when no part of its dotted name starts with "_" and it defines `__all__`. The
API reference (`tools/api_reference.py`) documents each object once, under the first module that
exports it (modules in dotted-name order, so `nemo_rl.GRPOTrainer` wins over
`nemo_rl.algorithms.grpo.GRPOTrainer`); `tests/docs/test_docstrings.py` checks each has a docstring.

Example:
    >>> names = public_names()
    >>> ("nemo_rl", "GRPOTrainer") in {(n.module, n.name) for n in names}
    True
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# (import name, source directory). nemo-rl-vllm is not a workspace member, so it is put on
# sys.path from its source: importing it does not import vLLM.
PACKAGES = {
    "nemo_rl": ROOT / "packages/nemo-rl-core/src",
    "nemo_rl_dtensor": ROOT / "packages/nemo-rl-dtensor/src",
    "nemo_rl_envs": ROOT / "packages/nemo-rl-envs/src",
    "nemo_rl_recipes": ROOT / "packages/nemo-rl-recipes/src",
    "nemo_rl_vllm": ROOT / "packages/nemo-rl-vllm/src",
    "nemo_rl_megatron": ROOT / "packages/nemo-rl-megatron/src",
}
# Public modules without `__all__` whose own definitions are public: the contracts plugins
# implement and the registry they register with.
DEFINING_MODULES = ("nemo_rl.api", "nemo_rl.protocols", "nemo_rl.registry")
_ALL = re.compile(r"^__all__\s*[:=]", re.MULTILINE)


@dataclass(frozen=True)
class PublicName:
    """One exported name: `module.name` is how users reach `obj`, defined at `target`."""

    module: str
    name: str
    obj: Any

    @property
    def target(self) -> str:
        """Where the object is defined ("pkg.mod.Class"); for data (constants, type aliases), the
        module whose source assigns it."""
        owner = getattr(self.obj, "__module__", None)
        qualname = getattr(self.obj, "__qualname__", None)
        defined = inspect.isclass(self.obj) or inspect.isroutine(self.obj)
        if defined and owner and qualname and "<" not in qualname:
            return f"{owner}.{qualname}"
        for mod in _defining_modules(self):
            return f"{mod.__name__}.{self.name}"
        return f"{self.module}.{self.name}"


def public_modules() -> list[str]:
    """Dotted names of the public modules that define `__all__`, sorted."""
    found = []
    for package, src in PACKAGES.items():
        base = src / package
        if not base.is_dir():
            continue
        for path in base.rglob("*.py"):
            parts = path.relative_to(src).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            if any(p.startswith("_") for p in parts) or "tests" in parts:
                continue
            if _ALL.search(path.read_text(encoding="utf-8")):
                found.append(".".join(parts))
    return sorted(found, key=lambda m: (m.split(".")[0], m.count("."), m))


def _import(module: str) -> Any:
    package = module.split(".")[0]
    if str(PACKAGES[package]) not in sys.path:
        try:
            importlib.import_module(package)
        except ImportError:
            sys.path.append(str(PACKAGES[package]))
    return importlib.import_module(module)


def _exports(mod: Any) -> list[str]:
    if hasattr(mod, "__all__"):
        return list(mod.__all__)
    return [
        name
        for name, obj in vars(mod).items()
        if not name.startswith("_")
        and (inspect.isclass(obj) or inspect.isroutine(obj))
        and getattr(obj, "__module__", None) == mod.__name__
    ]


def public_names() -> list[PublicName]:
    """Every (module, name, object) of every public module's `__all__`, in module order."""
    names = []
    modules = public_modules()
    modules += [m for m in DEFINING_MODULES if m not in modules]
    for module in modules:
        mod = _import(module)
        for name in _exports(mod):
            if name.startswith("__"):
                continue  # __version__
            names.append(PublicName(module, name, getattr(mod, name)))
    return names


def docstring(entry: PublicName) -> str | None:
    """The docstring of an exported object: its own `__doc__` for a class, function or module;
    for data (constants, type aliases), the string literal right after its assignment in the
    module that defines it (the attribute docstring mkdocstrings shows). None when it has none.

    Example:
        >>> import nemo_rl
        >>> docstring(PublicName("nemo_rl", "train", nemo_rl.train)).startswith("Train")
        True
    """
    obj = entry.obj
    if inspect.isclass(obj):
        return obj.__dict__.get("__doc__") or None
    if inspect.isroutine(obj) or inspect.ismodule(obj):
        return obj.__doc__ or None
    for mod in _defining_modules(entry):
        found = _attribute_docstring(mod.__file__, entry.name)
        if found:
            return found
    return None


def _defining_modules(entry: PublicName) -> list[Any]:
    """Loaded modules of the entry's package whose own source assigns the entry's data object."""
    found = []
    for mod in list(sys.modules.values()):
        name = getattr(mod, "__name__", "") or ""
        if name.split(".")[0] != entry.module.split(".")[0]:
            continue
        if vars(mod).get(entry.name) is not entry.obj or not getattr(mod, "__file__", None):
            continue
        if _assigns(mod.__file__, entry.name):
            found.append(mod)
    return sorted(found, key=lambda m: m.__name__)


def _assigns(path: str, name: str) -> bool:
    return any(True for _ in _assignments(path, name))


def _assignments(path: str, name: str) -> Any:
    if not path.endswith(".py"):
        return
    body = ast.parse(Path(path).read_text(encoding="utf-8")).body
    for i, stmt in enumerate(body):
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [getattr(stmt, "target", None)]
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            yield body[i + 1] if i + 1 < len(body) else None


def _attribute_docstring(path: str, name: str) -> str | None:
    for following in _assignments(path, name):
        if (
            isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            return following.value.value
    return None
