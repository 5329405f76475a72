"""`nemo-rl sft|grpo|dpo --model M --dataset D [flags] [k=v ...]`: train without a config file.

The flags are dotted overrides under another name (`--lr` is `policy.optimizer.lr`, see `FLAGS`),
applied to the algorithm's defaults, or to a template with `--template NAME`, by the same
`load_config` as `nemo-rl train`; the run itself is `nemo-rl train`'s. `--print-config` prints
the config as YAML, a file `nemo-rl train` reads back to the same config; `--dry-run` checks
everything and trains nothing. GRPO's `--reward` is a function `module:name` (per sample,
`fn(prompt, response, **row) -> float`, or TRL's batched `fn(completions, **kwargs)`), imported
from the working directory, or an installed environment such as `math`.

Example:
    >>> from nemo_rl.cli.main import main
    >>> main(["grpo", "--model", "Qwen/Qwen2.5-0.5B-Instruct", "--dataset", "train.jsonl",
    ...       "--reward", "my_rewards:exact", "--steps", "20", "--print-config"])  # doctest: +SKIP
    0
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DESCRIPTIONS = {
    "sft": "supervised fine-tuning without a config file (prompt/answer or chat rows)",
    "grpo": "GRPO with a reward function, without a config file",
    "dpo": "DPO on preference rows (prompt, chosen, rejected), without a config file",
}


USAGE = (
    "Train without a config file. Each flag sets the config key named after its help; more keys "
    "as key=value. The config starts from the algorithm's defaults, or from --template NAME. "
    "--print-config prints it as YAML for `nemo-rl train`; --dry-run checks everything and "
    "trains nothing."
)


@dataclass(frozen=True)
class Flag:
    """A command-line flag that sets one config key, for the algorithms listed (all if empty)."""

    option: str
    key: str
    type: type
    help: str
    algorithms: tuple[str, ...] = ()


FLAGS = (
    Flag("--model", "policy.model_name", str, "model directory or HF hub name"),
    Flag("--dataset", "data.dataset", str, "training rows: a .jsonl/.json/.parquet/.csv file, a "
         "directory, a registered dataset or an HF hub name"),
    Flag("--val-dataset", "data.val_dataset", str, "validation rows (same forms as --dataset)"),
    Flag("--reward", "environment", str, "module:function (per sample fn(prompt, response, **row) "
         "-> float, or TRL's fn(completions, **kwargs) -> list[float]) or an installed "
         "environment such as math", ("grpo",)),
    Flag("--steps", "max_num_steps", int, "training steps"),
    Flag("--lr", "policy.optimizer.lr", float, "learning rate"),
    Flag("--batch-size", "batch_size", int, "samples per step", ("sft", "dpo")),
    Flag("--prompts-per-step", "num_prompts_per_step", int, "prompts per step", ("grpo",)),
    Flag("--num-generations", "num_generations_per_prompt", int, "responses per prompt", ("grpo",)),
    Flag("--output-dir", "run_dir", str, "run directory (default: runs/<algorithm>-<timestamp>)"),
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the `sft`, `grpo` and `dpo` subcommands."""
    for algorithm, description in DESCRIPTIONS.items():
        parser = subparsers.add_parser(algorithm, help=description, description=USAGE)
        for flag in FLAGS:
            if not flag.algorithms or algorithm in flag.algorithms:
                parser.add_argument(
                    flag.option, type=flag.type, help=f"{flag.help} ({flag.key})",
                    metavar=flag.type.__name__.upper() if flag.type is not str else None,
                )
        parser.add_argument("overrides", nargs="*", help="more settings as dotted key=value")
        parser.add_argument(
            "--template", help="start from this config template (`nemo-rl templates`), not the defaults"
        )
        parser.add_argument("--dry-run", action="store_true", help="check everything, train nothing")
        parser.add_argument(
            "--print-config", action="store_true",
            help="print the config as YAML (a file for `nemo-rl train`) and exit",
        )
        parser.add_argument(
            "--debug", dest="train_debug", action="store_true",
            help="log every phase with timings; full tracebacks",
        )
        parser.set_defaults(handler=run_algorithm, algorithm=algorithm, resume=None)


def flag_overrides(args: argparse.Namespace) -> list[str]:
    """`key=value` for every flag given, checked against the `key=value` overrides for clashes.

    Example:
        >>> args = argparse.Namespace(algorithm="sft", model="m", steps=3, lr=None, overrides=[])
        >>> flag_overrides(args)
        ['policy.model_name="m"', 'max_num_steps=3']
    """
    given = {
        flag.key: (flag.option, value)
        for flag in FLAGS
        if (value := getattr(args, flag.option[2:].replace("-", "_"), None)) is not None
    }
    for override in args.overrides:
        key = override.split("=", 1)[0].lstrip("+~")
        if key in given:
            option, value = given[key]
            raise ValueError(
                f"{key} is set twice, by {option} {value} and by the override {override!r}; "
                f"keep one"
            )
    # Strings are quoted so that a name such as "1.5" or "null" stays the string it was.
    return [
        f"{key}={json.dumps(value) if isinstance(value, str) else repr(value)}"
        for key, (_, value) in given.items()
    ]


def build_config(args: argparse.Namespace) -> tuple[Any, list[str]]:
    """The config source (`{"algorithm": ...}` or a template's path) and the overrides to apply,
    after checking that the template is this algorithm's."""
    base: Any = {"algorithm": args.algorithm}
    if args.template:
        from nemo_rl.cli.templates_cmd import _templates_module

        templates = _templates_module()
        info = next((t for t in templates.list_templates() if t.name == args.template), None)
        if info is None:
            templates.template_path(args.template)  # raises, naming the closest templates
        elif info.algorithm != args.algorithm:
            raise ValueError(
                f"template {args.template!r} is a {info.algorithm} template; run `nemo-rl "
                f"{info.algorithm} --template {args.template}`, or pick one from `nemo-rl "
                f"templates --algorithm {args.algorithm}`"
            )
        base = Path(templates.template_path(args.template))
    return base, [*flag_overrides(args), *args.overrides]


def run_algorithm(args: argparse.Namespace) -> int:
    """Build the config, then print it, or run `nemo-rl train`'s dry run or training on it."""
    from nemo_rl.cli.train_cmd import run_train
    from nemo_rl.config import ConfigError, dump_config, load_config

    base, overrides = build_config(args)
    try:
        config = load_config(base, overrides)
    except ConfigError as err:  # name the flag that set a bad value, not only its config key
        raise ConfigError([_with_flag(problem, args.algorithm) for problem in err.problems],
                          source=err.source) from None
    if config.algorithm == "grpo" and not config.environment:
        raise ValueError(
            "nemo-rl grpo needs a reward: --reward my_rewards:score (a function in my_rewards.py "
            "here, fn(prompt, response, **row) -> float) or an installed environment (--reward math)"
        )
    if config.data.dataset is None and not args.print_config:
        raise ValueError(
            f"nemo-rl {args.algorithm} needs training rows: --dataset FILE (.jsonl/.json/.parquet/"
            f".csv), a directory, a registered dataset or an HF hub name"
        )
    if args.print_config:
        print(dump_config(config, minimal=True), end="")
        return 0
    return run_train(argparse.Namespace(**{**vars(args), "config": base, "overrides": overrides}))


def _with_flag(problem: str, algorithm: str) -> str:
    for flag in FLAGS:
        if problem.startswith(f"{flag.key} = ") and (not flag.algorithms or algorithm in flag.algorithms):
            return f"{problem} (set by {flag.option})"
    return problem
