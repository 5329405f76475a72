"""The optimizer and learning-rate schedule described by `PolicyConfig` (`policy.optimizer`,
`policy.scheduler`), for any training backend.

The schedule is a pure function of the update index (`lr_multiplier`), wrapped in a `LambdaLR`
that the backend steps once per optimizer update. Warmup ramps linearly to the full rate over
`warmup_steps` updates; then `constant` stays there, while `linear` and `cosine` decay to
`min_lr_ratio * lr` at update `total_steps`.

Example:
    >>> from nemo_rl.config.policy import SchedulerConfig
    >>> cfg = SchedulerConfig(name="linear", warmup_steps=2, total_steps=6)
    >>> [lr_multiplier(k, cfg) for k in range(7)]
    [0.5, 1.0, 1.0, 0.75, 0.5, 0.25, 0.0]
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from nemo_rl.config.policy import OptimizerConfig, SchedulerConfig


def lr_multiplier(update: int, cfg: SchedulerConfig) -> float:
    """The fraction of `optimizer.lr` used at 0-based optimizer update `update`.

    Warmup: `(update + 1) / warmup_steps` for the first `warmup_steps` updates (the first update
    already learns, unlike a ramp from 0). After it, the
    decay progress is `p = (update - warmup_steps) / (total_steps - warmup_steps)` clamped to
    [0, 1]: linear gives `1 - (1 - m) p`, cosine `m + (1 - m) (1 + cos(pi p)) / 2` (m = min_lr_ratio).

    Example:
        >>> from nemo_rl.config.policy import SchedulerConfig
        >>> round(lr_multiplier(2, SchedulerConfig(name="cosine", total_steps=4, min_lr_ratio=0.2)), 6)
        0.6
    """
    if update < cfg.warmup_steps:
        return (update + 1) / cfg.warmup_steps
    if cfg.name == "constant":
        return 1.0
    if cfg.total_steps is None:
        raise ValueError(_missing_total_steps(cfg))
    decay_steps = max(1, cfg.total_steps - cfg.warmup_steps)
    progress = min(1.0, max(0.0, (update - cfg.warmup_steps) / decay_steps))
    floor = cfg.min_lr_ratio
    if cfg.name == "linear":
        return 1.0 - (1.0 - floor) * progress
    if cfg.name == "cosine":
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
    raise ValueError(
        f"policy.scheduler.name={cfg.name!r} is unknown; use constant, linear or cosine"
    )


def _missing_total_steps(cfg: SchedulerConfig) -> str:
    return (
        f"policy.scheduler.name={cfg.name!r} decays over policy.scheduler.total_steps, which is "
        "None; set it to the number of optimizer updates of the run (the trainer fills it in)"
    )


def build_optimizer(
    params: Iterable[torch.nn.Parameter], cfg: OptimizerConfig
) -> torch.optim.Optimizer:
    """AdamW, Adam or SGD over `params` with the configured hyper-parameters.

    Example:
        >>> import torch
        >>> from nemo_rl.config.policy import OptimizerConfig
        >>> opt = build_optimizer(torch.nn.Linear(2, 2).parameters(), OptimizerConfig(lr=0.1))
        >>> type(opt).__name__, opt.param_groups[0]["lr"]
        ('AdamW', 0.1)
    """
    params = [p for p in params if p.requires_grad]
    # On the GPU, one fused kernel per parameter group instead of a dozen foreach passes over
    # weights, gradients and both moments (the update of a 1.5B model is memory-bound).
    fused = bool(params) and all(p.device.type == "cuda" for p in params)
    if cfg.name == "adamw":
        return torch.optim.AdamW(
            params, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay,
            fused=fused or None,
        )
    if cfg.name == "adam":
        return torch.optim.Adam(
            params, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay,
            fused=fused or None,
        )
    if cfg.name == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise ValueError(f"policy.optimizer.name={cfg.name!r} is unknown; use adamw, adam or sgd")


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: SchedulerConfig
) -> torch.optim.lr_scheduler.LambdaLR:
    """A `LambdaLR` following `lr_multiplier`; fails now if a decaying schedule lacks total_steps.

    Example:
        >>> import torch
        >>> from nemo_rl.config.policy import SchedulerConfig
        >>> opt = torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), lr=1.0)
        >>> sched = build_scheduler(opt, SchedulerConfig(warmup_steps=4))
        >>> opt.param_groups[0]["lr"]
        0.25
    """
    if cfg.name != "constant" and cfg.total_steps is None:
        raise ValueError(_missing_total_steps(cfg))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda update: lr_multiplier(update, cfg))
