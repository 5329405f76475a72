"""Turn whatever the user points at into a list of row dicts.

A dataset source is one of:

- a Python list of dicts (used as is);
- a `datasets.Dataset`, or a `datasets.DatasetDict` (the `split` is picked);
- a local `.jsonl` / `.json` file (read with the standard library) or `.parquet` / `.csv` file
  (read through `datasets`, installed with `pip install nemo-rl-core[datasets]`);
- a name registered with `@register_dataset("name")` in this process, or by an installed package
  in the `nemo_rl.datasets` entry-point group (nemo-rl-core registers the datasets of NeMo RL's
  examples: `nemo_rl.data.adapters`); `NAME:PATH` reads a local copy through a registered
  dataset that takes a `path` (the adapters do);
- anything else is tried as a Hugging Face hub name with `datasets.load_dataset(name, split=...)`;
  a path-like name that does not exist says so, and an unreachable hub is reported at once.

A local file, list or `Dataset` holds a single split, so `split` only matters for a
`DatasetDict`, a hub dataset, a registered dataset that takes a split, or a JSON file shaped as
`{"train": [...], "test": [...]}`.

Example:
    >>> from nemo_rl.data import load_rows, register_dataset
    >>> @register_dataset("two_sums")
    ... def two_sums(split="train"):
    ...     return [{"prompt": "1+1=", "answer": "2"}, {"prompt": "2+2=", "answer": "4"}]
    >>> [row["answer"] for row in load_rows("two_sums")]
    ['2', '4']
    >>> load_rows([{"prompt": "hi"}])
    [{'prompt': 'hi'}]
    >>> from nemo_rl import registry
    >>> registry.unregister("datasets", "two_sums")  # a registration lasts for the process
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from nemo_rl import hub, registry

T = TypeVar("T")
LOCAL_SUFFIXES = (".jsonl", ".json", ".parquet", ".csv")
_DATASETS_HINT = "pip install nemo-rl-core[datasets]"


class DatasetSourceError(ValueError):
    """A dataset source that cannot be loaded; the message says which one and what to do."""


@dataclass
class LoadedRows:
    """Rows plus where they came from: `name` for error messages, and whether `split` was applied.

    `split_applied` is False for single-split sources (lists, `Dataset`s, JSONL/CSV/Parquet
    files), where asking for another split would silently return the same rows.
    """

    rows: list[dict[str, Any]]
    name: str
    split_applied: bool


def register_dataset(name: str) -> Callable[[T], T]:
    """Register a dataset under `name` so `load_rows(name)` and `data.dataset: name` find it.

    The registered object is a callable taking no argument or one (the split) and returning rows:
    a list of dicts, a `datasets.Dataset` or `DatasetDict`, or a local file path.

    Example:
        >>> @register_dataset("tiny_qa")
        ... def tiny_qa():
        ...     return [{"prompt": "Capital of France?", "answer": "Paris"}]
        >>> load_rows("tiny_qa")[0]["answer"]
        'Paris'
        >>> registry.unregister("datasets", "tiny_qa")
    """
    return registry.register("datasets", name)


def load_rows(source: Any, split: str = "train") -> list[dict[str, Any]]:
    """Load `source` (see the module docstring for what it may be) as a non-empty list of dicts.

    Example:
        >>> load_rows([{"q": "a"}, {"q": "b"}], split="train")
        [{'q': 'a'}, {'q': 'b'}]
    """
    return load_source(source, split).rows


def load_source(source: Any, split: str = "train") -> LoadedRows:
    """Like `load_rows`, but also returns the source's display name and whether `split` applied."""
    if isinstance(source, os.PathLike):
        source = os.fspath(source)
    if isinstance(source, str):
        loaded = _load_named(source, split)
    else:
        loaded = _load_object(source, split, _describe(source))
    if not loaded.rows:
        where = f"split {split!r} of " if loaded.split_applied else ""
        raise DatasetSourceError(
            f"{where}dataset {loaded.name} has no rows: check that the file or split is not empty"
        )
    return loaded


def _describe(source: Any) -> str:
    if isinstance(source, list):
        return "(the given list)"
    return f"(the given {type(source).__name__})"


def _is_hf_object(obj: Any, class_name: str) -> bool:
    """Recognise `datasets` classes without importing `datasets` (it is an optional extra)."""
    return any(
        cls.__name__ == class_name and cls.__module__.startswith("datasets")
        for cls in type(obj).__mro__
    )


def _check_rows(rows: list[Any], name: str) -> list[dict[str, Any]]:
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise DatasetSourceError(
                f"dataset {name}: row {index} is a {type(row).__name__} ({row!r:.80}), not a dict; "
                f"every row must map column names to values, e.g. {{'prompt': ..., 'answer': ...}}"
            )
    return [dict(row) for row in rows]


