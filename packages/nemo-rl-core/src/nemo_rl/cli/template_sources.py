"""Config templates from every installed package that registers a template source.

A template source is registered in the `nemo_rl.templates` entry-point group (nemo-rl-recipes
registers `recipes = "nemo_rl_recipes.templates"`). It is any object, a module included, with
`list_templates(algorithm=None)` returning infos that have `name`, `algorithm`, `description`
and `path` (the YAML file). `nemo-rl templates` and `nemo-rl <algorithm> --template NAME` read
the templates of all sources through `TemplateSources`.

Example:
    >>> import types
    >>> from pathlib import Path
    >>> info = types.SimpleNamespace(name="t", algorithm="sft", description="d", path=Path("t.yaml"))
    >>> source = types.SimpleNamespace(list_templates=lambda algorithm=None: [info])
    >>> TemplateSources({"mine": source}).template_path("t.yaml")
    PosixPath('t.yaml')
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from nemo_rl import registry

RECIPES_HINT = "pip install nemo-rl-recipes"
SUFFIX = ".yaml"


class TemplateNotFoundError(LookupError):
    """No installed source has a template of that name; the message suggests close names."""


class TemplateSources:
    """The templates of the given sources (name -> source), or of every installed one.

    Example: see the module docstring.
    """

    def __init__(self, sources: dict[str, Any]) -> None:
        self.sources = sources

    @classmethod
    def installed(cls) -> TemplateSources:
        """Every source of the `templates` plugin group; none installed is an error naming
        nemo-rl-recipes, a source failing to import names its package."""
        names = registry.available("templates")
        if not names:
            raise RuntimeError(
                "config templates ship with nemo-rl-recipes, which is not installed: "
                f"{RECIPES_HINT} (or install a package registering `nemo_rl.templates`)"
            )
        try:
            return cls({name: registry.resolve("templates", name) for name in names})
        except registry.PluginNotFoundError as err:  # installed but its import fails
            raise RuntimeError(str(err)) from None

    def list_templates(self, algorithm: str | None = None) -> list[Any]:
        """Every template (only `algorithm`'s if given), sorted by algorithm then name."""
        infos = [info for source in self.sources.values() for info in source.list_templates()]
        if algorithm is not None:
            infos = [info for info in infos if info.algorithm == algorithm]
        return sorted(infos, key=lambda info: (info.algorithm, info.name))

    def template_path(self, name: str) -> Path:
        """The YAML file of template `name` ("sft-chat" or "sft-chat.yaml"), or
        `TemplateNotFoundError` with the closest names."""
        name = name[: -len(SUFFIX)] if name.endswith(SUFFIX) else name
        infos = {info.name: info for info in self.list_templates()}
        if name in infos:
            return Path(infos[name].path)
        close = [repr(c) for c in difflib.get_close_matches(name, list(infos), n=3, cutoff=0.5)]
        options = ", ".join(close[:-1]) + " or " + close[-1] if len(close) > 1 else "".join(close)
        hint = f"did you mean {options}? " if close else ""
        raise TemplateNotFoundError(
            f"no config template named {name!r}: {hint}`nemo-rl templates` lists all "
            f"{len(infos)} templates"
        )

    def template_text(self, name: str) -> str:
        """The YAML text of template `name`, exactly as shipped."""
        return self.template_path(name).read_text(encoding="utf-8")
