"""NeMo RL's launch command lines, kept working: `python -m nemo_rl.compat.run_grpo --config
OLD.yaml [Hydra-style overrides]` (and `run_sft`, `run_dpo`) migrate the config and train with
nemo-rl, after a deprecation notice pointing to `nemo-rl train`.

As in NeMo RL's `examples/run_*.py`, everything after `--config FILE` is an override of a legacy
key (`policy.model_name=...`, `+new.key=1`, `++any.key=2`, `~gone.key`), applied before `${...}`
interpolations resolve. `--dry-run` and `--debug` behave as in `nemo-rl train`.

Example:
    >>> from nemo_rl.compat.legacy_launch import run_legacy_script
    >>> run_legacy_script("sft", ["--config", "sft.yaml", "sft.max_num_steps=10"])  # doctest: +SKIP
    0
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.text import Text

from nemo_rl.compat.legacy_loader import load_legacy_config
from nemo_rl.compat.migrate import (
    MigrationResult,
    detect_algorithm,
    is_legacy_config,
    migrate_legacy_config,
)
from nemo_rl.compat.rules_environment import FIX, legacy_environment_name
from nemo_rl.config import AlgorithmConfig

SCRIPTS = {"grpo": "run_grpo", "sft": "run_sft", "dpo": "run_dpo"}
# What NeMo RL's scripts loaded without --config (files of its examples/configs/).
NEMO_RL_DEFAULT_CONFIGS = {"grpo": "grpo_math_1B.yaml", "sft": "sft.yaml", "dpo": "dpo.yaml"}
USAGE_ERROR = 2


class LegacyLaunchError(ValueError):
    """A legacy launch that cannot run as given; the message says why and what to run instead."""


@dataclass(frozen=True)
class LegacyLaunch:
    """One parsed legacy command line.

    Example:
        >>> parse_legacy_args("grpo", ["--config", "a.yaml", "grpo.max_num_steps=5", "~x"])
        LegacyLaunch(config=PosixPath('a.yaml'), overrides=('grpo.max_num_steps=5', '~x'), dry_run=False, debug=False)
    """

    config: Path
    overrides: tuple[str, ...]
    dry_run: bool = False
    debug: bool = False


def parse_legacy_args(algorithm: str, argv: Sequence[str]) -> LegacyLaunch:
    """Read `--config FILE` and the trailing overrides as NeMo RL's scripts did."""
    script = SCRIPTS[algorithm]
    parser = argparse.ArgumentParser(
        prog=f"python -m nemo_rl.compat.{script}",
        description=f"Deprecated: NeMo RL's {script} command line on nemo-rl. Use `nemo-rl train`.",
    )
    parser.add_argument("--config", type=Path, help="NeMo RL YAML config (its defaults: are followed)")
    parser.add_argument("--dry-run", action="store_true", help="check everything, train nothing")
    parser.add_argument("--debug", action="store_true", help="log every phase; full tracebacks")
    args, rest = parser.parse_known_args(list(argv))
    for item in rest:
        if item.startswith("-"):
            raise LegacyLaunchError(
                f"{script}: unknown option '{item}'; it takes --config FILE, --dry-run, --debug and "
                "Hydra-style overrides (key=value, +key=value, ++key=value, ~key)"
            )
    if args.config is None:
        raise LegacyLaunchError(
            f"{script}: --config is required; NeMo RL's script defaulted to its own "
            f"examples/configs/{NEMO_RL_DEFAULT_CONFIGS[algorithm]}, which nemo-rl does not ship: "
            "pass --config PATH (or start from `nemo-rl templates`)"
        )
    return LegacyLaunch(args.config, tuple(rest), args.dry_run, args.debug)


def deprecation_message(algorithm: str, config: str | os.PathLike) -> str:
    """The notice printed before a legacy launch: what replaces it, spelled out for this file.

    Example:
        >>> "nemo-rl train" in deprecation_message("grpo", "grpo_math_1B.yaml")
        True
    """
    script = SCRIPTS[algorithm]
    new_file = f"{Path(config).stem}.nemo-rl.yaml"
    return (
        f"DEPRECATED: python -m nemo_rl.compat.{script} replays NeMo RL's launch script and will be "
        f"removed. Convert the config once with `nemo-rl config migrate {config} -o {new_file}`, "
        f"then run `nemo-rl train {new_file} [key=value ...]` (overrides use the new keys)."
    )


