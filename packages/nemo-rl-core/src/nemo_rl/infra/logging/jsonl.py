"""The metrics file every run writes: `run_dir/metrics.jsonl`, one JSON object per logged step.

The file is append-only and flushed after every line, so a crash loses at most the line being
written and a resumed run continues the same file. Hyperparameters go to
`run_dir/hyperparams.json`.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> from nemo_rl.config import LoggerConfig
    >>> run_dir = Path(tempfile.mkdtemp())
    >>> backend = JsonlBackend(LoggerConfig(), run_dir)
    >>> backend.log_metrics({"loss": 0.5}, step=1)
    >>> backend.close()
    >>> read_metrics(run_dir)[0]["loss"]
    0.5
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nemo_rl.config import LoggerConfig
from nemo_rl.infra.logging.values import MetricValue, json_safe_metrics

METRICS_FILE = "metrics.jsonl"
HYPERPARAMS_FILE = "hyperparams.json"
RESERVED_KEYS = ("step", "time")


class JsonlBackend:
    """Writes `{"step": .., "time": .., **metrics}` per call; NaN and inf are written as null.

    Example: see the module docstring.
    """

    def __init__(self, config: LoggerConfig, run_dir: Path) -> None:
        self.path = Path(run_dir) / METRICS_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8")

    def log_metrics(self, metrics: Mapping[str, MetricValue], step: int) -> None:
        clash = [key for key in RESERVED_KEYS if key in metrics]
        if clash:
            raise ValueError(
                f"metric name {clash[0]!r} is reserved in {METRICS_FILE} (every line has 'step' "
                "and 'time'); rename it (e.g. 'step_time') or log it with a prefix"
            )
        record = {"step": step, "time": time.time(), **json_safe_metrics(metrics)}
        self._file.write(json.dumps(record, allow_nan=False) + "\n")
        self._file.flush()

    def log_hyperparams(self, params: Mapping[str, Any]) -> None:
        path = self.path.parent / HYPERPARAMS_FILE
        path.write_text(json.dumps(params, indent=2, sort_keys=True, default=str) + "\n")

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The records of a metrics.jsonl file (or of the one in a run directory), in order.

    A last line without its newline is the trace of a crash mid-write and is skipped; a bad line
    anywhere else is an error naming the file and line.

    Example: see the module docstring.
    """
    path = Path(path)
    if path.is_dir():
        path = path / METRICS_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"no metrics file at {path}; pass a run directory or its {METRICS_FILE}"
        )
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    records: list[dict[str, Any]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as err:
            is_unterminated_last_line = number == len(lines) and not text.endswith("\n")
            if is_unterminated_last_line:
                break
            raise ValueError(
                f"{path}:{number} is not valid JSON ({err.msg}); the file was edited or damaged: "
                "fix or delete that line"
            ) from err
    return records


def drop_metrics_after(run_dir: str | Path, step: int) -> int:
    """Remove the records of steps after `step` from `run_dir/metrics.jsonl`; the number removed.

    A resumed run repeats the steps after its checkpoint, so their old records go first: the file
    then holds each step once. The file is replaced atomically (written aside, then renamed), and
    a missing file is nothing to do.

    Example:
        >>> import tempfile
        >>> from nemo_rl.config import LoggerConfig
        >>> run_dir = Path(tempfile.mkdtemp())
        >>> backend = JsonlBackend(LoggerConfig(), run_dir)
        >>> for s in (1, 2, 3):
        ...     backend.log_metrics({"loss": float(s)}, step=s)
        >>> backend.close()
        >>> drop_metrics_after(run_dir, 2), [r["step"] for r in read_metrics(run_dir)]
        (1, [1, 2])
    """
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return 0
    records = read_metrics(path)
    kept = [record for record in records if record.get("step", 0) <= step]
    aside = path.with_name(f".{METRICS_FILE}.tmp")
    aside.write_text("".join(json.dumps(record) + "\n" for record in kept), encoding="utf-8")
    aside.replace(path)
    return len(records) - len(kept)
