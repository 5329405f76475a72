"""Helpers the side-by-side benchmarks share: a random model of a real shape, device timing and
steady-state summaries.

Example:
    >>> steady_state([9.0, 2.0, 4.0], warmup=1)
    3.0
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from nemo_rl_recipes.benchmarks.backend_throughput import SHAPES

# NVIDIA H200 (SXM) dense bf16 peak, tensor cores, no sparsity (the data sheet's 1,979 TFLOPS is
# with 2:4 sparsity).
H200_BF16_PEAK_FLOPS = 989e12


def device_name() -> str:
    """The accelerator's name, or `cpu`.

    Example:
        >>> isinstance(device_name(), str)
        True
    """
    return torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"


def sync() -> None:
    """Wait for queued GPU work, so a wall-clock reading covers it (no-op on the CPU)."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def free_memory() -> None:
    """Release what one contender left behind before the next one loads."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def build_model(out: Path, shape: str, fixed_new_tokens: int | None = None) -> Path:
    """A random model of `SHAPES[shape]` with the char tokenizer, saved under `out/shape`.

    `fixed_new_tokens` writes `min_new_tokens` into the model's generation config: HF `generate`
    fills unset options from it, so every contender that samples with HF `generate` (ours and
    TRL's) produces exactly that many tokens, EOS or not.

    Example:
        >>> # build_model(Path("/tmp/bench"), "tiny", fixed_new_tokens=16)
    """
    from nemo_rl_dtensor.testing import build_tiny_model
    from transformers import GenerationConfig

    path = build_tiny_model(out / shape, **SHAPES[shape])
    if fixed_new_tokens is not None:
        config = GenerationConfig.from_pretrained(path)
        config.min_new_tokens = fixed_new_tokens
        config.save_pretrained(path)
    return path


def steady_state(values: Sequence[float], warmup: int) -> float:
    """Mean of `values` after the first `warmup` (allocator growth, kernel selection); the mean
    of all of them if nothing is left.

    Example:
        >>> steady_state([5.0, 1.0, 2.0], warmup=1), steady_state([5.0], warmup=1)
        (1.5, 5.0)
    """
    kept = list(values[warmup:]) or list(values)
    return sum(kept) / len(kept)


class PhaseTimes:
    """Seconds spent in named calls, per step: `wrap(obj, "method", "phase")` times every call
    of that bound method (with a device sync, so queued GPU work is counted where it ran).

    Example:
        >>> class A:
        ...     def f(self):
        ...         return 1
        >>> a, times = A(), PhaseTimes()
        >>> times.wrap(a, "f", "work"); a.f()
        1
        >>> times.steps[-1]["work"] >= 0
        True
    """

    def __init__(self) -> None:
        self.steps: list[dict[str, float]] = [{}]

    def new_step(self) -> None:
        self.steps.append({})

    def wrap(self, obj: Any, method: str, phase: str, after: Callable[[Any], None] | None = None) -> None:
        inner = getattr(obj, method)

        def timed(*args: Any, **kwargs: Any) -> Any:
            sync()
            started = time.perf_counter()
            result = inner(*args, **kwargs)
            sync()
            step = self.steps[-1]
            step[phase] = step.get(phase, 0.0) + time.perf_counter() - started
            if after is not None:
                after(result)
            return result

        setattr(obj, method, timed)


def format_row(name: str, values: dict[str, float]) -> str:
    """One aligned line of a results table.

    Example:
        >>> format_row("ours", {"step_s": 1.5})
        'ours      step_s=1.500'
    """
    return f"{name:<9} " + "  ".join(f"{k}={v:.3f}" for k, v in values.items())
