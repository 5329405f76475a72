"""Value shaping shared by the logging backends: metric checks, non-finite handling, flattening.

Example:
    >>> from nemo_rl.infra.logging.values import flatten_hyperparams, json_safe_metrics
    >>> flatten_hyperparams({"policy": {"lr": 1e-6}, "seed": 1})
    {'policy.lr': 1e-06, 'seed': 1}
    >>> json_safe_metrics({"loss": float("nan"), "reward": 0.5})
    {'loss': None, 'reward': 0.5}
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

MetricValue = float | int


def as_metric_value(name: str, value: Any) -> MetricValue:
    """`value` as a plain int or float; 0-d tensors and numpy scalars are unwrapped with `.item()`.

    Raises TypeError naming the metric when the value is not a number (a list, a string, a
    tensor with several elements), because a silently dropped metric is worse than a failed log.

    Example:
        >>> import torch
        >>> as_metric_value("loss", torch.tensor(0.25))
        0.25
    """
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return value
    item = getattr(value, "item", None)
    numel = getattr(value, "numel", None)
    size = numel() if callable(numel) else getattr(value, "size", 1)
    if callable(item) and size == 1:
        unwrapped = item()
        if isinstance(unwrapped, bool | int | float):
            return as_metric_value(name, unwrapped)
    raise TypeError(
        f"metric {name!r} has value {value!r} of type {type(value).__name__}; metrics must be "
        "numbers (int, float, or a one-element tensor); log a reduction such as .mean().item()"
    )


def json_safe_metrics(metrics: Mapping[str, MetricValue]) -> dict[str, MetricValue | None]:
    """The metrics with NaN and infinities replaced by None, which JSON writes as null.

    Strict JSON has no NaN; writing null keeps metrics.jsonl readable by any JSON parser.
    """
    return {
        key: None if isinstance(value, float) and not math.isfinite(value) else value
        for key, value in metrics.items()
    }


def flatten_hyperparams(params: Mapping[str, Any], parent: str = "") -> dict[str, Any]:
    """Nested mappings flattened to dotted keys, as TensorBoard, W&B and MLflow expect.

    Example:
        >>> flatten_hyperparams({"a": {"b": {"c": 1}}})
        {'a.b.c': 1}
    """
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{parent}.{key}" if parent else str(key)
        if isinstance(value, Mapping):
            flat.update(flatten_hyperparams(value, name))
        else:
            flat[name] = value
    return flat


def hyperparams_as_dict(params: Any) -> dict[str, Any]:
    """A mapping or a pydantic model (a config) as a plain JSON-compatible dict.

    Example:
        >>> hyperparams_as_dict({"lr": 1e-6})
        {'lr': 1e-06}
    """
    dump = getattr(params, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    if isinstance(params, Mapping):
        return dict(params)
    raise TypeError(
        f"hyperparameters must be a dict or a pydantic config, got {type(params).__name__}; "
        "pass config.model_dump() or a dict"
    )
