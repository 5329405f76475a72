"""`nemo-rl train CONFIG [k=v ...] [--resume [RUN_DIR]] [--dry-run] [--debug]`: run a training job
from a config file. Options and `k=v` overrides may come in any order.

Every run writes to a fresh `runs/<algorithm>-<timestamp>` (or the config's `run_dir`);
`--resume RUN_DIR` continues that run from its latest checkpoint, `--resume` alone the newest run
of the algorithm (or the config's `run_dir`). `--dry-run` validates the config, resolves the
plugins and the packages they need (loggers included), checks that the model and datasets can be
reached (local paths, or the hub), checks the resource plan, loads the tokenizer and the first
batch, prints the device, the directories and the batch arithmetic, loads no weights and trains
nothing; it lists every problem it finds at once. Without a terminal, progress is printed as a
line with the step, rate and ETA every `NEMO_RL_PROGRESS_INTERVAL` seconds (default 30). `--debug` logs every phase with its
timing.

Example:
    >>> from nemo_rl.cli.main import main
    >>> main(["train", "grpo.yaml", "max_num_steps=5", "--dry-run"])  # doctest: +SKIP
    0
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from nemo_rl.cli.output import stdout_console


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train", help="train from a config file (GRPO, SFT, DPO)")
    parser.add_argument("config", help="YAML or JSON config file (a template: `nemo-rl templates`)")
    parser.add_argument("overrides", nargs="*", help="dotted overrides such as policy.optimizer.lr=1e-6")
    parser.add_argument("--dry-run", action="store_true", help="check everything, train nothing")
    parser.add_argument(
        "--resume", nargs="?", const=True, default=None, metavar="RUN_DIR",
        help="continue a run from its latest checkpoint (RUN_DIR, else the newest run)",
    )
    # Its own dest: a subparser default named `debug` would reset `nemo-rl --debug train ...`.
    parser.add_argument(
        "--debug", dest="train_debug", action="store_true",
        help="log every phase with timings; full tracebacks",
    )
    parser.set_defaults(handler=run_train)


def configure_logging(debug: bool) -> None:
    from rich.logging import RichHandler

    console = stdout_console()
    if console.is_terminal:
        handler: logging.Handler = RichHandler(console=console, show_path=False, markup=False)
        fmt = "%(message)s"
    else:  # piped into a file or a CI log: whole lines, unpadded, greppable
        handler = logging.StreamHandler(sys.stdout)
        fmt = "%(asctime)s %(levelname)-7s %(message)s"
        # Carriage-return bars (weight loading, downloads) are noise in a log; read at import by
        # huggingface_hub and transformers, which are not imported yet.
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO,
        format=fmt,
        datefmt="%H:%M:%S",
        handlers=[handler],
        force=True,
    )
    if debug:  # keep third-party chatter out of the debug log
        for name in ("urllib3", "filelock", "matplotlib", "PIL", "fsspec", "httpx"):
            logging.getLogger(name).setLevel(logging.WARNING)


def run_train(args: argparse.Namespace) -> int:
    from nemo_rl.api import trainer_from_config
    from nemo_rl.config import load_config
    from nemo_rl.trainers.preflight import preflight

    args.debug = args.debug or args.train_debug  # main() shows tracebacks when this is set
    configure_logging(args.debug)
    console = stdout_console()
    resume = getattr(args, "resume", None)
    if isinstance(resume, str) and "=" in resume and not Path(resume).exists():
        # `--resume seed=3`: argparse gave the override to --resume's optional RUN_DIR.
        args.overrides, resume = [*args.overrides, resume], True
    run_dir = resume if isinstance(resume, str) else None
    config = load_config(args.config, args.overrides)
    if not args.dry_run:
        # Names (plugins, model, datasets) are checked before torch loads: a bad one fails in
        # seconds. The dry run checks them with everything else (the GPU plan needs torch), so
        # that it lists every problem at once.
        preflight(config, load_plugins=False).raise_if_problems()
    trainer = trainer_from_config(config, run_dir=run_dir, resume=True if resume else None)
    if isinstance(args.config, (str, Path)):  # Ctrl-C prints this command with the run directory
        trainer.resume_command = ["nemo-rl", "train", str(args.config), *args.overrides, "--resume"]
    if args.dry_run:
        for line in trainer.dry_run():
            console.print(line, markup=False, highlight=False)
        console.print("dry run: OK (nothing was trained)", markup=False)
        return 0
    result = trainer.fit()
    shown = ", ".join(f"{k}={v:.4g}" for k, v in result.metrics.items() if isinstance(v, float))
    # The run's own last line named its directory, what is in it and the last checkpoint.
    console.print(f"finished after {result.steps} steps ({result.stop_reason}): {shown}", markup=False)
    return 0
