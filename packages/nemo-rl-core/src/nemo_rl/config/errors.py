"""`ConfigError`: one clear message per configuration problem, naming field, value and fix.

Pydantic's `ValidationError` is precise but written for programmers (`loc=('policy', 'optimizer',
'learning_rate'), type=extra_forbidden`). `ConfigError.from_validation_error` turns each of its
entries into one line a user can act on: the dotted field, the bad value, the expected type, and a
suggestion for misspelled keys.

Example:
    >>> from nemo_rl.config import ConfigError, PolicyConfig
    >>> try:
    ...     PolicyConfig.model_validate({"optimizer": {"learning_rate": 1e-6}})
    ... except Exception as err:
    ...     print(ConfigError.from_validation_error(err, PolicyConfig, prefix="policy"))
    invalid config: unknown key 'policy.optimizer.learning_rate'; did you mean 'lr'?
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from nemo_rl.config.aliases import alias_fix, alias_target
from nemo_rl.config.types import MAX_INT64


class ConfigError(ValueError):
    """A configuration is invalid; `problems` holds one human-readable line per problem.

    The message lists every problem, one per line, and names the file when the config came from
    one (`source`).

    Example:
        >>> str(ConfigError(["x: bad", "y: worse"], source="run.yaml"))
        'invalid config in run.yaml (2 problems):\\n  - x: bad\\n  - y: worse'
    """

    def __init__(self, problems: str | Sequence[str], *, source: str | None = None) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        self.source = source
        super().__init__(self._format())

    def _format(self) -> str:
        where = f" in {self.source}" if self.source else ""
        if len(self.problems) == 1:
            return f"invalid config{where}: {self.problems[0]}"
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        return f"invalid config{where} ({len(self.problems)} problems):\n{lines}"

    def with_source(self, source: str) -> ConfigError:
        """The same problems attributed to `source` (a file name), unless one is already set."""
        if self.source:
            return self
        return ConfigError(self.problems, source=source)

    @classmethod
    def from_validation_error(
        cls,
        err: ValidationError,
        model: type[BaseModel],
        *,
        source: str | None = None,
        prefix: str = "",
    ) -> ConfigError:
        """Translate a pydantic `ValidationError` raised while validating `model`.

        `prefix` is the dotted path of `model` inside a bigger config (for messages only).
        Errors that pydantic reports several times for one field (one per member of a union)
        become one problem.
        """
        grouped: dict[str, list[tuple[dict[str, Any], _Location]]] = {}
        for entry in err.errors():
            location = _locate(model, entry["loc"], entry["type"] == "extra_forbidden")
            grouped.setdefault(location.dotted(prefix), []).append((entry, location))
        problems = [_describe_problem(path, entries) for path, entries in grouped.items()]
        return cls(problems, source=source)


class _Location:
    """Where a pydantic error points inside a model: the path, the model owning the last key and
    the annotation (plus field constraints) of the value found there."""

    def __init__(self) -> None:
        self.parts: list[str | int] = []
        self.owner: type[BaseModel] | None = None
        self.field: FieldInfo | None = None
        self.annotation: Any = None

    def dotted(self, prefix: str = "") -> str:
        text = prefix
        for part in self.parts:
            if isinstance(part, int):
                text += f"[{part}]"
            else:
                text = f"{text}.{part}" if text else part
        return text


def _model_class(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model an annotation holds (also through `Optional[...]`), or None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if _is_union(annotation):
        members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(members) == 1:
            return _model_class(members[0])
    return None


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType)


def _strip(annotation: Any) -> Any:
    """Drop `Annotated[...]` and `Optional[...]` wrappers to find the container type."""
    while True:
        if typing.get_origin(annotation) is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif _is_union(annotation):
            members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation


def _locate(model: type[BaseModel], loc: Sequence[str | int], unknown_key: bool) -> _Location:
    """Walk `loc` through the model's fields; skip union tags pydantic inserts in locations."""
    location = _Location()
    current: Any = model
    for index, item in enumerate(loc):
        cls = _model_class(current)
        if cls is not None:
            location.owner = cls
            if isinstance(item, str) and item in cls.model_fields:
                location.parts.append(item)
                location.field = cls.model_fields[item]
                current = location.field.annotation
            elif unknown_key and index == len(loc) - 1:
                location.parts.append(item)
                location.field, current = None, None
            continue  # otherwise a union tag such as 'PolicyConfig'
        container = _strip(current)
        origin, args = typing.get_origin(container), typing.get_args(container)
        if isinstance(item, int) and origin in (list, tuple, set, frozenset):
            location.parts.append(item)
            location.field = None
            element = args[min(item, len(args) - 1)] if origin is tuple else args
            current = element[0] if isinstance(element, tuple) and element else element
        elif origin is dict:
            location.parts.append(item)
            location.field = None
            current = args[1] if len(args) == 2 else Any
        # anything else is a union tag: it names a type, not a key
    location.annotation = current
    return location


def describe_type(annotation: Any, metadata: Sequence[Any] = ()) -> str:
    """A short, human-readable name for an annotation, with its numeric bounds.

    Example:
        >>> from pydantic import PositiveFloat
        >>> describe_type(PositiveFloat | None)
        'float > 0 or null'
    """
    bounds = _bounds(metadata)
    if typing.get_origin(annotation) is typing.Annotated:
        inner, *extra = typing.get_args(annotation)
        return describe_type(inner, [*extra, *metadata])
    if _is_union(annotation):
        names = [describe_type(arg) for arg in typing.get_args(annotation)]
        return " or ".join(names)
    if annotation is type(None) or annotation is None:
        return "null"
    if annotation is Any:
        return "any value"
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(arg) for arg in args)
    if origin in (list, set, frozenset):
        return f"list of {describe_type(args[0])}" if args else "list"
    if origin is tuple:
        return f"list of {len(args)} values ({', '.join(describe_type(a) for a in args)})"
    if origin is dict or annotation is dict:
        return "mapping"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"mapping ({annotation.__name__})"
    name = getattr(annotation, "__name__", str(annotation))
    return f"{name} {bounds}".strip()