def _load_object(obj: Any, split: str, name: str) -> LoadedRows:
    if isinstance(obj, (list, tuple)):
        return LoadedRows(_check_rows(list(obj), name), name, split_applied=False)
    if _is_hf_object(obj, "DatasetDict"):
        if split not in obj:
            raise DatasetSourceError(
                f"dataset {name} has no split {split!r}; its splits are {', '.join(obj)}: "
                f"set data.split (or data.val_split) to one of them"
            )
        return LoadedRows(obj[split].to_list(), name, split_applied=True)
    if _is_hf_object(obj, "Dataset"):
        return LoadedRows(obj.to_list(), name, split_applied=False)
    raise DatasetSourceError(
        f"cannot load a dataset from a {type(obj).__name__}; pass a list of dicts, a "
        f"datasets.Dataset/DatasetDict, a local .jsonl/.json/.parquet/.csv path, a registered "
        f"dataset name or an HF hub name"
    )


def _looks_like_path(text: str) -> bool:
    return (
        text.lower().endswith(LOCAL_SUFFIXES)
        or text.startswith(("./", "../", "/", "~", ".\\", "..\\"))
        or "\\" in text
    )


def locate_dataset(text: str) -> str:
    """Where the dataset name `text` loads from, without loading it: "registered", "file",
    "directory" or "hub"; raises the one-line `DatasetSourceError` a load would (a missing path,
    an unreachable hub).

    Example:
        >>> locate_dataset(".")
        'directory'
        >>> try:
        ...     locate_dataset("./no/such/dir")
        ... except DatasetSourceError as err:
        ...     print(str(err).split(" (")[0])
        dataset './no/such/dir': no such file or directory
    """
    if text in registry.available("datasets"):
        check = getattr(registry.resolve("datasets", text), "check_reachable", None)
        if callable(check):  # an adapter of a hub dataset: unreachable now, not at load time
            check()
        return "registered"
    local_copy = registered_with_path(text)
    if local_copy is not None:
        name, path_text = local_copy
        if not Path(path_text).expanduser().exists():
            raise DatasetSourceError(
                f"dataset {text!r}: the local copy {path_text!r} for the registered dataset "
                f"{name!r} does not exist (cwd: {Path.cwd()}): check the path after '{name}:'"
            )
        return "registered"
    path = Path(text).expanduser()
    if path.is_file():
        return "file"
    if path.is_dir():
        return "directory"
    if text.lower().endswith(LOCAL_SUFFIXES):
        raise DatasetSourceError(
            f"dataset file {text!r} not found (cwd: {Path.cwd()}): check the path"
        )
    if _looks_like_path(text) or hub.looks_like_path(text):
        raise DatasetSourceError(
            f"dataset {text!r}: no such file or directory (cwd: {Path.cwd()}): check the path"
        )
    # A hub name: one quick probe instead of datasets' minute of retries when there is no network.
    if not hub.hub_offline() and not hub.hub_reachable():
        raise DatasetSourceError(_unreachable(text))
    return "hub"


def registered_with_path(text: str) -> tuple[str, str] | None:
    """(name, path) when `text` is `NAME:PATH` for a registered dataset NAME, else None.

    Example:
        >>> @register_dataset("local_toy")
        ... def local_toy(split="train", path=None):
        ...     return [{"prompt": path}]
        >>> registered_with_path("local_toy:/data/toy"), registered_with_path("C:/data/toy.jsonl")
        (('local_toy', '/data/toy'), None)
        >>> registry.unregister("datasets", "local_toy")
    """
    name, sep, path = text.partition(":")
    if not sep or not path or name not in registry.available("datasets"):
        return None
    return name, path


def _load_named(text: str, split: str) -> LoadedRows:
    where = locate_dataset(text)
    local_copy = registered_with_path(text)
    if local_copy is not None:
        return _load_registered(local_copy[0], split, path=local_copy[1])
    if where == "registered":
        return _load_registered(text, split)
    if where == "file":
        return _load_file(Path(text).expanduser(), split)
    return _load_with_datasets(text, split, is_local_dir=where == "directory")


def _unreachable(name: str) -> str:
    registered = ", ".join(registry.available("datasets")) or "none"
    return (
        f"dataset {name!r} does not exist locally (cwd: {Path.cwd()}), is not a registered "
        f"dataset (registered: {registered}), and the Hugging Face hub ({hub.hub_endpoint()}) "
        f"cannot be reached from this machine: copy it here (`hf download {name} --repo-type "
        f"dataset --local-dir DIR` where there is network) and set data.dataset=DIR (or, if it "
        f"is in the HF cache already, set HF_HUB_OFFLINE=1)"
    )


