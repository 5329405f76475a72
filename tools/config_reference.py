"""Write docs/reference/configuration.md from the pydantic config models.

Every algorithm config that our packages register (entry-point group `nemo_rl.algorithms`) is a
root; every config model reachable from a root through its fields gets one section listing each
field's key, type, default and description. A new section (a `lora:` or `megatron:` model added to
`PolicyConfig`, say) appears without touching this script. `tests/docs/test_config_reference.py`
regenerates the page and fails when the committed one differs.

Run from the repository root: `uv run python tools/config_reference.py`.

Example:
    >>> from nemo_rl.config import PolicyConfig
    >>> rows = field_rows(PolicyConfig)
    >>> rows[0][:2]
    ('model_name', 'str')
"""

from __future__ import annotations

import enum
import types
import typing
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import annotated_types
from nemo_rl.config.types import MAX_INT64
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "docs/reference/configuration.md"
COMMAND = "uv run python tools/config_reference.py"
_BOUNDS = ((annotated_types.Gt, ">"), (annotated_types.Ge, ">="), (annotated_types.Lt, "<"),
           (annotated_types.Le, "<="))


def algorithm_configs() -> dict[str, type[BaseModel]]:
    """The algorithm config classes our own packages register, by algorithm name.

    Only distributions named nemo-rl-*: a plugin a test installs on the side must not change the
    committed page.
    """
    found = {}
    for ep in metadata.entry_points(group="nemo_rl.algorithms"):
        if ep.dist is not None and ep.dist.name.startswith("nemo-rl"):
            found[ep.name] = ep.load()
    return dict(sorted(found.items()))


def _models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for arg in typing.get_args(annotation):
        yield from _models_in(arg)


def sections(roots: dict[str, type[BaseModel]]) -> dict[type[BaseModel], str]:
    """Every config model reachable from `roots`, mapped to the key path it is first found at."""
    found: dict[type[BaseModel], str] = {}
    queue = []
    for model in roots.values():
        base = _shared_base(model)
        queue += [(base, "")] if base else []
        queue.append((model, ""))
    while queue:
        model, path = queue.pop(0)
        if model in found:
            continue
        found[model] = path
        for name in own_fields(model):
            for sub in _models_in(model.model_fields[name].annotation):
                queue.append((sub, f"{path}.{name}".lstrip(".")))
    return found


def type_text(annotation: Any) -> str:
    """A short readable form of a field's type: `int > 0`, `str or None`, `'hf' or 'vllm'`.

    Example:
        >>> from nemo_rl.config.types import PositiveInt
        >>> type_text(PositiveInt | None)
        'int > 0 or None'
    """
    if annotation is type(None):
        return "None"
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        base, bounds = type_text(args[0]), []
        for meta in args[1:]:
            for kind, sign in _BOUNDS:
                value = getattr(meta, kind.__name__.lower(), None)
                # Every count's int64 ceiling (2**63 - 1) goes without saying.
                if isinstance(meta, kind) and not (kind is annotated_types.Le and value == MAX_INT64):
                    bounds.append(f"{sign} {value}")
        return " ".join([base, ", ".join(bounds)]).strip()
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_text(a) for a in args)
    if origin is typing.Literal:
        return " or ".join(repr(a) for a in args)
    if origin in (list, tuple, dict, set):
        inner = ", ".join("..." if a is Ellipsis else type_text(a) for a in args)
        return f"{origin.__name__}[{inner}]"
    if origin is typing.ClassVar:
        return type_text(args[0])
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def default_text(info: FieldInfo) -> str:
    """The default as YAML-ish text; a nested section's default is its own defaults."""
    if info.default_factory is not None:
        value = info.default_factory()
        if isinstance(value, BaseModel):
            return "(section defaults)"
    elif info.default is PydanticUndefined:
        return "required"
    else:
        value = info.default
    if isinstance(value, enum.Enum):
        value = value.value
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, tuple):
        value = list(value)
    return repr(value)


