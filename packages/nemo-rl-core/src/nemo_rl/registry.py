"""One registry for every kind of plugin: entry points of installed packages plus in-process ones.

Groups (entry-point group names in parentheses): training_backends (`nemo_rl.training_backends`),
generation_backends, environments, algorithms, datasets, loggers, advantage_estimators,
policy_losses, templates (config template sources), cli_commands (`nemo-rl` subcommands). A miss
names the package to install when the name is one we know, and says "not available yet" for a
planned plugin that no package provides yet (`PLANNED`, empty today).

Example:
    >>> from nemo_rl import registry
    >>> @registry.register("environments", "always_one")
    ... class AlwaysOne: ...
    >>> registry.resolve("environments", "always_one") is AlwaysOne
    True
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from typing import Any, TypeVar

GROUPS = (
    "training_backends",
    "generation_backends",
    "environments",
    "algorithms",
    "datasets",
    "loggers",
    "advantage_estimators",
    "policy_losses",
    "templates",
    "cli_commands",
)

# Which distribution provides a well-known plugin, so a miss can say what to install. Only
# packages that declare the plugin's entry point belong here (tests/test_packaging.py checks).
KNOWN_PROVIDERS: dict[tuple[str, str], str] = {
    ("training_backends", "dtensor"): "nemo-rl-dtensor",
    ("training_backends", "megatron"): "nemo-rl-megatron",
    ("generation_backends", "hf"): "nemo-rl-dtensor",
    ("generation_backends", "vllm"): "nemo-rl-vllm",
    ("environments", "math"): "nemo-rl-envs",
    ("environments", "code"): "nemo-rl-envs",
    ("loggers", "tensorboard"): "nemo-rl-core[tensorboard]",
    ("loggers", "wandb"): "nemo-rl-core[wandb]",
    ("loggers", "mlflow"): "nemo-rl-core[mlflow]",
    ("templates", "recipes"): "nemo-rl-recipes",
    ("cli_commands", "quickstart"): "nemo-rl-recipes",
}

# Plugins that are planned but not written: their packages exist only as empty skeletons, so a
# miss says "not available yet" rather than sending users to install a package that would not
# provide them. An entry moves to KNOWN_PROVIDERS when its package declares the entry point.
PLANNED: dict[tuple[str, str], str] = {}

T = TypeVar("T")
_in_process: dict[str, dict[str, Any]] = {group: {} for group in GROUPS}


class PluginNotFoundError(LookupError):
    """A plugin name that no installed package or in-process registration provides."""


class PluginNotAvailableError(PluginNotFoundError):
    """A plugin that is planned (see `PLANNED`) but not available in this version of nemo-rl."""


@dataclass(frozen=True)
class PluginInfo:
    """Where a plugin comes from: `package` is the distribution, or "in-process"."""

    group: str
    name: str
    target: str
    package: str


def plugin_kind(group: str) -> str:
    """The singular words for one plugin of `group`, for messages.

    Example:
        >>> plugin_kind("policy_losses"), plugin_kind("training_backends")
        ('policy loss', 'training backend')
    """
    singular = group[:-2] if group.endswith("sses") else group[:-1]
    return singular.replace("_", " ")


def _check_group(group: str) -> None:
    if group not in GROUPS:
        raise ValueError(f"unknown plugin group {group!r}; the groups are {', '.join(GROUPS)}")


def register(group: str, name: str) -> Callable[[T], T]:
    """Decorator registering an object under `name` in `group` for this process.

    In-process registrations win over entry points of the same name, so a user can override a
    packaged plugin in a script.
    """
    _check_group(group)

    def decorator(obj: T) -> T:
        _in_process[group][name] = obj
        return obj

    return decorator


def unregister(group: str, name: str) -> None:
    """Remove an in-process registration (tests and notebooks re-registering a name)."""
    _check_group(group)
    _in_process[group].pop(name, None)


def _entry_points(group: str) -> dict[str, metadata.EntryPoint]:
    found: dict[str, metadata.EntryPoint] = {}
    for ep in metadata.entry_points(group=f"nemo_rl.{group}"):
        found.setdefault(ep.name, ep)
    return found


def available(group: str) -> dict[str, PluginInfo]:
    """Every plugin of `group` this process can resolve, by name."""
    _check_group(group)
    infos = {
        name: PluginInfo(group, name, ep.value, ep.dist.name if ep.dist else "?")
        for name, ep in _entry_points(group).items()
    }
    for name, obj in _in_process[group].items():
        target = f"{getattr(obj, '__module__', '?')}:{getattr(obj, '__qualname__', repr(obj))}"
        infos[name] = PluginInfo(group, name, target, "in-process")
    return dict(sorted(infos.items()))


def resolve(group: str, name: str) -> Any:
    """The object registered as `name` in `group`; raises `PluginNotFoundError` naming the fix.

    A name of the form `module:attribute` that is not registered is imported instead (as an
    entry point's value would be), so `environment: my_rewards:exact` needs no registration.
    """
    _check_group(group)
    if name in _in_process[group]:
        return _in_process[group][name]
    eps = _entry_points(group)
    if name in eps:
        try:
            return eps[name].load()
        except ImportError as err:
            package = eps[name].dist.name if eps[name].dist else "its package"
            raise PluginNotFoundError(
                f"{plugin_kind(group)} {name!r} is installed by {package} but failed to "
                f"import ({err}); install its dependencies: pip install {package}"
            ) from err
    if ":" in name:
        return import_object(name, plugin_kind(group))
    kind = plugin_kind(group)
    names = sorted(set(eps) | set(_in_process[group]))
    planned = PLANNED.get((group, name))
    if planned:
        raise PluginNotAvailableError(
            f"{kind} {name!r} is not available yet (planned in {planned}); available: "
            f"{', '.join(names) or 'none'}"
        )
    provider = KNOWN_PROVIDERS.get((group, name))
    if provider:
        raise PluginNotFoundError(f"{kind} {name!r} is not installed: pip install {provider}")
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise PluginNotFoundError(
        f"{kind} {name!r} is not registered; {hint}installed: {', '.join(names) or 'none'} "
        f"(register one with @nemo_rl.registry.register({group!r}, {name!r}) or an entry point "
        f"in the 'nemo_rl.{group}' group)"
    )


def import_object(spec: str, kind: str = "object") -> Any:
    """The attribute `attr` of module `module` for `spec` = "module:attr" (dotted both sides).

    The working directory is searched first, as `python -m` does, because the `nemo-rl` console
    script does not put it on `sys.path` and a reward module usually sits next to the config.

    Example:
        >>> import_object("os.path:join").__name__
        'join'
        >>> import_object("os.path:no_such", "environment")
        Traceback (most recent call last):
        ...
        nemo_rl.registry.PluginNotFoundError: environment 'os.path:no_such': module 'os.path' has no attribute 'no_such'
    """
    import importlib
    import os
    import sys

    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise PluginNotFoundError(
            f"{kind} {spec!r}: write module:attribute, e.g. my_rewards:exact_match"
        )
    added = os.getcwd() not in sys.path
    if added:
        sys.path.insert(0, os.getcwd())
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as err:
        hint = (
            f"write the module's name, {module_name[:-3]}:{attribute}, not its file name"
            if module_name.endswith(".py")
            else "run from the directory that holds it, or add that directory to PYTHONPATH"
        )
        raise PluginNotFoundError(
            f"{kind} {spec!r}: cannot import module {module_name!r} ({err}); {hint}"
        ) from err
    finally:
        if added:
            sys.path.remove(os.getcwd())
    for part in attribute.split("."):
        if not hasattr(obj, part):
            raise PluginNotFoundError(
                f"{kind} {spec!r}: module {module_name!r} has no attribute {attribute!r}"
            )
        obj = getattr(obj, part)
    return obj
