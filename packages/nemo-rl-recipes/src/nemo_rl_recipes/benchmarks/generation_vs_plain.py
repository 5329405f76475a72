"""`HFGenerationBackend` against plain transformers `generate`: same model, inputs and sampling.

Both sides load the model in the same dtype (bf16 on a GPU, float32 on the CPU, no autocast),
sample at temperature 1 with no top-k/top-p, stop at the tokenizer's EOS and generate exactly
`new_tokens` per row (`min_new_tokens`: in the backend's `SamplingParams`, and in the model's
generation config, which plain `generate` inherits). The backend decodes with its default
decoder (the static-cache decoder, with CUDA graphs on a GPU; printed with each result). After one warm-up call each, timed calls alternate (ours, plain, ours, ...) and
the median is reported, so a drift in host speed hits both sides alike.

HF decoding is bound by the host launching kernels, so host work per decoding step is what
separates the two. `--count-ops` also prints the top-level aten operations per decoding step (a
profiled call each): a count that does not depend on the machine's load. On the CPU a tiny shape
is a fair proxy for that overhead.

Usage:
    python -m nemo_rl_recipes.benchmarks.generation_vs_plain --shape tiny --device cpu \\
        --batch 64 --prompt-len 64 --new-tokens 64 --count-ops

Example:
    >>> random_prompt_ids(2, 3).shape
    torch.Size([2, 3])
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from nemo_rl_recipes.benchmarks.common import build_model, sync

# A contender generates continuations of [B, T] prompt ids and returns how many tokens it made.
Contender = Callable[[torch.Tensor], int]


def random_prompt_ids(batch: int, prompt_len: int) -> torch.Tensor:
    """Seeded random prompt ids (printable bytes of the char tokenizer), the same on both sides.

    Example:
        >>> torch.equal(random_prompt_ids(2, 4), random_prompt_ids(2, 4))
        True
    """
    return torch.randint(10, 250, (batch, prompt_len), generator=torch.Generator().manual_seed(1))


def backend_contender(model_dir: Path, device: str, new_tokens: int) -> Contender:
    """`HFGenerationBackend.generate` with its own model copy (loaded on first use)."""
    from nemo_rl.config import GenerationConfig, SamplingParams
    from nemo_rl.data import BatchedDataDict
    from nemo_rl.infra.cluster import InlineCluster
    from nemo_rl_dtensor import HFGenerationBackend

    backend = HFGenerationBackend()
    backend.setup(GenerationConfig(model_name=str(model_dir)), InlineCluster(device=device))
    # min_new_tokens: the backend samples with SamplingParams only (plain generate reads the
    # same minimum from the model's generation config).
    sampling = SamplingParams(temperature=1.0, max_new_tokens=new_tokens, min_new_tokens=new_tokens)

    def run(ids: torch.Tensor) -> int:
        lengths = torch.full((ids.shape[0],), ids.shape[1])
        out = backend.generate(BatchedDataDict(input_ids=ids, input_lengths=lengths), sampling)
        run.decoder = backend.last_decoder  # type: ignore[attr-defined]
        return int(out["lengths"].sum())

    return run


def plain_contender(model_dir: Path, device: str, new_tokens: int) -> Contender:
    """Plain `model.generate`, loaded and called as a transformers user would."""
    from transformers import AutoModelForCausalLM

    dtype = torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).to(device).eval()

    def run(ids: torch.Tensor) -> int:
        ids = ids.to(device)
        out = model.generate(
            ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens,
            do_sample=True, temperature=1.0, top_k=0, top_p=1.0,
        )
        return (out.shape[1] - ids.shape[1]) * ids.shape[0]

    return run


def aten_ops_per_step(run: Contender, ids: torch.Tensor, steps: int) -> float:
    """Top-level aten operations (those not called by another aten op) per decoding step of
    one call; the one-off work of the call is spread over its steps.

    Example:
        >>> # add, sum and item (int() reads the sum): 3 operations over 2 steps
        >>> aten_ops_per_step(lambda ids: int((ids + 1).sum()), torch.zeros(2, 2), steps=2)
        1.5
    """
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run(ids)
    top = [
        e for e in prof.events()
        if e.name.startswith("aten::")
        and (e.cpu_parent is None or not e.cpu_parent.name.startswith("aten::"))
    ]
    return len(top) / steps


def compare(
    contenders: dict[str, Contender], ids: torch.Tensor, repeats: int
) -> dict[str, dict[str, float]]:
    """Warm each contender up once, then time `repeats` alternating rounds; per contender the
    median wall seconds, its tokens/s, the median process CPU seconds and the tokens of the last
    call. On the CPU, process time is the host work itself, little changed by other processes
    competing for the cores (wall time is); on a GPU it also counts waiting for the device.

    Example:
        >>> r = compare({"a": lambda ids: 4}, torch.zeros(1, 1), repeats=3)
        >>> sorted(r["a"]), r["a"]["tokens"]
        (['cpu_s', 'generate_s', 'generate_tokens_per_s', 'tokens'], 4.0)
    """
    for run in contenders.values():
        # The first large call pays for allocator growth and kernel selection.
        run(ids)
    seconds: dict[str, list[float]] = {name: [] for name in contenders}
    cpu: dict[str, list[float]] = {name: [] for name in contenders}
    tokens: dict[str, int] = {}
    for _ in range(repeats):
        for name, run in contenders.items():
            sync()
            started, cpu_started = time.perf_counter(), time.process_time()
            tokens[name] = run(ids)
            sync()
            seconds[name].append(time.perf_counter() - started)
            cpu[name].append(time.process_time() - cpu_started)
    results = {}
    for name, times in seconds.items():
        median = statistics.median(times)
        results[name] = {"generate_tokens_per_s": tokens[name] / median, "generate_s": median,
                         "cpu_s": statistics.median(cpu[name]), "tokens": float(tokens[name])}
    return results


def run_comparison(
    model_dir: Path, device: str, batches: list[int], prompt_len: int, new_tokens: int,
    repeats: int, baseline: bool, count_ops: bool,
) -> dict[str, Any]:
    """Print and return one comparison per batch size (see the module docstring); the model
    directory must carry `min_new_tokens=new_tokens` (`common.build_model(fixed_new_tokens=)`)."""
    contenders = {"ours": backend_contender(model_dir, device, new_tokens)}
    if baseline:
        contenders["plain"] = plain_contender(model_dir, device, new_tokens)
    results: dict[str, Any] = {}
    for batch in batches:
        ids = random_prompt_ids(batch, prompt_len)
        r = compare(contenders, ids, repeats)
        results[f"generate_b{batch}"] = r["ours"]
        decoder = getattr(contenders["ours"], "decoder", "")
        print(f"HFGenerationBackend ({decoder}), batch {batch}, {prompt_len}-token prompts, {new_tokens} new "
              f"tokens: {r['ours']['generate_tokens_per_s']:,.0f} tokens/s (median of {repeats}, "
              f"{r['ours']['generate_s']:.2f} s, {r['ours']['tokens']:,.0f} tokens)", flush=True)
        if baseline:
            results[f"plain_generate_b{batch}"] = r["plain"]
            ratio = r["ours"]["generate_tokens_per_s"] / r["plain"]["generate_tokens_per_s"]
            results[f"ratio_b{batch}"] = ratio
            print(f"plain transformers generate, same inputs and settings: "
                  f"{r['plain']['generate_tokens_per_s']:,.0f} tokens/s ({r['plain']['generate_s']:.2f} s, "
                  f"{r['plain']['tokens']:,.0f} tokens); ours/plain {ratio:.3f}", flush=True)
            if torch.device(device).type == "cpu":
                print(f"process CPU time per call (median): ours {r['ours']['cpu_s']:.3f} s, plain "
                      f"{r['plain']['cpu_s']:.3f} s; plain/ours {r['plain']['cpu_s'] / r['ours']['cpu_s']:.3f}",
                      flush=True)
        if count_ops:
            ops = {name: aten_ops_per_step(run, ids, new_tokens) for name, run in contenders.items()}
            results[f"aten_ops_per_step_b{batch}"] = ops
            print("host work, top-level aten ops per decoding step: "
                  + ", ".join(f"{name} {n:.1f}" for name, n in ops.items()), flush=True)
    return results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from nemo_rl_recipes.benchmarks.backend_throughput import SHAPES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="tiny")
    parser.add_argument("--device", default=None, help="cpu or cuda; default: cuda if available")
    parser.add_argument("--out", type=Path, default=Path("/tmp/nemo_rl_bench"))
    parser.add_argument("--batch", type=int, nargs="+", default=[64])
    parser.add_argument("--prompt-len", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--count-ops", action="store_true")
    args = parser.parse_args(argv)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model_dir = build_model(args.out, args.shape, fixed_new_tokens=args.new_tokens)
    print(f"device: {device}; model {args.shape}", flush=True)
    return run_comparison(model_dir, device, args.batch, args.prompt_len, args.new_tokens,
                          args.repeats, baseline=True, count_ops=args.count_ops)


if __name__ == "__main__":
    main()
