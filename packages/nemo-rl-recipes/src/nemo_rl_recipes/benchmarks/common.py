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


# Kernel-name fragments of each category of GPU time in `kernel_time_table` (first match wins:
# attention before matmul, as flash-attention's kernels name the cutlass types they use).
KERNEL_CATEGORIES = (
    ("attention", ("flash", "fmha", "attention")),
    ("matmul", ("gemm", "nvjet", "cutlass", "xmma", "cublas")),
    ("optimizer", ("adam", "multi_tensor")),
    ("compiled (triton)", ("triton",)),
    ("copy / cast", ("copy", "memcpy", "memset", "fill")),
)


def kernel_category(name: str) -> str:
    """The `KERNEL_CATEGORIES` entry a GPU kernel's name falls in, else `other`.

    Example:
        >>> kernel_category("sm90_xmma_gemm_bf16bf16_bf16f32"), kernel_category("vectorized_elementwise")
        ('matmul', 'other')
    """
    lowered = name.lower()
    for category, fragments in KERNEL_CATEGORIES:
        if any(fragment in lowered for fragment in fragments):
            return category
    return "other"


def kernel_time_table(kernels: dict[str, float], wall_s: float, top: int = 20) -> str:
    """A text table of GPU time per category and of the `top` kernels, from {kernel name:
    seconds}, against the wall time of the profiled work.

    Example:
        >>> print(kernel_time_table({"nvjet_gemm": 0.3, "elementwise_add": 0.1}, wall_s=0.5, top=1))
        GPU busy 0.400 s of 0.500 s wall (80.0%)
          matmul               0.300 s  75.0%
          other                0.100 s  25.0%
        top 1 kernels:
          0.300 s  matmul             nvjet_gemm
    """
    busy = sum(kernels.values())
    if busy == 0:
        return f"no GPU kernels ran in {wall_s:.3f} s (a CPU run)"
    by_category: dict[str, float] = {}
    for name, seconds in kernels.items():
        category = kernel_category(name)
        by_category[category] = by_category.get(category, 0.0) + seconds
    lines = [f"GPU busy {busy:.3f} s of {wall_s:.3f} s wall ({busy / wall_s:.1%})"]
    for category, seconds in sorted(by_category.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {category:<20} {seconds:.3f} s {seconds / busy:6.1%}")
    lines.append(f"top {top} kernels:")
    for name, seconds in sorted(kernels.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"  {seconds:.3f} s  {kernel_category(name):<18} {name[:110]}")
    return "\n".join(lines)


def profile_kernels(work: Callable[[], Any]) -> tuple[dict[str, float], float]:
    """Run `work()` once under `torch.profiler` and return ({GPU kernel name: total seconds},
    wall seconds). Only device kernels are counted: no CPU-side operator time, and no
    annotation ranges such as `Optimizer.step`, which span kernels counted on their own.

    Example:
        >>> kernels, wall = profile_kernels(lambda: sum(range(10)))
        >>> wall > 0
        True
    """
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU]
    if torch.cuda.is_available():
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as prof:
        sync()
        started = time.perf_counter()
        work()
        sync()
        wall = time.perf_counter() - started
    kernels: dict[str, float] = {}
    for event in prof.events():
        if event.device_type != torch.autograd.DeviceType.CUDA or getattr(event, "is_user_annotation", False):
            continue
        kernels[event.name] = kernels.get(event.name, 0.0) + event.device_time_total / 1e6
    return kernels, wall