def _load_registered(name: str, split: str, path: str | None = None) -> LoadedRows:
    factory = registry.resolve("datasets", name)
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # builtins and some C callables have no signature
        parameters = {}
    takes_split = bool(parameters)
    if path is not None and "path" not in parameters:
        raise DatasetSourceError(
            f"registered dataset {name!r} does not read a local copy (its loader takes no "
            f"'path'): set data.dataset={name}, or point data.dataset at the file itself"
        )
    if path is not None:
        result = factory(split, path=path)
    else:
        result = factory(split) if takes_split else factory()
    display = f"{name!r} (registered)" if path is None else f"{name!r} (registered, from {path})"
    if isinstance(result, (str, os.PathLike)):
        path = Path(result).expanduser()
        if not path.is_file():
            raise DatasetSourceError(
                f"registered dataset {name!r} returned the path {str(result)!r}, which is not a "
                f"file (cwd: {Path.cwd()}): return rows or an existing .jsonl/.json/.parquet/.csv"
            )
        loaded = _load_file(path, split)
        loaded.name = display
    else:
        loaded = _load_object(result, split, display)
    loaded.split_applied = loaded.split_applied or takes_split
    return loaded


def _load_file(path: Path, split: str) -> LoadedRows:
    suffix = path.suffix.lower()
    name = repr(path.name)
    if suffix == ".jsonl":
        return LoadedRows(_read_jsonl(path), name, split_applied=False)
    if suffix == ".json":
        return _read_json(path, split)
    if suffix in (".parquet", ".csv"):
        load_dataset = _import_load_dataset(f"reading {path.name}")
        dataset = load_dataset(suffix[1:], data_files=str(path), split="train")
        return LoadedRows(dataset.to_list(), name, split_applied=False)
    raise DatasetSourceError(
        f"dataset file {path.name!r} has an unsupported suffix {suffix!r}; use one of "
        f"{', '.join(LOCAL_SUFFIXES)}"
    )


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise DatasetSourceError(
                    f"{path.name} line {line_number} is not valid JSON ({err.msg} at column "
                    f"{err.colno}): every line of a .jsonl file must be one JSON object"
                ) from err
            if not isinstance(row, dict):
                raise DatasetSourceError(
                    f"{path.name} line {line_number} is a JSON {type(row).__name__}, not an "
                    f"object: every line of a .jsonl file must be one object like "
                    f'{{"prompt": ..., "answer": ...}}'
                )
            rows.append(row)
    return rows


def _read_json(path: Path, split: str) -> LoadedRows:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DatasetSourceError(
            f"{path.name} is not valid JSON ({err.msg} at line {err.lineno}, column {err.colno})"
        ) from err
    name = repr(path.name)
    if isinstance(data, list):
        return LoadedRows(_check_rows(data, name), name, split_applied=False)
    if isinstance(data, dict) and data and all(isinstance(v, list) for v in data.values()):
        if split not in data:
            raise DatasetSourceError(
                f"{path.name} has splits {', '.join(data)} but not {split!r}: set data.split "
                f"(or data.val_split) to one of them"
            )
        return LoadedRows(_check_rows(data[split], name), name, split_applied=True)
    raise DatasetSourceError(
        f"{path.name} must hold a JSON list of row objects, or an object mapping split names to "
        f'such lists ({{"train": [...], "test": [...]}}); it holds a {type(data).__name__}'
    )


def _import_load_dataset(purpose: str) -> Callable[..., Any]:
    try:
        from datasets import load_dataset
    except ImportError as err:
        raise ImportError(
            f"{purpose} needs the `datasets` package, which is not installed: {_DATASETS_HINT}"
        ) from err
    return load_dataset


def _load_with_datasets(name: str, split: str, is_local_dir: bool) -> LoadedRows:
    load_dataset = _import_load_dataset(f"loading dataset {name!r}")
    try:
        result = load_dataset(name, split=split)
    except Exception as err:  # hub and builder errors have many types; all mean "could not load"
        first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
        registered = ", ".join(registry.available("datasets")) or "none"
        where = (
            f"the local directory {name!r} could not be loaded"
            if is_local_dir
            else f"{name!r} does not exist locally (cwd: {Path.cwd()}), is not a registered "
            f"dataset (registered: {registered}), and loading it from the HF hub failed"
        )
        raise DatasetSourceError(
            f"dataset {where}: {type(err).__name__}: {first_line}"
        ) from err
    loaded = _load_object(result, split, repr(name))
    loaded.split_applied = True
    return loaded