def _annotation(info: FieldInfo) -> Any:
    # pydantic moves an Annotated type's constraints (PositiveInt's Gt(0)) into info.metadata.
    if info.metadata:
        return typing.Annotated[(info.annotation, *info.metadata)]
    return info.annotation


def _shared_base(model: type[BaseModel]) -> type[BaseModel] | None:
    """The config base whose fields `model` inherits (AlgorithmConfig for GRPOConfig), if any."""
    for base in model.__mro__[1:]:
        if issubclass(base, BaseModel) and base.model_fields:
            return base
    return None


def own_fields(model: type[BaseModel]) -> list[str]:
    """The fields `model` declares or redeclares, leaving out those of its shared base."""
    base = _shared_base(model)
    inherited = base.model_fields if base else {}
    return [
        name
        for name, info in model.model_fields.items()
        if name not in inherited or info is not inherited[name] and name in model.__annotations__
    ]


def field_rows(model: type[BaseModel]) -> list[tuple[str, str, str, str]]:
    """(key, type, default, description) of each field of `model` (its shared base's left out),
    in declaration order."""
    return [
        (name, type_text(_annotation(info)), default_text(info), (info.description or "").strip())
        for name, info in model.model_fields.items()
        if name in own_fields(model)
    ]


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _anchor(model: type[BaseModel]) -> str:
    return model.__name__.lower()


def _summary(model: type[BaseModel]) -> str:
    doc = (model.__doc__ or "").strip()
    return " ".join(doc.split("\n\n")[0].split())


def render(roots: dict[str, type[BaseModel]] | None = None) -> str:
    """The whole markdown page."""
    roots = algorithm_configs() if roots is None else roots
    found = sections(roots)
    out = [
        "# Configuration reference",
        "",
        f"<!-- Generated by `{COMMAND}` from the pydantic models; do not edit by hand. -->",
        "",
        "Every field of every config model, with its type, default and meaning. A run's config "
        "is one algorithm config (chosen by its `algorithm:` key); the other models below are its "
        "sections, reached by the dotted key in each heading (`policy.optimizer.lr`). Any field "
        "can be set in YAML, as a dotted override on the command line "
        "(`nemo-rl train run.yaml policy.optimizer.lr=1e-6`) or as a keyword of "
        "`Trainer.from_pretrained` (`**{\"policy.optimizer.lr\": 1e-6}`).",
        "",
        "Algorithms: " + ", ".join(f"[`{n}`](#{_anchor(m)})" for n, m in roots.items()) + ".",
        "",
    ]
    for model, path in found.items():
        if path:
            where = f"`{path}`: "
        elif model in roots.values():
            where = f"`algorithm: {model.model_fields['algorithm'].default}`: "
        else:
            where = "Every algorithm config: "
        out += [f"## {model.__name__}", "", f"{where}{_summary(model)}", ""]
        base = _shared_base(model)
        if base is not None and base in found:
            out += [f"Also every field of [{base.__name__}](#{_anchor(base)}).", ""]
        out += ["| key | type | default | description |", "|---|---|---|---|"]
        for name, typ, default, description in field_rows(model):
            linked = [m for m in _models_in(model.model_fields[name].annotation) if m in found]
            if linked:
                typ = " or ".join(f"[{m.__name__}](#{_anchor(m)})" for m in linked)
            out.append(
                f"| `{name}` | {_cell(typ)} | {_cell(default)} | {_cell(description)} |"
            )
        out.append("")
    return "\n".join(out)


def missing_descriptions(roots: dict[str, type[BaseModel]] | None = None) -> list[str]:
    """`Model.field` for each field without a description."""
    roots = algorithm_configs() if roots is None else roots
    return [
        f"{model.__name__}.{name} ({model.__module__})"
        for model in sections(roots)
        for name in own_fields(model)
        if not (model.model_fields[name].description or "").strip()
    ]


if __name__ == "__main__":
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(render(), encoding="utf-8")
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
