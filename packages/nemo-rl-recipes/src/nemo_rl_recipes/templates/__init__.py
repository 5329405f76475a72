"""Config templates: short, validated YAML starting points for GRPO, SFT and DPO runs.

Each template is one `<name>.yaml` file shipped inside this package. Its first line is a `# `
comment describing it (the listing shows it), its `algorithm` key names the algorithm, and it
states only what differs from the config defaults, so it stays under 30 lines. A template is a
self-contained file (no `defaults:` parents), so `nemo-rl templates show NAME > run.yaml` gives a
config that runs on its own.

Example:
    >>> from nemo_rl_recipes.templates import list_templates, load_template
    >>> "grpo-math-1gpu" in [t.name for t in list_templates()]
    True
    >>> load_template("grpo-math-1gpu", ["max_num_steps=10"]).max_num_steps
    10
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from nemo_rl.config import AlgorithmConfig

TEMPLATE_SUFFIX = ".yaml"
DESCRIPTION_PREFIX = "# "


class TemplateError(ValueError):
    """A template that is unknown or malformed; the message names it and says what to do."""


class TemplateNotFoundError(TemplateError, LookupError):
    """No template has the requested name; the message suggests the closest names."""


@dataclass(frozen=True)
class TemplateInfo:
    """One template: its `name` (the file name without `.yaml`), the `algorithm` it configures,
    the one-line `description` from its header comment, and the `path` of its YAML file.

    Example:
        >>> info = TemplateInfo.from_file(template_path("sft-chat"))
        >>> info.name, info.algorithm
        ('sft-chat', 'sft')
    """

    name: str
    algorithm: str
    description: str
    path: Path

    @classmethod
    def from_file(cls, path: Path) -> TemplateInfo:
        """Read the header comment and the `algorithm` key of the template at `path`."""
        text = path.read_text(encoding="utf-8")
        first_line = text.splitlines()[0] if text else ""
        description = first_line[len(DESCRIPTION_PREFIX) :].strip()
        if not first_line.startswith(DESCRIPTION_PREFIX) or not description:
            raise TemplateError(
                f"template '{path}' does not start with a description line: make its first line "
                f"'# <what this template trains, on what, on which hardware>'"
            )
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise TemplateError(
                f"template '{path}' is not valid YAML ({err}); fix its syntax"
            ) from None
        algorithm = data.get("algorithm") if isinstance(data, Mapping) else None
        if not isinstance(algorithm, str) or not algorithm:
            raise TemplateError(
                f"template '{path}' has no 'algorithm' key: add 'algorithm: grpo' (or sft, dpo, ...)"
            )
        return cls(
            name=path.name[: -len(TEMPLATE_SUFFIX)],
            algorithm=algorithm,
            description=description,
            path=path,
        )


def templates_dir() -> Path:
    """The directory holding the template files (package data of `nemo_rl_recipes.templates`).

    Example:
        >>> (templates_dir() / "sft-chat.yaml").is_file()
        True
    """
    # Templates are read as real files (the CLI prints them, users copy them); wheels install
    # packages as directories, so the resource root is a filesystem path.
    return Path(str(resources.files(__name__)))


def list_templates(algorithm: str | None = None) -> list[TemplateInfo]:
    """Every template, sorted by algorithm then name; `algorithm` keeps only that algorithm's.

    Example:
        >>> sorted({t.algorithm for t in list_templates()})
        ['dpo', 'grpo', 'sft']
        >>> all(t.algorithm == "dpo" for t in list_templates("dpo"))
        True
    """
    infos = [
        TemplateInfo.from_file(path)
        for path in templates_dir().iterdir()
        if path.name.endswith(TEMPLATE_SUFFIX) and path.is_file()
    ]
    if algorithm is not None:
        infos = [info for info in infos if info.algorithm == algorithm]
    return sorted(infos, key=lambda info: (info.algorithm, info.name))


def template_names() -> list[str]:
    """The names of all templates, sorted.

    Example:
        >>> "dpo-ultrafeedback" in template_names()
        True
    """
    return sorted(
        path.name[: -len(TEMPLATE_SUFFIX)]
        for path in templates_dir().iterdir()
        if path.name.endswith(TEMPLATE_SUFFIX)
    )


def template_path(name: str) -> Path:
    """The YAML file of template `name`; an unknown name raises `TemplateNotFoundError` with the
    closest names.

    Example:
        >>> template_path("sft-chat").name
        'sft-chat.yaml'
    """
    if name.endswith(TEMPLATE_SUFFIX):  # accept "sft-chat.yaml" as well as "sft-chat"
        name = name[: -len(TEMPLATE_SUFFIX)]
    path = templates_dir() / f"{name}{TEMPLATE_SUFFIX}"
    if path.is_file():
        return path
    names = template_names()
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    quoted = [repr(c) for c in close]
    options = ", ".join(quoted[:-1]) + " or " + quoted[-1] if len(quoted) > 1 else "".join(quoted)
    hint = f"did you mean {options}? " if close else ""
    raise TemplateNotFoundError(
        f"no config template named {name!r}: {hint}`nemo-rl templates` lists all "
        f"{len(names)} templates"
    )


def template_text(name: str) -> str:
    """The YAML text of template `name`, exactly as shipped (header comment included).

    Example:
        >>> template_text("sft-chat").splitlines()[1]
        'algorithm: sft'
    """
    return template_path(name).read_text(encoding="utf-8")


def load_template(
    name: str, overrides: Sequence[str] | Mapping[str, Any] | None = None
) -> AlgorithmConfig:
    """Template `name` loaded and validated by `nemo_rl.config.load_config`, with dotted
    `overrides` ("policy.optimizer.lr=1e-6" strings, or a {"a.b": value} dict) applied.

    Example:
        >>> cfg = load_template("dpo-ultrafeedback", {"beta": 0.05})
        >>> cfg.algorithm, cfg.beta
        ('dpo', 0.05)
    """
    from nemo_rl.config import load_config

    return load_config(template_path(name), overrides)


__all__ = [
    "TemplateError",
    "TemplateInfo",
    "TemplateNotFoundError",
    "list_templates",
    "load_template",
    "template_names",
    "template_path",
    "template_text",
    "templates_dir",
]
