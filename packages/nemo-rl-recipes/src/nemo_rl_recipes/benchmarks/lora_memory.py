"""Peak accelerator memory and training tokens/s of the dtensor backend with and without LoRA.

Builds a random model of a real architecture's shape (no hub access needed), then trains it a few
steps on random tokens twice, full weights and LoRA (default targets), one after the other in
the same process, and prints for each: trainable parameters, peak allocated memory (the
allocator's high-water mark since setup started) and tokens/s.

Usage:
    python -m nemo_rl_recipes.benchmarks.lora_memory --shape qwen2.5-1.5b --out /tmp/bench

Example:
    >>> from nemo_rl_recipes.benchmarks.lora_memory import MODES
    >>> MODES
    ('full', 'lora')
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from pathlib import Path
from typing import Any

import torch

MODES = ("full", "lora")


def bench_mode(
    mode: str, model_dir: Path, batch: int, seq_len: int, steps: int, rank: int = 16
) -> dict[str, Any]:
    """Train `steps` timed updates (after one warm-up) with full weights or LoRA; return figures.

    Example:
        >>> # bench_mode("lora", Path("/tmp/qwen2.5-1.5b"), batch=8, seq_len=1024, steps=3)
    """
    from nemo_rl.config import PolicyConfig
    from nemo_rl.infra.cluster import InlineCluster
    from nemo_rl_dtensor import DTensorTrainingBackend

    from nemo_rl_recipes.benchmarks.backend_throughput import (
        random_training_batch,
        timed_train_steps,
    )

    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    lora = {"enabled": True, "rank": rank, "alpha": 2.0 * rank} if mode == "lora" else {}
    backend = DTensorTrainingBackend()
    backend.setup(
        PolicyConfig(model_name=str(model_dir), activation_checkpointing=True,
                     train_micro_batch_size=batch, optimizer={"lr": 1e-5}, lora=lora),
        InlineCluster(device="cuda" if cuda else "cpu"),
    )
    seconds, losses = timed_train_steps(backend, random_training_batch(batch, seq_len), steps)
    counts = backend.parameter_counts()
    peak = torch.cuda.max_memory_allocated() / 1024**3 if cuda else None
    backend.shutdown()
    del backend
    gc.collect()
    return {
        "mode": mode, "trainable_params": counts["trainable"], "total_params": counts["total"],
        "peak_memory_gib": peak, "train_tokens_per_s": batch * seq_len / seconds,
        "train_step_s": seconds, "losses": losses,
    }


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    from nemo_rl_dtensor.testing import build_tiny_model

    from nemo_rl_recipes.benchmarks.backend_throughput import SHAPES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="qwen2.5-1.5b")
    parser.add_argument("--out", type=Path, default=Path("/tmp/nemo_rl_bench"))
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--rank", type=int, default=16)
    args = parser.parse_args(argv)

    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    model_dir = args.out / args.shape
    started = time.perf_counter()
    build_tiny_model(model_dir, **SHAPES[args.shape])
    print(f"device: {device}; model {args.shape} built in {time.perf_counter() - started:.0f} s",
          flush=True)
    precision = "bf16" if torch.cuda.is_available() else "fp32"
    results = []
    for mode in MODES:
        r = bench_mode(mode, model_dir, args.batch, args.seq_len, args.steps, args.rank)
        results.append(r)
        peak = "n/a (CPU)" if r["peak_memory_gib"] is None else f"{r['peak_memory_gib']:.1f} GiB"
        print(f"{mode:>4}: {r['trainable_params']:,} of {r['total_params']:,} parameters train; "
              f"peak memory {peak}; {r['train_tokens_per_s']:,.0f} tokens/s "
              f"({r['train_step_s']:.2f} s/step, batch {args.batch}x{args.seq_len}, {precision}, "
              f"act. ckpt, AdamW{'' if mode == 'full' else f', LoRA rank {args.rank}'})",
              flush=True)
    (args.out / f"lora_{args.shape}.json").write_text(json.dumps(
        {"device": device, "shape": args.shape, "results": results}, indent=2))
    return results


if __name__ == "__main__":
    main()
