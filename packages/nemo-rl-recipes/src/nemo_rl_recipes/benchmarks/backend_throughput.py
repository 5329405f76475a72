"""Throughput of the dtensor training backend and the HF generation backend on one device.

Builds a random model of a real architecture's shape (no hub access needed), then prints:
training tokens/s (bf16 on GPU, activation checkpointing, AdamW) and generation tokens/s
(HF `generate` through `HFGenerationBackend`; `--baseline` also times plain `generate` with the
same settings, see `generation_vs_plain`), plus the colocated refit time.

Usage:
    python -m nemo_rl_recipes.benchmarks.backend_throughput --shape qwen2.5-1.5b --out /tmp/bench

Example:
    >>> SHAPES["qwen2.5-0.5b"]["hidden_size"]
    896
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch

SHAPES = {
    "tiny": dict(arch="qwen2", hidden_size=128, layers=2, heads=4),
    "qwen2.5-0.5b": dict(arch="qwen2", vocab_size=151936, hidden_size=896, layers=24, heads=14,
                         kv_heads=2, intermediate_size=4864),
    "qwen2.5-1.5b": dict(arch="qwen2", vocab_size=151936, hidden_size=1536, layers=28, heads=12,
                         kv_heads=2, intermediate_size=8960),
}


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def random_training_batch(batch: int, seq_len: int) -> Any:
    """`batch` rows of `seq_len` random tokens (seeded), every token trained on.

    Example:
        >>> random_training_batch(2, 5)["input_ids"].shape
        torch.Size([2, 5])
    """
    from nemo_rl.data import BatchedDataDict

    gen = torch.Generator().manual_seed(0)
    return BatchedDataDict(
        input_ids=torch.randint(10, 250, (batch, seq_len), generator=gen),
        input_lengths=torch.full((batch,), seq_len),
        token_mask=torch.ones(batch, seq_len),
        sample_mask=torch.ones(batch),
    )


def timed_train_steps(backend: Any, data: Any, steps: int) -> tuple[float, list[float]]:
    """(seconds per step over `steps` SFT updates after one untimed warm-up, every loss).

    Example:
        >>> # seconds, losses = timed_train_steps(backend, random_training_batch(8, 1024), 3)
    """
    from nemo_rl.algorithms.sft import NLLLoss

    losses = [backend.train_step(data, NLLLoss())["loss"]]  # warm-up (allocator, kernels)
    _sync()
    started = time.perf_counter()
    for _ in range(steps):
        losses.append(backend.train_step(data, NLLLoss())["loss"])
    _sync()
    return (time.perf_counter() - started) / steps, losses


def bench_training(model_dir: Path, batch: int, seq_len: int, steps: int) -> dict[str, float]:
    from nemo_rl.config import PolicyConfig
    from nemo_rl.infra.cluster import InlineCluster
    from nemo_rl_dtensor import DTensorTrainingBackend

    backend = DTensorTrainingBackend()
    backend.setup(
        PolicyConfig(model_name=str(model_dir), activation_checkpointing=True,
                     train_micro_batch_size=batch, dtensor={"offload_reference_to_cpu": True}),
        InlineCluster(),
    )
    seconds, _ = timed_train_steps(backend, random_training_batch(batch, seq_len), steps)
    started = time.perf_counter()
    exported = sum(t.numel() for _, t in backend.export_weights())
    export_s = time.perf_counter() - started
    backend.shutdown()
    return {"train_tokens_per_s": batch * seq_len / seconds, "train_step_s": seconds,
            "export_weights_s": export_s, "params": float(exported)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="qwen2.5-0.5b")
    parser.add_argument("--out", type=Path, default=Path("/tmp/nemo_rl_bench"))
    parser.add_argument("--train-batch", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=1024)
    parser.add_argument("--train-steps", type=int, default=3)
    parser.add_argument("--gen-batch", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--prompt-len", type=int, default=128)
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--baseline", action="store_true", help="also time plain HF generate")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed generate calls per side (alternating); the median is reported")
    parser.add_argument("--count-ops", action="store_true",
                        help="also print top-level aten ops per decoding step (host work)")
    parser.add_argument("--skip-training", action="store_true")
    args = parser.parse_args(argv)

    from nemo_rl_recipes.benchmarks.common import build_model
    from nemo_rl_recipes.benchmarks.generation_vs_plain import run_comparison

    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    started = time.perf_counter()
    # min_new_tokens in the model's generation config: every generate call (ours and plain)
    # makes exactly new_tokens per row, EOS or not, so both sides time the same work.
    model_dir = build_model(args.out, args.shape, fixed_new_tokens=args.new_tokens)
    print(f"device: {device}; model {args.shape} built in {time.perf_counter() - started:.0f} s", flush=True)
    results = {"device": device, "shape": args.shape}
    if not args.skip_training:
        results.update(bench_training(model_dir, args.train_batch, args.seq_len, args.train_steps))
        print(f"training (bf16 autocast on GPU, act. ckpt, AdamW), batch {args.train_batch}x{args.seq_len}: "
          f"{results['train_tokens_per_s']:,.0f} tokens/s ({results['train_step_s']:.2f} s/step); "
              f"export_weights {results['export_weights_s']:.2f} s for {results['params'] / 1e9:.2f}B params",
              flush=True)
    torch.cuda.empty_cache() if torch.cuda.is_available() else None
    results.update(run_comparison(
        model_dir, "cuda" if torch.cuda.is_available() else "cpu", args.gen_batch, args.prompt_len,
        args.new_tokens, args.repeats, baseline=args.baseline, count_ops=args.count_ops,
    ))
    (args.out / f"bench_{args.shape}.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
