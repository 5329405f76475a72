"""What `fit` returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class FitResult:
    """The outcome of a run.

    `metrics` are the final step's (validation metrics included, prefixed `val/`),
    `checkpoint_path` is the last checkpoint directory (its HF model loads with
    `AutoModelForCausalLM.from_pretrained(checkpoint_path)`), `run_dir` holds metrics.jsonl, the
    plot and the resolved config.

    Example:
        >>> FitResult(metrics={"loss": 0.5}, checkpoint_path=None, run_dir=Path(".")).metrics["loss"]
        0.5
    """

    metrics: dict[str, float]
    checkpoint_path: Path | None
    run_dir: Path
    steps: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    stop_reason: str = ""
