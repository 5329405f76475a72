"""Where a run writes, and whether it continues an earlier one.

Every run gets its own directory: `run_dir` when set, else `logger.log_dir` when set (the older
name for it), else a fresh `runs/<algorithm>-<YYYYmmdd-HHMMSS>` (with `-2`, `-3`... when that name
is taken), so running the same script twice trains twice. Logs, the resolved config and the
result live in it, checkpoints in `<run_dir>/checkpoints` unless `checkpointing.checkpoint_dir`
says otherwise.

A run continues an earlier one only when asked: `resume=True` (the API), `--resume [RUN_DIR]`
(the CLI) or `checkpointing.resume: true` (set by the migration of a NeMo RL config with a
`checkpoint_dir`, since NeMo RL always resumed from there). Asked to resume with no location,
it continues the newest `runs/<algorithm>-*` directory.

Example:
    >>> from nemo_rl.config import SFTConfig
    >>> paths = resolve_run_paths(SFTConfig(run_dir="out/a"))
    >>> str(paths.run_dir), str(paths.checkpoint_dir), paths.resume
    ('out/a', 'out/a/checkpoints', False)
    >>> resolve_run_paths(SFTConfig()).run_dir.name.startswith("sft-")
    True
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RUNS_ROOT = Path("runs")


@dataclass(frozen=True)
class RunPaths:
    """The resolved directories of a run; `chosen` is True when nemo-rl named `run_dir` itself
    (it may then pick another free name when the run starts)."""

    run_dir: Path
    checkpoint_dir: Path
    resume: bool
    chosen: bool = False


def default_run_dir(algorithm: str, root: Path = RUNS_ROOT) -> Path:
    """`root/<algorithm>-<YYYYmmdd-HHMMSS>`, suffixed `-2`, `-3`... if that directory exists.

    Example:
        >>> default_run_dir("grpo").parent.name
        'runs'
    """
    base = root / f"{algorithm}-{time.strftime('%Y%m%d-%H%M%S')}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def latest_run_dir(algorithm: str, root: Path = RUNS_ROOT) -> Path | None:
    """The newest `root/<algorithm>-*` directory holding a checkpoint (else the newest one), or
    None. Names sort by time, so the newest is the last name.

    Example:
        >>> latest_run_dir("grpo", Path("/nonexistent")) is None
        True
    """
    runs = sorted(
        (p for p in root.glob(f"{algorithm}-*") if p.is_dir()), key=lambda p: (len(p.name), p.name)
    )
    with_checkpoints = [p for p in runs if any((p / "checkpoints").glob("step_*"))]
    return (with_checkpoints or runs or [None])[-1]


def resolve_run_paths(
    config: Any, run_dir: str | Path | None = None, resume: bool | None = None
) -> RunPaths:
    """The run's directories for an algorithm `config`; `run_dir`/`resume` (from the API or the
    CLI) win over the config's `run_dir` / `checkpointing.resume`. Creates nothing.

    Example: see the module docstring.
    """
    resume = bool(config.checkpointing.resume if resume is None else resume)
    explicit = run_dir or config.run_dir or config.logger.log_dir
    ckpt = config.checkpointing.checkpoint_dir
    chosen = False
    if explicit is None and resume and ckpt is None:
        explicit = latest_run_dir(config.algorithm)
    if explicit is None:
        explicit, chosen = default_run_dir(config.algorithm), True
    path = Path(explicit)
    return RunPaths(path, Path(ckpt) if ckpt else path / "checkpoints", resume, chosen)


def claim_run_dir(paths: RunPaths, algorithm: str) -> RunPaths:
    """Create the run directory. One nemo-rl chose is created exclusively, so two runs started
    in the same second (or two trainers in one script) never share it.

    Example:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> a = claim_run_dir(RunPaths(root / "x", root / "x/checkpoints", False), "sft")
        >>> a.run_dir.is_dir()
        True
    """
    if not paths.chosen:
        paths.run_dir.mkdir(parents=True, exist_ok=True)
        return paths
    run_dir = paths.run_dir
    while True:
        try:
            run_dir.mkdir(parents=True, exist_ok=False)
            break
        except FileExistsError:
            run_dir = default_run_dir(algorithm, run_dir.parent)
    checkpoint_dir = paths.checkpoint_dir
    if checkpoint_dir == paths.run_dir / "checkpoints":
        checkpoint_dir = run_dir / "checkpoints"
    return RunPaths(run_dir, checkpoint_dir, paths.resume, chosen=True)


def describe_paths(paths: RunPaths) -> str:
    """One line naming the run and checkpoint directories and whether the run resumes.

    Example:
        >>> describe_paths(RunPaths(Path("r"), Path("r/checkpoints"), resume=True))
        'run directory: r (checkpoints in r/checkpoints; resumes from the latest one if any)'
    """
    what = "resumes from the latest one if any" if paths.resume else "starts at step 0"
    new = ", a new directory" if paths.chosen else ""
    return f"run directory: {paths.run_dir} (checkpoints in {paths.checkpoint_dir}; {what}{new})"


def resume_line(paths: RunPaths, latest: Path | None, step: int) -> str:
    """What the run does about earlier checkpoints, for the run header ("" when none exist and
    none were asked for).

    Example:
        >>> resume_line(RunPaths(Path("r"), Path("r/c"), True), Path("r/c/step_5"), 5)
        'resuming r from step 5 (r/c/step_5)'
    """
    if latest is not None and paths.resume:
        return f"resuming {paths.run_dir} from step {step} ({latest})"
    if paths.resume:
        return f"nothing to resume in {paths.checkpoint_dir}: starting at step 0"
    if latest is not None:
        return (
            f"note: {paths.checkpoint_dir} already holds checkpoints (latest {latest.name}); this "
            "run starts at step 0 and writes over them (resume=True or --resume continues instead)"
        )
    return ""


def checkpoint_metrics(path: Path) -> dict[str, float]:
    """The metrics saved with a checkpoint (the last step's, validation included); a value that
    was not finite (saved as null) comes back as NaN.

    Example:
        >>> checkpoint_metrics(Path("/nonexistent/step_1"))
        {}
    """
    from nemo_rl.infra.checkpoint import read_checkpoint_info

    try:
        saved = read_checkpoint_info(path).metrics
    except (FileNotFoundError, ValueError):
        return {}
    return {k: float("nan") if v is None else float(v) for k, v in saved.items()}


# What a finished run leaves in its directory besides checkpoints, in the order they are listed.
RUN_FILES = ("config.yaml", "metrics.jsonl", "curves.png", "result.json", "hyperparams.json",
             "tensorboard", "wandb", "mlflow.db", "mlartifacts")


def outside_run_dir(config: Any, run_dir: Path) -> list[str]:
    """Lines naming the outputs an explicit setting puts outside `run_dir` (printed at start, so
    that nothing is written where the user does not expect it).

    Example:
        >>> from nemo_rl.config import SFTConfig
        >>> cfg = SFTConfig(checkpointing={"checkpoint_dir": "/big/ckpt"})
        >>> outside_run_dir(cfg, Path("runs/a"))
        ['checkpoints: /big/ckpt (outside the run directory: checkpointing.checkpoint_dir)']
        >>> outside_run_dir(SFTConfig(), Path("runs/a"))
        []
    """
    places = {
        "checkpoints": ("checkpointing.checkpoint_dir", config.checkpointing.checkpoint_dir),
        "tensorboard": ("logger.tensorboard.log_dir", config.logger.tensorboard.log_dir),
        "mlflow": ("logger.mlflow.tracking_uri", config.logger.mlflow.tracking_uri),
    }
    lines = []
    for what, (field, value) in places.items():
        if what == "tensorboard" and "tensorboard" not in config.logger.backends:
            continue
        if what == "mlflow" and "mlflow" not in config.logger.backends:
            continue
        inside = value is not None and Path(value).resolve().is_relative_to(run_dir.resolve())
        if value is not None and not inside:
            lines.append(f"{what}: {value} (outside the run directory: {field})")
    return lines


def describe_outputs(run_dir: Path, checkpoint: Path | None) -> str:
    """The closing line of a run: its directory, what is in it, and its last checkpoint.

    Example:
        >>> import tempfile
        >>> run = Path(tempfile.mkdtemp())
        >>> _ = (run / "metrics.jsonl").write_text("")
        >>> describe_outputs(run, None) == f"outputs in {run}: metrics.jsonl"
        True
    """
    present = [name + ("/" if (run_dir / name).is_dir() else "")
               for name in RUN_FILES if (run_dir / name).exists()]
    line = f"outputs in {run_dir}: {', '.join(present) or 'nothing yet'}"
    if checkpoint is not None:
        line += f"; last checkpoint: {checkpoint}"
    return line
