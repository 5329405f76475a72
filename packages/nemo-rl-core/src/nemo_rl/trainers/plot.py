"""A PNG of the reward and loss curves of a run, from its metrics.jsonl.

Example:
    >>> plot_metrics("runs/x/metrics.jsonl", "runs/x/curves.png")  # doctest: +SKIP
"""

from __future__ import annotations

import json
from pathlib import Path

CURVES = (
    ("reward/mean", "reward"),
    ("val/reward/mean", "val reward"),
    ("val/accuracy", "val accuracy"),
    ("loss", "train loss"),
    ("val/loss", "val loss"),
)


def read_curves(metrics_file: str | Path) -> dict[str, list[tuple[int, float]]]:
    """{metric: [(step, value), ...]} for the metrics that `plot_metrics` draws."""
    curves: dict[str, list[tuple[int, float]]] = {key: [] for key, _ in CURVES}
    for line in Path(metrics_file).read_text().splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        for key in curves:
            if isinstance(record.get(key), (int, float)):
                curves[key].append((int(record["step"]), float(record[key])))
    return {k: v for k, v in curves.items() if v}


def plot_metrics(metrics_file: str | Path, out_png: str | Path) -> Path | None:
    """Draw reward curves (left) and loss curves (right); None when there is nothing to draw.

    Raises ImportError when matplotlib is missing (the caller decides whether that matters).
    """
    import matplotlib

    matplotlib.use("Agg")  # no display on servers; must precede pyplot
    import matplotlib.pyplot as plt

    if not Path(metrics_file).exists():
        return None
    curves = read_curves(metrics_file)
    if not curves:
        return None
    fig, (ax_reward, ax_loss) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in CURVES:
        if key in curves:
            ax = ax_loss if "loss" in key else ax_reward
            steps, values = zip(*curves[key], strict=True)
            ax.plot(steps, values, marker="o" if len(steps) < 30 else None, label=label)
    for ax, title in ((ax_reward, "reward / accuracy"), (ax_loss, "loss")):
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend()
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return Path(out_png)
