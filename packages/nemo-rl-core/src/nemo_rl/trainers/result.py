"""What `fit` returns."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("nemo_rl")


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


def write_run_summary(result: FitResult) -> None:
    """Write `result.json` and the curves plot (`curves.png`, needs matplotlib) in the run dir."""
    run_dir = result.run_dir
    try:
        from nemo_rl.trainers.plot import plot_metrics

        plot_metrics(run_dir / "metrics.jsonl", run_dir / "curves.png")
    except ImportError:
        log.info("matplotlib is not installed: no curves.png (pip install nemo-rl-core[plot])")
    summary = {
        "metrics": result.metrics,
        "steps": result.steps,
        "stop_reason": result.stop_reason,
        "checkpoint_path": str(result.checkpoint_path) if result.checkpoint_path else None,
    }
    (run_dir / "result.json").write_text(json.dumps(summary, indent=2, default=float))
