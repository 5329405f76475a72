"""Package names that load their defining module on first use (PEP 562 module `__getattr__`).

Used by nemo_rl's packages so that commands which only read configs never import torch: the
package lists its public names and where each lives, and `import nemo_rl; nemo_rl.GRPOTrainer`
imports the trainer only when it is touched.

Example:
    >>> import types, sys
    >>> pkg = sys.modules["demo_pkg"] = types.ModuleType("demo_pkg")
    >>> pkg.__getattr__, pkg.__dir__ = lazy_exports("demo_pkg", {"dumps": "json"})
    >>> pkg.dumps([1])
    '[1]'
    >>> "dumps" in vars(pkg)  # cached after the first use
    True
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, names: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """(`__getattr__`, `__dir__`) for `package`, whose `names` map each exported name to the
    module defining it (a module starting with "." is relative to the package).

    Example:
        >>> getattr_, dir_ = lazy_exports("json", {"loads": "json"})
        >>> getattr_("loads")("2")
        2
    """

    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        target = names[name]
        module = importlib.import_module(package + target if target.startswith(".") else target)
        value = getattr(module, name)
        setattr(sys.modules[package], name, value)  # later lookups skip __getattr__
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *names})

    return __getattr__, __dir__