def migration_summary(result: MigrationResult, config: str | os.PathLike) -> list[str]:
    """One line of counts, then each warning that changes the run, each once.

    Renames are counted, not listed: `nemo-rl config migrate` prints the whole mapping.
    """
    renamed = sum(1 for old, new in result.mapping.items() if new is not None and new != old)
    lines = [
        f"migrated {config} ({result.config.algorithm}): {renamed} legacy keys renamed, "
        f"{len(result.dropped)} dropped; `nemo-rl config migrate {config}` lists each"
    ]
    seen: set[str] = set()
    for warning in result.warnings:
        if " is deprecated: use " in warning or warning in seen:
            continue
        seen.add(warning)
        lines.append(f"warning: {warning}")
    return lines


def _wrong_script(algorithm: str, found: str, config: Path) -> LegacyLaunchError:
    script, right = SCRIPTS[algorithm], SCRIPTS.get(found)
    if right is None:
        return LegacyLaunchError(f"{script} got a {found} config ({config}); run it with `nemo-rl train`")
    return LegacyLaunchError(
        f"{script} got a {found} config; use {right} (python -m nemo_rl.compat.{right} --config "
        f"{config} ...)"
    )


def load_for_script(
    algorithm: str, launch: LegacyLaunch, console: Console | None = None
) -> AlgorithmConfig:
    """The validated nemo-rl config of a launch, after checking it is `algorithm`'s.

    A legacy file is migrated (its summary printed to `console`); a file already in nemo-rl's
    layout loads as it is. GRPO must end up with an `environment`, its only reward here.
    """
    from nemo_rl.config import load_config
    from nemo_rl.config.loader import read_config_file

    path, overrides = launch.config, list(launch.overrides)
    raw = read_config_file(path)
    if not is_legacy_config(raw, base_dir=path.parent):
        config = load_config(path, overrides)
        if config.algorithm != algorithm:
            raise _wrong_script(algorithm, config.algorithm, path)
        return config
    # Checked before migrating, so a wrong script is told so rather than failing on another
    # algorithm's values; the second read (inside the migration) costs a fraction of a second.
    found = detect_algorithm(load_legacy_config(path, overrides))
    if found != algorithm:
        raise _wrong_script(algorithm, found, path)
    result = migrate_legacy_config(path, overrides)
    for line in migration_summary(result, path):
        style = "yellow" if line.startswith("warning:") else None
        (console or Console(stderr=True)).print(Text(line, style=style or ""), soft_wrap=True)
    if algorithm == "grpo" and getattr(result.config, "environment", None) is None:
        name = legacy_environment_name(result.legacy_values)
        named = f"names '{name}', which nemo-rl lacks" if name else "names none"
        raise LegacyLaunchError(f"run_grpo needs an environment to score responses: {path} "
                                f"{named}; {FIX}")
    return result.config


def run_legacy_script(algorithm: str, argv: Sequence[str] | None = None) -> int:
    """Parse, warn, migrate, check and train; returns the exit code (2 with one red line on error).

    `argv` defaults to the process arguments.
    """
    import sys

    from nemo_rl.cli.output import print_error
    from nemo_rl.cli.train_cmd import run_train

    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv
    stderr = Console(stderr=True)
    try:
        launch = parse_legacy_args(algorithm, argv)
        stderr.print(Text(deprecation_message(algorithm, launch.config), style="bold yellow"),
                     soft_wrap=True)
        config = load_for_script(algorithm, launch, stderr)
        # The CLI's own path from here: same logging, dry run and result lines as `nemo-rl train`.
        args = argparse.Namespace(config=config, overrides=[], dry_run=launch.dry_run,
                                  debug=launch.debug, train_debug=False)
        return run_train(args)
    except KeyboardInterrupt as err:
        if not str(err):  # a trainer's TrainingInterrupted has printed where to resume
            print_error("interrupted")
        return 130
    except Exception as err:
        if debug:
            raise
        print_error(str(err))
        return USAGE_ERROR
