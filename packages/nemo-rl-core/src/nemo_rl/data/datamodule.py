"""`DataModule`: the training and validation rows of a run, and which columns mean what.

This is where data enters nemo-rl. A `DataModule` loads rows from any source `load_rows`
understands (a list of dicts, a `datasets` object, a local JSONL/JSON/Parquet/CSV file, a
registered dataset name, or an HF hub name), remembers the column names (`prompt_key`,
`answer_key`, ...), checks that the columns an algorithm needs are there, and hands out batches of
rows through a `ResumableSampler`. Turning rows into token tensors is the algorithm's data
transform (`nemo_rl.algorithms.<algo>.data`), which reads the same settings from `.config`.

Validation rows come from `val` (a second source), or from another split of the training source
when only `val_split` is given; `max_val_samples` keeps the first N.

Example:
    >>> from nemo_rl.data import DataModule
    >>> rows = [{"problem": f"{i}+{i}=", "solution": str(2 * i)} for i in range(6)]
    >>> dm = DataModule(rows, rows[:2], prompt_key="problem", answer_key="solution")
    >>> dm.validate_columns(["problem", "solution"])
    >>> len(dm.train_rows), len(dm.val_rows)
    (6, 2)
    >>> sampler = dm.make_sampler(batch_size=4, seed=1)
    >>> [row["problem"] for row in dm.rows_at(next(sampler))]
    ['1+1=', '5+5=', '2+2=', '0+0=']
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Iterator, Mapping, Sequence
from functools import cached_property
from typing import Any

from nemo_rl.config.infra import DataConfig
from nemo_rl.data.formats import MESSAGES_COLUMNS, detect_columns, messages_column
from nemo_rl.data.sampler import ResumableSampler
from nemo_rl.data.sources import DatasetSourceError, LoadedRows, load_source

log = logging.getLogger("nemo_rl")

# Column names commonly used for each role, to suggest the right key when the default is absent.
_COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "prompt_key": ("prompt", "problem", "question", "query", "instruction", "input", "text"),
    "answer_key": ("answer", "solution", "response", "output", "completion", "target", "label"),
    "messages_key": MESSAGES_COLUMNS,
    "chosen_key": ("chosen", "preferred", "accepted", "positive"),
    "rejected_key": ("rejected", "dispreferred", "negative"),
}


class ColumnError(KeyError):
    """A column an algorithm needs is missing from a dataset; the message names the fix."""

    def __str__(self) -> str:  # KeyError would otherwise print the message in quotes
        return str(self.args[0])


def as_data_config(data_config: DataConfig | Mapping[str, Any] | None) -> DataConfig:
    """A `DataConfig` from a config, a dict of its fields, or None (the defaults).

    Example:
        >>> as_data_config({"prompt_key": "question"}).prompt_key
        'question'
    """
    if isinstance(data_config, DataConfig):
        return data_config
    return DataConfig.model_validate(dict(data_config or {}))


class DataModule:
    """Training and validation rows plus the column settings the data transforms use.

    Rows are loaded on first access of `train_rows` / `val_rows`, so building a `DataModule` is
    cheap. `config` is the equivalent `DataConfig` (pass it to the algorithm's data transform).

    Example:
        >>> dm = DataModule([{"question": "hi", "answer": "yo"}], prompt_key="question")
        >>> dm.config.prompt_key, dm.val_rows
        ('question', [])
    """

    def __init__(
        self,
        train: Any,
        val: Any = None,
        *,
        prompt_key: str = "prompt",
        answer_key: str = "answer",
        messages_key: str | None = None,
        chosen_key: str = "chosen",
        rejected_key: str = "rejected",
        system_prompt: str | None = None,
        prompt_template: str | None = None,
        split: str = "train",
        val_split: str | None = None,
        max_val_samples: int | None = None,
        apply_chat_template: bool = True,
    ) -> None:
        if train is None:
            raise DatasetSourceError(
                "DataModule: no training dataset given; set data.dataset to a registered "
                "dataset name, an HF hub name or a local .jsonl/.json/.parquet/.csv path"
            )
        if max_val_samples is not None and max_val_samples <= 0:
            raise ValueError(
                f"DataModule: max_val_samples={max_val_samples}; use a positive number or None"
            )
        self.train_source = train
        self.val_source = val
        self.max_val_samples = max_val_samples
        settings = dict(
            dataset=train if isinstance(train, str) else None,
            val_dataset=val if isinstance(val, str) else None,
            split=split,
            val_split=val_split,
            prompt_key=prompt_key,
            answer_key=answer_key,
            messages_key=messages_key,
            chosen_key=chosen_key,
            rejected_key=rejected_key,
            system_prompt=system_prompt,
            prompt_template=prompt_template,
            apply_chat_template=apply_chat_template,
        )
        # Only values that differ from the defaults count as given, so `detect_columns` may
        # still fill in the column settings that were left alone.
        self.config = DataConfig(
            **{k: v for k, v in settings.items() if v != DataConfig.model_fields[k].default}
        )

    @classmethod
    def from_config(cls, config: DataConfig, max_val_samples: int | None = None) -> DataModule:
        """A `DataModule` for `config` (its `dataset`, `val_dataset` and column settings).

        `max_val_samples` lives on the algorithm config (`AlgorithmConfig.max_val_samples`).

        Example:
            >>> from nemo_rl.config import DataConfig
            >>> DataModule.from_config(DataConfig(dataset="train.jsonl")).config.dataset
            'train.jsonl'
        """
        if config.dataset is None:
            raise DatasetSourceError(
                "data.dataset is not set: give a registered dataset name, an HF hub name or a "
                "local .jsonl/.json/.parquet/.csv path"
            )
        module = cls(
            config.dataset,
            config.val_dataset,
            max_val_samples=max_val_samples,
            **config.model_dump(include=_KEY_FIELDS),
        )
        module.config = config  # keeps the fields DataModule does not use (shuffle, ...)
        return module

    @cached_property
    def _train(self) -> LoadedRows:
        return load_source(self.train_source, self.config.split)

    @cached_property
    def _val(self) -> LoadedRows | None:
        val_split = self.config.val_split
        if self.val_source is not None:
            loaded = load_source(self.val_source, val_split or "train")
        elif val_split is not None:
            loaded = load_source(self.train_source, val_split)
            if not loaded.split_applied:
                raise DatasetSourceError(
                    f"data.val_split={val_split!r} asks for another split of {loaded.name}, "
                    f"which has a single split (it would give the training rows again): set "
                    f"data.val_dataset to a separate validation file or dataset"
                )
        else:
            return None
        if self.max_val_samples is not None:
            loaded.rows = loaded.rows[: self.max_val_samples]
        return loaded

    @property
    def train_rows(self) -> list[dict[str, Any]]:
        """The training rows (loaded on first access)."""
        return self._train.rows

    @property
    def val_rows(self) -> list[dict[str, Any]]:
        """The validation rows, at most `max_val_samples`; empty when no validation data is set."""
        return self._val.rows if self._val is not None else []

    def detect_columns(self, algorithm: str, config: DataConfig | None = None) -> DataConfig:
        """Fill the column settings left at their defaults from the first training row's shape.

        Recognises conversation (`messages`) columns and TRL's prompt/completion and preference
        rows (see `nemo_rl.data.formats`); settings the user gave are kept. Returns `config`
        (default: `self.config`) updated, and updates `self.config`'s column settings to match.

        Example:
            >>> chat = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
            >>> dm = DataModule([{"messages": chat}])
            >>> dm.detect_columns("sft").messages_key, dm.config.messages_key
            ('messages', 'messages')
        """
        config = self.config if config is None else config
        if not self.train_rows:
            return config
        resolved, note = detect_columns(config, self.train_rows[0], algorithm)
        if note is not None:
            log.info("data: %s", note)
            columns = {f: getattr(resolved, f) for f in _KEY_FIELDS_WITH_COLUMNS}
            self.config = self.config.model_copy(update=columns)
        return resolved

    def validate_columns(self, required: Sequence[str]) -> None:
        """Raise `ColumnError` if any training or validation row lacks a column of `required`.

        The message names the missing column, the dataset, the columns present and the
        `data.<role>_key` setting that would fix it.

        Example:
            >>> dm = DataModule([{"problem": "1+1", "solution": "2"}])
            >>> dm.validate_columns(["prompt"])
            Traceback (most recent call last):
            ...
            nemo_rl.data.datamodule.ColumnError: column 'prompt' not found in (the given list); columns present: problem, solution; set data.prompt_key=problem
        """
        datasets = [self._train] + ([self._val] if self._val is not None else [])
        for loaded in datasets:
            for index, row in enumerate(loaded.rows):
                missing = [column for column in required if column not in row]
                if missing:
                    raise ColumnError(self._missing_message(missing[0], loaded.name, index, row))

    def _missing_message(self, column: str, name: str, index: int, row: dict[str, Any]) -> str:
        present = list(row)
        where = f"{name}" if index == 0 else f"{name} (row {index})"
        message = f"column {column!r} not found in {where}; columns present: {', '.join(present) or 'none'}"
        fields = [f for f in _KEY_FIELDS_WITH_COLUMNS if getattr(self.config, f) == column]
        conversation = messages_column(row)
        if conversation is not None and fields and fields[0] in ("prompt_key", "answer_key"):
            # The rows hold conversations: the fix is the messages column, not another prompt.
            return f"{message}; column {conversation!r} holds conversations: set data.messages_key={conversation}"
        if not fields:
            return f"{message}; add the column to every row"
        field = fields[0]
        aliases = [c for c in _COLUMN_ALIASES.get(field, ()) if c in present]
        guess = aliases[:1] or difflib.get_close_matches(column, present, n=1)
        if guess:
            return f"{message}; set data.{field}={guess[0]}"
        return f"{message}; set data.{field} to the column that holds it"

    def make_sampler(
        self,
        batch_size: int,
        *,
        seed: int = 0,
        shuffle: bool | None = None,
        drop_last: bool = True,
    ) -> ResumableSampler:
        """A `ResumableSampler` over the training rows (`shuffle` None follows `config.shuffle`)."""
        return ResumableSampler(
            len(self.train_rows),
            batch_size,
            shuffle=self.config.shuffle if shuffle is None else shuffle,
            seed=seed,
            drop_last=drop_last,
        )

    def rows_at(self, indices: Sequence[int]) -> list[dict[str, Any]]:
        """The training rows at `indices` (a batch from the sampler), in that order."""
        rows = self.train_rows
        return [rows[i] for i in indices]

    def val_batches(self, batch_size: int) -> Iterator[list[dict[str, Any]]]:
        """The validation rows in order, `batch_size` at a time (the last batch may be smaller).

        Example:
            >>> dm = DataModule([{"prompt": "a"}], [{"prompt": str(i)} for i in range(5)])
            >>> [len(batch) for batch in dm.val_batches(2)]
            [2, 2, 1]
        """
        if batch_size <= 0:
            raise ValueError(f"val_batches: batch_size={batch_size}; it must be at least 1")
        rows = self.val_rows
        for start in range(0, len(rows), batch_size):
            yield rows[start : start + batch_size]


# DataConfig fields that DataModule takes as keyword arguments.
_KEY_FIELDS = {
    "prompt_key",
    "answer_key",
    "messages_key",
    "chosen_key",
    "rejected_key",
    "system_prompt",
    "prompt_template",
    "split",
    "val_split",
    "apply_chat_template",
}
# The fields naming a column, in the order a missing column is attributed to them.
_KEY_FIELDS_WITH_COLUMNS = ("messages_key", "prompt_key", "answer_key", "chosen_key", "rejected_key")
