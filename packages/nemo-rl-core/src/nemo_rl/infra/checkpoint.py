"""Checkpoint directories: atomic saves, keep-top-k, and finding the latest or best one.

A checkpoint is the directory `<checkpoint_dir>/step_<N>`. It is written under the temporary name
`.tmp_step_<N>` and renamed when complete, with `metadata.json` (step, metrics, time) written last,
so a `step_<N>` directory is always complete and a crash during a save never touches the
checkpoints already there.

Ranking rule (used by keep-top-k and `best()`): with `metric_name` set, checkpoints are ordered by
that metric (`higher_is_better`), ties going to the newer step; a checkpoint whose metadata lacks
the metric, or holds a non-finite value, ranks below every checkpoint that has it (newest first
among themselves), so it is the first pruned and `best()` returns it only when no checkpoint has
the metric. Without `metric_name`, newer is better. The latest checkpoint is always kept, so a run
can resume. One manager (the driver) owns a checkpoint directory.

Example:
    >>> import tempfile
    >>> from nemo_rl.config import CheckpointConfig
    >>> manager = CheckpointManager(CheckpointConfig(checkpoint_dir=tempfile.mkdtemp(), keep_top_k=1))
    >>> for step in (10, 20):
    ...     with manager.save(step, {"val/loss": 1.0 / step}) as tmp_dir:
    ...         _ = (tmp_dir / "weights.bin").write_bytes(b"...")
    >>> [info.step for info in manager.list()], manager.latest().name
    ([20], 'step_20')
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nemo_rl.config import CheckpointConfig
from nemo_rl.infra.logging.values import as_metric_value, json_safe_metrics

METADATA_FILE = "metadata.json"
_FINAL = re.compile(r"^step_(\d+)$")
_TMP_PREFIX = ".tmp_step_"
# A checkpoint being deleted is renamed to this prefix first: a kill halfway through the delete
# leaves a directory that is never listed as a checkpoint and is removed on the next start.
_DISCARD_PREFIX = ".deleting_"
# A complete checkpoint moved aside while a new save of the same step replaces it.
_OLD = re.compile(r"^\.old_step_(\d+)$")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckpointInfo:
    """One complete checkpoint: its step, directory, the metrics saved with it, and save time."""

    step: int
    path: Path
    metrics: dict[str, float | int | None] = field(default_factory=dict)
    time: float = 0.0

    def metric(self, name: str) -> float | None:
        """The finite value of metric `name`, or None when it is missing or non-finite."""
        value = self.metrics.get(name)
        if value is None or not math.isfinite(value):
            return None
        return float(value)


def read_checkpoint_info(path: Path) -> CheckpointInfo:
    """The `CheckpointInfo` of a checkpoint directory, read from its metadata.json.

    Example:
        >>> read_checkpoint_info(Path("/nonexistent/step_3"))
        Traceback (most recent call last):
        ...
        FileNotFoundError: /nonexistent/step_3 has no metadata.json, so it is not a complete checkpoint; ...
    """
    path = Path(path)
    meta_path = path / METADATA_FILE
    if not meta_path.is_file():
        raise FileNotFoundError(
            f"{path} has no {METADATA_FILE}, so it is not a complete checkpoint; pass a "
            "step_<N> directory written by CheckpointManager.save"
        )
    try:
        meta = json.loads(meta_path.read_text())
        return CheckpointInfo(
            step=int(meta["step"]),
            path=path,
            metrics=dict(meta.get("metrics") or {}),
            time=float(meta.get("time", 0.0)),
        )
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise ValueError(
            f"{meta_path} is damaged ({err!r}); it was edited by hand or written by another tool: "
            "restore it or delete the checkpoint directory"
        ) from err


def _fsync_dir(path: Path) -> None:
    # Makes the rename itself durable; without it a power loss may forget the new name.
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class CheckpointManager:
    """Saves checkpoints atomically into `config.checkpoint_dir` and prunes them to `keep_top_k`.

    `save(step, metrics)` is a context manager yielding the temporary directory to fill; on
    success the directory becomes `step_<N>`, on an exception it is removed. Construction removes
    temporary directories left by a crash and finishes an interrupted replacement.

    Example: see the module docstring.
    """

    def __init__(self, config: CheckpointConfig) -> None:
        self.config = config
        self.directory = Path(config.checkpoint_dir)
        self._recover()

    def _recover(self) -> None:
        if not self.directory.is_dir():
            return
        for entry in self.directory.iterdir():
            old = _OLD.match(entry.name)
            if entry.name.startswith((_TMP_PREFIX, _DISCARD_PREFIX)):
                shutil.rmtree(entry, ignore_errors=True)
            elif old:
                final = self.directory / f"step_{old.group(1)}"
                if final.exists():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.rename(final)

    def should_save(self, step: int) -> bool:
        """True when checkpointing is enabled and `step` is a positive multiple of save_period."""
        return self.config.enabled and step > 0 and step % self.config.save_period == 0

    @contextmanager
    def save(self, step: int, metrics: Mapping[str, Any] | None = None) -> Iterator[Path]:
        """Yield `.tmp_step_<step>` to fill; publish it as `step_<step>` when the block succeeds.

        Saving a step that already exists replaces it. `metrics` (numbers) are stored in
        metadata.json and rank the checkpoint when `metric_name` is set.
        """
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"checkpoint step must be a non-negative int, got {step!r}")
        values = {name: as_metric_value(name, v) for name, v in (metrics or {}).items()}
        name = self.config.metric_name
        if name is not None and not math.isfinite(values.get(name, math.nan)):
            log.warning(
                "checkpoint step %d has no finite %r among its metrics %s; it ranks below every "
                "checkpoint that has it (checkpoint.metric_name)",
                step,
                name,
                sorted(values),
            )
        tmp = self.directory / f"{_TMP_PREFIX}{step}"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        try:
            yield tmp
            meta = {"step": step, "metrics": json_safe_metrics(values), "time": time.time()}
            with (tmp / METADATA_FILE).open("w") as f:
                json.dump(meta, f, indent=2, allow_nan=False)
                f.flush()
                os.fsync(f.fileno())
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self._publish(tmp, step)
        self._prune()

    def _publish(self, tmp: Path, step: int) -> None:
        final = self.directory / f"step_{step}"
        if final.exists():
            # Directories cannot be renamed over a non-empty one: move the old aside first, so that
            # at every instant one complete copy exists (_recover finishes an interrupted swap).
            aside = self.directory / f".old_step_{step}"
            if aside.exists():
                shutil.rmtree(aside)
            final.rename(aside)
            tmp.rename(final)
            shutil.rmtree(aside)
        else:
            tmp.rename(final)
        _fsync_dir(self.directory)

    def list(self) -> list[CheckpointInfo]:
        """The complete checkpoints, oldest step first (temporary directories are not listed)."""
        if not self.directory.is_dir():
            return []
        infos = [
            read_checkpoint_info(entry)
            for entry in self.directory.iterdir()
            if _FINAL.match(entry.name) and (entry / METADATA_FILE).is_file()
        ]
        return sorted(infos, key=lambda info: info.step)

    def ranked(self) -> list[CheckpointInfo]:
        """The complete checkpoints, best first, by the ranking rule of the module docstring."""
        name = self.config.metric_name
        if name is None:
            return sorted(self.list(), key=lambda info: info.step, reverse=True)
        sign = 1.0 if self.config.higher_is_better else -1.0

        def key(info: CheckpointInfo) -> tuple[bool, float, int]:
            value = info.metric(name)
            return (value is not None, sign * value if value is not None else 0.0, info.step)

        return sorted(self.list(), key=key, reverse=True)

    def latest(self) -> Path | None:
        """The directory of the highest complete step, or None when there is none."""
        infos = self.list()
        return infos[-1].path if infos else None

    def best(self) -> Path | None:
        """The directory of the best checkpoint by the ranking rule, or None when there is none."""
        ranked = self.ranked()
        return ranked[0].path if ranked else None

    def _prune(self) -> None:
        k = self.config.keep_top_k
        if k is None:
            return
        ranked = self.ranked()
        keep = {info.step for info in ranked[:k]}
        keep.add(max(info.step for info in ranked))
        for info in ranked:
            if info.step not in keep:
                self._discard(info.path)

    def _discard(self, path: Path) -> None:
        """Delete a checkpoint so that no instant shows it half-deleted under its own name."""
        doomed = path.with_name(f"{_DISCARD_PREFIX}{path.name}")
        if doomed.exists():
            shutil.rmtree(doomed)
        path.rename(doomed)
        _fsync_dir(self.directory)
        shutil.rmtree(doomed)
