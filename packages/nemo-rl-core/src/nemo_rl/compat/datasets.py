"""Datasets of a migrated config: NeMo RL names that nemo-rl adapts, local copies, and a warning
with the exact override for every name nemo-rl cannot resolve.

NeMo RL resolved `data.<split>.dataset_name` itself (`squad`, `HelpSteer3`, ...). nemo-rl
registers adapters for the ones NeMo RL's example configs use (`nemo_rl.data.adapters`); an
adapted name given with a `data_path` becomes `NAME:PATH` (that local copy, in the dataset's own
format; a validation set of the same name reads the same copy); NeMo RL's generic loaders
(`ResponseDataset`, ...) become the `data_path` itself. Any other bare name would be looked up
on the HF hub, where it does not exist: the migration warns with the override to use.

Example:
    >>> tree = {"data": {"dataset": "squad"}}
    >>> flat = {"data.train.dataset_name": "squad", "data.train.data_path": "/data/squad"}
    >>> mapping, warnings = {"data.train.dataset_name": "data.dataset",
    ...                      "data.train.data_path": "data.dataset"}, []
    >>> resolve_datasets(tree, flat, mapping, {}, warnings)
    >>> tree["data"]["dataset"], warnings
    ('squad:/data/squad', [])
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# NeMo RL's loaders of a user's own file at data_path (their columns are set by input_key etc.).
GENERIC_LOADERS = frozenset(
    {"ResponseDataset", "PreferenceDataset", "BinaryPreferenceDataset"}
)
_SECTIONS = (("train", "data.dataset"), ("validation", "data.val_dataset"))


def resolve_datasets(
    tree: dict[str, Any],
    flat: dict[str, Any],
    mapping: dict[str, str | None],
    dropped: dict[str, str],
    warnings: list[str],
) -> None:
    """Settle `data.dataset` / `data.val_dataset` of the migrated `tree` (see the module doc)."""
    from nemo_rl import registry

    adapters = registry.available("datasets")
    data = tree.setdefault("data", {})
    for section, new_key in _SECTIONS:
        field = new_key.split(".")[1]
        name_key, path_key = f"data.{section}.dataset_name", f"data.{section}.data_path"
        name, path = flat.get(name_key), flat.get(path_key)
        train_name, train_path = flat.get("data.train.dataset_name"), flat.get("data.train.data_path")
        if section == "validation" and path is None and name == train_name and name in adapters:
            path = train_path  # one local copy holds every split, as the hub repository did
        if isinstance(name, str) and isinstance(path, str) and path:
            if name in adapters:
                data[field] = f"{name}:{path}"
                for key in (name_key, path_key):
                    if key in flat:
                        mapping[key] = new_key
                        dropped.pop(key, None)
            elif name in GENERIC_LOADERS:
                data[field] = path
                mapping[name_key], mapping[path_key] = None, new_key
                dropped.pop(path_key, None)
                dropped[name_key] = f"NeMo RL's loader of the file at {path_key}; nemo-rl reads that file itself"
        value = data.get(field)
        split_key = "split" if section == "train" else "val_split"
        if name in adapters and f"data.{section}.split" not in flat and split_key not in data:
            legacy_split = getattr(registry.resolve("datasets", name), "legacy_split", None)
            if legacy_split:  # the rows NeMo RL trained on, not the hub's default split
                data[split_key] = legacy_split
        if isinstance(value, str) and not _resolvable(value, adapters):
            warnings.append(_unresolvable(value, new_key, _legacy_key(mapping, new_key), adapters))


def _resolvable(value: str, adapters: dict[str, Any]) -> bool:
    """A registered name, NAME:PATH, an existing or path-like path, or a hub id ('org/name')."""
    from nemo_rl.data.sources import _looks_like_path, registered_with_path

    if value in adapters or registered_with_path(value) or "/" in value or "\\" in value:
        return True
    return _looks_like_path(value) or Path(value).expanduser().exists()


def _legacy_key(mapping: dict[str, str | None], new_key: str) -> str | None:
    return next((old for old, new in mapping.items() if new == new_key), None)


def _unresolvable(value: str, new_key: str, legacy_key: str | None, adapters: dict[str, Any]) -> str:
    legacy = f" (with the legacy scripts: {legacy_key}=FILE)" if legacy_key else ""
    return (
        f"{new_key}: {value!r} is a dataset NeMo RL resolved itself, and nemo-rl has no adapter "
        f"for it (it adapts {', '.join(adapters)}): the run would look for {value!r} on the HF "
        f"hub and fail. Point it at your rows: {new_key}=FILE{legacy}, a .jsonl/.json/.parquet/"
        f".csv file of prompt/answer, messages or prompt/chosen/rejected rows"
    )
