"""What a run will need, checked before any weights load: plugins (backends, environment,
loggers) and the packages they declare, the model and tokenizer sources, the datasets' sources.

Every check runs and every problem is reported together, so a dry run says all that is missing
at once instead of the first thing, and a real run stops before the model loads rather than
after (a logger without its package used to fail only once the policy was on the GPU).

Example:
    >>> from nemo_rl.config import load_config
    >>> cfg = load_config({"algorithm": "sft", "policy": {"model_name": "./no/such/model"}})
    >>> report = preflight(cfg, check_sources=True)
    >>> [p.split(" (")[0] for p in report.problems]
    ["policy.model_name='./no/such/model': no such directory"]
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nemo_rl import hub, registry
from nemo_rl.config import ConfigError

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


class PreflightError(ConfigError):
    """Everything a run would miss, one problem per line (a single problem is just its line).

    A `ConfigError`: each problem is something the config names that this installation or
    machine lacks (a plugin, a package, a model or dataset source).

    Example:
        >>> str(PreflightError(["a", "b"])).splitlines()
        ['the run would fail; 2 problems:', '  - a', '  - b']
        >>> str(PreflightError(["a"]))
        'a'
    """

    def __init__(self, problems: list[str]) -> None:
        super().__init__(problems)

    def _format(self) -> str:
        # The problems already name their config key; "invalid config" would be misleading for
        # a config that is valid but names a model this machine does not have.
        problems = self.problems
        lines = [f"the run would fail; {len(problems)} problems:", *(f"  - {p}" for p in problems)]
        return problems[0] if len(problems) == 1 else "\n".join(lines)


@dataclass
class Preflight:
    """What the checks found: `lines` to show, `problems` that would stop the run.

    Example:
        >>> Preflight().ok
        True
    """

    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def raise_if_problems(self) -> None:
        """Raise `PreflightError` listing the problems, if there are any."""
        if self.problems:
            raise PreflightError(self.problems)


def required_plugins(config: Any) -> list[tuple[str, str, str]]:
    """(group, name, config key) of every plugin the config names, in resolution order.

    Example:
        >>> from nemo_rl.config import load_config
        >>> required_plugins(load_config({"algorithm": "sft"}))[-1]
        ('loggers', 'console', 'logger.backends')
    """
    plugins = [("training_backends", config.policy.backend, "policy.backend")]
    generation = getattr(config, "generation", None)
    if generation is not None:
        plugins.append(("generation_backends", generation.backend, "generation.backend"))
    environment = getattr(config, "environment", None)
    if environment:
        plugins.append(("environments", environment, "environment"))
    estimator = getattr(config, "advantage_estimator", None)
    if estimator:
        plugins.append(("advantage_estimators", estimator, "advantage_estimator"))
    loss_name = getattr(getattr(config, "loss", None), "name", None)
    if loss_name:
        plugins.append(("policy_losses", loss_name, "loss.name"))
    # jsonl is always on (nemo_rl.infra.logging.backend_names); not imported here to stay light.
    for name in dict.fromkeys(["jsonl", *config.logger.backends]):
        plugins.append(("loggers", name, "logger.backends"))
    return plugins


def check_plugin(group: str, name: str, key: str, load: bool = True) -> str | None:
    """The problem with plugin `name` of `group`, or None: not installed, failing to import, or
    missing a package its class declares in `required_packages` (found without importing it).
    With `load=False` an installed entry point is not imported (nor its packages checked).

    Example:
        >>> check_plugin("loggers", "jsonl", "logger.backends") is None
        True
    """
    info = registry.available(group).get(name)
    if not load and info is not None and info.package != "in-process":
        return None
    try:
        plugin = registry.resolve(group, name)
    except registry.PluginNotFoundError as err:
        return str(err)  # it names the kind and the name already
    if group == "environments":  # a reward function nemo-rl cannot call fails before weights load
        from nemo_rl.environments.callable_reward import check_reward

        try:
            check_reward(plugin)
        except (TypeError, ValueError) as err:
            return f"{key}: {name}: {err}"
    missing = [
        package
        for package in getattr(plugin, "required_packages", ())
        if importlib.util.find_spec(package) is None
    ]
    if not missing:
        return None
    kind = registry.plugin_kind(group)
    install = registry.KNOWN_PROVIDERS.get((group, name)) or " ".join(missing)
    packages = ", ".join(missing)
    remove = f" (or remove {name!r} from {key})" if group == "loggers" else ""
    return (
        f"{kind} {name!r} needs the {packages} package, which is not installed: "
        f"pip install {install}{remove}"
    )


def check_model(name: str, key: str, need_weights: bool) -> tuple[str | None, str | None]:
    """(line, problem) for a model or tokenizer source: a local directory (with config.json and
    weights when `need_weights`), or a hub name that can be fetched.

    Example:
        >>> check_model("./missing", "policy.model_name", True)[1].split(" (")[0]
        "policy.model_name='./missing': no such directory"
    """
    try:
        where = hub.check_hub_name(name, key)
    except OSError as err:
        return None, str(err)
    if where != "local":
        how = {"hub": "from the HF hub", "cache": "from the HF cache (hub unreachable)"}
        return f"{key}: {name} ({how.get(where, 'from the HF cache (HF_HUB_OFFLINE)')})", None
    path = Path(name).expanduser()
    if not path.is_dir():
        return None, f"{key}={name!r} is a file, not a model directory"
    if not need_weights:
        return f"{key}: {name} (local directory)", None
    if not (path / "config.json").is_file():
        return None, f"{key}={name!r} has no config.json: not a Hugging Face model directory"
    weights = [p for p in path.iterdir() if p.suffix in WEIGHT_SUFFIXES]
    if not weights:
        return None, f"{key}={name!r} has no weight files (*.safetensors, *.bin)"
    return f"{key}: {name} (local directory, {len(weights)} weight file(s))", None


def _dataset_sources(config: Any, dataset: Any, val_dataset: Any) -> list[tuple[str, str]]:
    data = config.data
    sources = [
        ("data.dataset", dataset if dataset is not None else data.dataset),
        ("data.val_dataset", val_dataset if val_dataset is not None else data.val_dataset),
    ]
    return [(key, str(value)) for key, value in sources if isinstance(value, (str, Path))]


def preflight(
    config: Any,
    dataset: Any = None,
    val_dataset: Any = None,
    *,
    check_sources: bool = True,
    load_plugins: bool = True,
) -> Preflight:
    """Run the checks. `check_sources` adds the model, tokenizer and dataset sources (a quick hub
    probe at most, nothing downloaded); `load_plugins=False` leaves installed entry-point plugins
    unimported (a backend imports torch), so the CLI can run this pass first and a bad name or a
    missing plugin fails in seconds; the trainer's pass then imports them.

    Example: see the module docstring.
    """
    report = Preflight()
    for group, name, key in required_plugins(config):
        problem = check_plugin(group, name, key, load=load_plugins)
        if problem is not None:
            report.problems.append(problem)
    loggers = ", ".join(n for g, n, _ in required_plugins(config) if g == "loggers")
    report.lines.append(f"loggers: {loggers}")
    if not check_sources:
        return report
    policy = config.policy
    models = [(policy.model_name, "policy.model_name", True)]
    if policy.tokenizer.name:
        models.append((policy.tokenizer.name, "policy.tokenizer.name", False))
    generation = getattr(config, "generation", None)
    if generation is not None and generation.model_name not in (None, policy.model_name):
        models.append((generation.model_name, "generation.model_name", True))
    for name, key, need_weights in models:
        line, problem = check_model(str(name), key, need_weights)
        report.lines += [line] if line else []
        report.problems += [problem] if problem else []
    from nemo_rl.data.sources import DatasetSourceError, locate_dataset

    for key, source in _dataset_sources(config, dataset, val_dataset):
        try:
            report.lines.append(f"{key}: {source} ({locate_dataset(source)})")
        except DatasetSourceError as err:  # the training set is the one users think of first
            report.problems.append(str(err) if key == "data.dataset" else f"{key}: {err}")
    return report
