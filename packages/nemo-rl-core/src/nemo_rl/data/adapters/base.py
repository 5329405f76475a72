"""`DatasetAdapter`: a well-known dataset by name, its rows mapped to the columns nemo-rl reads.

An adapter is registered in the `datasets` plugin group, so `data.dataset: squad` loads SQuAD
from the hub and hands the trainer rows it understands (`messages`, `prompt`/`answer`,
`prompt`/`chosen`/`rejected`). The same mapping applies to a local copy in the dataset's own
format: `data.dataset: squad:/data/squad` reads `/data/squad` (a directory as `hf download`
leaves it, or one .jsonl/.json/.parquet/.csv file) instead of the hub. The original columns are
kept beside the mapped ones (a mapped column wins a clash), so another `data.answer_key` still
finds them.

Example:
    >>> adapter = DatasetAdapter(
    ...     "toy", "someone/toy", lambda row: {"prompt": row["q"], "answer": row["a"]})
    >>> adapter.map_rows([{"q": "1+1=", "a": "2"}])
    [{'q': '1+1=', 'a': '2', 'prompt': '1+1=', 'answer': '2'}]
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("nemo_rl")

RowMap = Callable[[dict[str, Any]], "dict[str, Any] | None"]


@dataclass(frozen=True)
class DatasetAdapter:
    """`name` (the registered name), where it lives on the hub (`hub_id`, `subset`), and
    `map_row`, which returns the columns to add, or None to skip a row (`skip_reason` says why,
    in the warning that counts the skipped rows). `legacy_split` is the split NeMo RL loaded when
    a config named none (the migration writes it).

    Call it as a registered dataset is called: `adapter(split)` loads the hub copy,
    `adapter(split, path=...)` a local one; both return the mapped rows.
    """

    name: str
    hub_id: str
    map_row: RowMap
    subset: str | None = None
    skip_reason: str = ""
    legacy_split: str | None = None  # what NeMo RL loaded when a config named no split

    def __call__(self, split: str = "train", path: str | None = None) -> list[dict[str, Any]]:
        rows = self._read_local(Path(path).expanduser(), split) if path else self._read_hub(split)
        return self.map_rows(rows)

    def map_rows(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Every row with its mapped columns added; skipped rows are counted in one warning."""
        mapped, skipped = [], 0
        for index, row in enumerate(rows):
            try:
                extra = self.map_row(row)
            except (KeyError, IndexError, TypeError, AttributeError) as err:
                raise ValueError(
                    f"dataset {self.name!r}: row {index} is not in {self.hub_id}'s format "
                    f"({type(err).__name__}: {err}; columns present: {', '.join(row)}); point "
                    f"data.dataset at a copy of {self.hub_id}, or load the file without the "
                    f"adapter (data.dataset=FILE) and set the data.*_key columns"
                ) from None
            if extra is None:
                skipped += 1
            else:
                mapped.append({**row, **extra})
        if skipped:
            log.warning("dataset %s: skipped %d of %d rows (%s)", self.name, skipped, len(rows), self.skip_reason)
        return mapped

    def check_reachable(self) -> None:
        """Raise `DatasetSourceError` saying how to use a local copy if the hub is unreachable
        (HF_HUB_OFFLINE=1 skips the probe: the copy in the HF cache is then used)."""
        from nemo_rl import hub
        from nemo_rl.data.sources import DatasetSourceError

        if not hub.hub_offline() and not hub.hub_reachable():
            raise DatasetSourceError(
                f"dataset {self.name!r} is {self.hub_id} on the Hugging Face hub "
                f"({hub.hub_endpoint()}), which cannot be reached from this machine: copy it "
                f"here (`hf download {self.hub_id} --repo-type dataset --local-dir DIR` where "
                f"there is network) and set data.dataset={self.name}:DIR"
            )

    def _read_hub(self, split: str) -> list[dict[str, Any]]:
        from nemo_rl.data.sources import _import_load_dataset

        self.check_reachable()
        load_dataset = _import_load_dataset(f"loading dataset {self.name!r} ({self.hub_id})")
        args = (self.hub_id, self.subset) if self.subset else (self.hub_id,)
        return load_dataset(*args, split=split).to_list()

    def _read_local(self, path: Path, split: str) -> list[dict[str, Any]]:
        from nemo_rl.data.sources import DatasetSourceError, _import_load_dataset, load_source

        if path.is_file():
            return load_source(str(path), split).rows
        if not path.is_dir():
            raise DatasetSourceError(
                f"dataset {self.name!r}: local copy {str(path)!r} is not a file or directory "
                f"(cwd: {Path.cwd()}): check the path after '{self.name}:'"
            )
        # A hub snapshot keeps each subset in its own folder (HelpSteer3's preference/, ...).
        data_dir = self.subset if self.subset and (path / self.subset).is_dir() else None
        load_dataset = _import_load_dataset(f"reading the local copy of {self.name!r}")
        try:
            return load_dataset(str(path), data_dir=data_dir, split=split).to_list()
        except ValueError as err:  # an unknown split: the message lists the ones there are
            raise DatasetSourceError(f"dataset {self.name!r} at {str(path)!r}: {err}") from None