def _bounds(metadata: Sequence[Any]) -> str:
    symbols = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}
    found = []
    for item in metadata:
        for attr, symbol in symbols.items():
            value = getattr(item, attr, None)
            # The int64 ceiling of every count (MAX_INT64) goes without saying, except in
            # the error about a value above it (pydantic's own message states it there).
            if value is not None and not (attr == "le" and value == MAX_INT64):
                found.append(f"{symbol} {value}")
    return ", ".join(found)


def _value_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _literal_suggestion(annotation: Any, value: Any) -> str:
    """'; did you mean ...?' for a string close to one of a Literal's choices."""
    choices = [arg for arg in typing.get_args(_strip(annotation)) if isinstance(arg, str)]
    if not isinstance(value, str) or typing.get_origin(_strip(annotation)) is not typing.Literal:
        return ""
    close = difflib.get_close_matches(value, choices, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _describe_problem(path: str, entries: list[tuple[dict[str, Any], _Location]]) -> str:
    entry, location = entries[0]
    kind = entry["type"]
    if kind == "extra_forbidden":
        return unknown_key_message(path, location.owner)
    if kind == "missing":
        return f"missing required key '{path}': add it to the config"
    if kind in ("value_error", "assertion_error") and len(entries) == 1:
        message = entry["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
        # Model-level validators already name their fields; field-level ones get the path.
        leaf = path.rsplit(".", 1)[-1]
        return message if not path or leaf in message else f"{path}: {message}"
    field = location.field
    annotation = field.annotation if field is not None else location.annotation
    metadata = field.metadata if field is not None else ()
    expected = describe_type(annotation, metadata) if annotation is not None else ""
    messages = " / ".join(dict.fromkeys(e["msg"] for e, _ in entries))
    hint = _literal_suggestion(annotation, entry.get("input"))
    if isinstance(entry.get("input"), bool) and kind in ("float_type", "int_type"):
        hint = f"; true/false is not a number: write the number itself{_default_hint(field)}"
    elif _looks_numeric(entry.get("input")) and kind in ("float_type", "int_type"):
        hint = "; write the number without quotes"
    name = path or "config"
    # pydantic's literal message already lists the choices
    expected_text = f"; expected {expected}" if expected and kind != "literal_error" else ""
    return f"{name} = {_value_repr(entry.get('input'))}: {messages}{expected_text}{hint}"


def _looks_numeric(value: Any) -> bool:
    try:
        return isinstance(value, str) and float(value) is not None
    except ValueError:
        return False


def _default_hint(field: FieldInfo | None) -> str:
    default = getattr(field, "default", None)
    usable = isinstance(default, (int, float)) and not isinstance(default, bool)
    return f" (the default is {default!r})" if usable else ""


def unknown_key_message(path: str, owner: type[BaseModel] | None) -> str:
    """'unknown key ...; did you mean ...?' using the field names of the model owning the key.

    Example:
        >>> from nemo_rl.config import OptimizerConfig
        >>> unknown_key_message("policy.optimizer.learning_rate", OptimizerConfig)
        "unknown key 'policy.optimizer.learning_rate'; did you mean 'lr'?"
    """
    from nemo_rl.config.dtensor import moved_key_hint

    moved = moved_key_hint(path)
    if moved:
        return f"unknown key '{path}': {moved}"
    leaf = path.rsplit(".", 1)[-1]
    parent = path.rsplit(".", 1)[0] if "." in path else ""
    algorithm_field = owner.model_fields.get("algorithm") if owner is not None else None
    algorithm = algorithm_field.default if algorithm_field is not None else None
    hint = alias_fix(leaf, algorithm if isinstance(algorithm, str) else None)
    target = alias_target(leaf, algorithm if isinstance(algorithm, str) else None)
    # TRL and NeMo RL names rarely resemble ours by spelling, so their table comes first; in the
    # target's own section the short name is enough.
    if target and target.rpartition(".")[0] == parent:
        return f"unknown key '{path}'; did you mean {target.rpartition('.')[2]!r}?"
    if hint:
        return f"unknown key '{path}': {hint}"
    if owner is None:
        return f"unknown key '{path}': remove it"
    names = list(owner.model_fields)
    close = difflib.get_close_matches(leaf, names, n=1, cutoff=0.6)
    if not close:
        # A prefix match catches abbreviations and expansions difflib scores low (lr/learning_rate).
        close = [n for n in names if n.startswith(leaf) or leaf.startswith(n)][:1]
    if not close:
        close = _initials_match(leaf, names)
    if close:
        return f"unknown key '{path}'; did you mean {close[0]!r}?"
    where = f" of '{parent}'" if parent else ""
    return f"unknown key '{path}': remove it; the valid keys{where} are {', '.join(names)}"


def _initials_match(leaf: str, names: list[str]) -> list[str]:
    """Names that are the initials of a snake_case `leaf` (`learning_rate` -> `lr`)."""
    initials = "".join(word[0] for word in leaf.split("_") if word)
    return [name for name in names if len(initials) > 1 and name == initials][:1]
