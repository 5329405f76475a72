"""SFT training throughput, ours vs a plain transformers loop, in one process on one device.

Both sides train the same random model (default: the Qwen2.5-1.5B shape; fp32 master weights,
bf16 autocast on the GPU, activation checkpointing, AdamW lr 1e-5 without weight decay, gradient
clipping at 1.0) on the same number of tokens per optimizer step: `--rows` rows of `--seq-len`
tokens, `--microbatch-rows` rows per micro-batch. The plain loop feeds dense rows to
`model(input_ids, labels=input_ids)` with transformers' default attention (SDPA); ours (the
dtensor backend with sequence packing, `max_tokens_per_microbatch = microbatch_rows x seq_len`)
gets 2 x rows documents whose lengths pair up to exactly `seq_len`, packed into one row per
micro-batch with per-document `position_ids`, so no token is padding, and its default attention
(`policy.dtensor.attention: auto`, varlen on a GPU) attends within each document only.

Model-FLOPs utilisation (MFU) counts the useful FLOPs of a step (no activation recomputation, no
padding), divided by the step time and the device's dense bf16 peak (NVIDIA H200: 989 TFLOPs/s):

    FLOPs = 6 * N * T + 12 * L * d_attn * sum over sequences of s * (s + 1) / 2

with N the parameters that take part in matmuls (every nn.Linear, the LM head included; the
embedding lookup is not a matmul), T the trained tokens, L the layers, d_attn = heads x head_dim,
and s the length of each attended sequence (a packed document, or a whole dense row): causal
attention reads s * (s + 1) / 2 query-key pairs, each costing 2 FLOPs in Q K^T and 2 in A V
forward, times 3 for forward plus backward.

Usage:
    python -m nemo_rl_recipes.benchmarks.sft_vs_plain --rows 8 --seq-len 2048 --steps 4
    python -m nemo_rl_recipes.benchmarks.sft_vs_plain --microbatch-rows 8 --no-activation-checkpointing
    python -m nemo_rl_recipes.benchmarks.sft_vs_plain --compile --profile   # where the time goes
    python -m nemo_rl_recipes.benchmarks.sft_vs_plain --tiny   # CPU smoke run

Example:
    >>> attention_pairs([3, 1])  # 3*4/2 + 1*2/2
    7
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from nemo_rl_recipes.benchmarks.common import (
    H200_BF16_PEAK_FLOPS,
    build_model,
    device_name,
    format_row,
    free_memory,
    kernel_time_table,
    profile_kernels,
    steady_state,
    sync,
)


def attention_pairs(lengths: list[int]) -> int:
    """Query-key pairs causal attention computes over sequences of these lengths.

    Example:
        >>> attention_pairs([2048])
        2098176
    """
    return sum(s * (s + 1) // 2 for s in lengths)


def matmul_params(model: torch.nn.Module) -> int:
    """Parameters that take part in matmuls: every nn.Linear's weight (a tied LM head counts,
    as its matmul is real work; the embedding lookup is not).

    Example:
        >>> matmul_params(torch.nn.Sequential(torch.nn.Embedding(10, 4), torch.nn.Linear(4, 3)))
        12
    """
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))


def step_flops(n_matmul: int, layers: int, d_attn: int, tokens: int, lengths: list[int]) -> float:
    """Useful training FLOPs of one step (the formula of the module docstring).

    Example:
        >>> step_flops(100, 1, 2, tokens=3, lengths=[3])  # 6*100*3 + 12*1*2*6
        1944.0
    """
    return 6.0 * n_matmul * tokens + 12.0 * layers * d_attn * attention_pairs(lengths)


def paired_lengths(rows: int, seq_len: int, seed: int = 0) -> list[int]:
    """2 x rows document lengths; documents 2k and 2k+1 add up to exactly `seq_len`.

    Example:
        >>> lengths = paired_lengths(2, 100)
        >>> len(lengths), sum(lengths)
        (4, 200)
    """
    gen = torch.Generator().manual_seed(seed)
    low, high = max(2, seq_len // 8), max(3, seq_len - seq_len // 8)
    firsts = torch.randint(low, high, (rows,), generator=gen).tolist()
    return [n for a in firsts for n in (a, seq_len - a)]


def _documents(lengths: list[int], width: int, vocab: int) -> Any:
    from nemo_rl.data import BatchedDataDict

    gen = torch.Generator().manual_seed(1)
    ids = torch.zeros(len(lengths), width, dtype=torch.long)
    mask = torch.zeros(len(lengths), width)
    for row, n in enumerate(lengths):
        ids[row, :n] = torch.randint(10, vocab, (n,), generator=gen)
        mask[row, 1:n] = 1.0  # the first token of a document is not predicted
    return BatchedDataDict(input_ids=ids, input_lengths=torch.tensor(lengths), token_mask=mask,
                           sample_mask=torch.ones(len(lengths)))


def run_ours(model: Path, args: argparse.Namespace, vocab: int) -> dict[str, Any]:
    """`args.steps` optimizer steps of the dtensor backend on packed documents."""
    from nemo_rl.algorithms.sft import NLLLoss
    from nemo_rl.config import PolicyConfig
    from nemo_rl.infra.cluster import InlineCluster
    from nemo_rl_dtensor import DTensorTrainingBackend

    gpu = torch.cuda.is_available()
    lengths = paired_lengths(args.rows, args.seq_len)
    packing = not args.no_packing
    batch = _documents(lengths if packing else [args.seq_len] * args.rows, args.seq_len, vocab)
    backend = DTensorTrainingBackend()
    backend.setup(PolicyConfig(
        model_name=str(model), precision="bfloat16" if gpu else "float32",
        activation_checkpointing=not args.no_activation_checkpointing,
        optimizer={"lr": 1e-5, "weight_decay": 0.0}, max_grad_norm=1.0,
        train_micro_batch_size=args.microbatch_rows, train_global_batch_size=batch.size,
        max_total_sequence_length=args.seq_len, dtensor={"attention": args.attention, "compile": args.compile},
        **({"sequence_packing": True,
            "max_tokens_per_microbatch": args.seq_len * args.microbatch_rows} if packing else {}),
    ), InlineCluster())
    steps, norms = [], []
    try:
        for _ in range(args.steps):
            sync()
            started = time.perf_counter()
            metrics = backend.train_step(batch, NLLLoss())
            sync()
            steps.append(time.perf_counter() - started)
            norms.append(metrics["grad_norm"])
        if args.profile:  # one more step, not timed with the others: the profiler slows it
            kernels, wall = profile_kernels(lambda: backend.train_step(batch, NLLLoss()))
            print(f"nemo-rl, one profiled step after the timed ones:\n"
                  f"{kernel_time_table(kernels, wall)}", flush=True)
    finally:
        backend.shutdown()
    return {"step_s": steps, "grad_norms": norms, "tokens": int(batch["input_lengths"].sum()),
            "sequence_lengths": batch["input_lengths"].tolist()}


def run_plain(model: Path, args: argparse.Namespace, vocab: int) -> dict[str, Any]:
    """The baseline: forward with labels, backward per micro-batch, clip, AdamW step."""
    from transformers import AutoModelForCausalLM

    gpu = torch.cuda.is_available()
    device = torch.device("cuda" if gpu else "cpu")
    net = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32).to(device)
    if not args.no_activation_checkpointing:  # the same non-reentrant checkpointing as ours
        from nemo_rl_dtensor.model_loading import enable_activation_checkpointing

        enable_activation_checkpointing(net)
    net.config.use_cache = False
    net.train()
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-5, weight_decay=0.0)
    gen = torch.Generator().manual_seed(1)
    rows = torch.randint(10, vocab, (args.rows, args.seq_len), generator=gen).to(device)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if gpu else torch.autocast("cpu", enabled=False)
    steps, norms = [], []
    for _ in range(args.steps):
        sync()
        started = time.perf_counter()
        for micro in rows.split(args.microbatch_rows):
            with autocast:
                loss = net(input_ids=micro, labels=micro).loss * (len(micro) / args.rows)
            loss.backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)))
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        sync()
        steps.append(time.perf_counter() - started)
    del net, optimizer
    return {"step_s": steps, "grad_norms": norms, "tokens": args.rows * args.seq_len,
            "sequence_lengths": [args.seq_len] * args.rows}


def summarise(name: str, result: dict[str, Any], flops_of: Any, warmup: int, peak: float | None) -> dict[str, float]:
    step = steady_state(result["step_s"], warmup)
    flops = flops_of(result["tokens"], result["sequence_lengths"])
    summary = {"step_s": step, "tokens_per_s": result["tokens"] / step, "tflops_per_s": flops / step / 1e12}
    if peak:
        summary["mfu"] = flops / step / peak
    print(format_row(name, summary), flush=True)
    print(f"{'':<9} step times {[round(s, 3) for s in result['step_s']]}; grad norms "
          f"{[round(float(n), 4) for n in result['grad_norms']]}", flush=True)
    return summary


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="qwen2.5-1.5b")
    parser.add_argument("--rows", type=int, default=8, help="rows of --seq-len tokens per step")
    parser.add_argument("--microbatch-rows", type=int, default=1,
                        help="rows per micro-batch (ours: a packed row of this many x seq-len tokens)")
    parser.add_argument("--attention", default="auto", choices=("auto", "varlen", "sdpa", "eager"),
                        help="ours: policy.dtensor.attention")
    parser.add_argument("--compile", action="store_true",
                        help="ours: policy.dtensor.compile (torch.compile each decoder layer; the "
                        "plain loop stays eager)")
    parser.add_argument("--seq-len", type=int, default=2048)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--no-packing", action="store_true", help="ours on dense rows too")
    parser.add_argument("--no-activation-checkpointing", action="store_true")
    parser.add_argument("--profile", action="store_true",
                        help="ours: one extra step under torch.profiler; prints GPU time per "
                        "kernel category and the top kernels")
    parser.add_argument("--tiny", action="store_true", help="CPU smoke run: tiny shape, 2 rows x 64 tokens, 3 steps")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.tiny:
        args.shape, args.rows, args.seq_len, args.steps, args.warmup = "tiny", 2, 64, 3, 1
    if args.steps <= args.warmup:
        raise SystemExit(f"--steps ({args.steps}) must exceed --warmup ({args.warmup})")
    work = args.out or Path(tempfile.mkdtemp(prefix="sft_vs_plain_"))
    model = build_model(work, args.shape)
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(model)
    with torch.device("meta"):
        from transformers import AutoModelForCausalLM

        n_matmul = matmul_params(AutoModelForCausalLM.from_config(config))
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    d_attn = config.num_attention_heads * head_dim

    def flops_of(tokens: int, lengths: list[int]) -> float:
        return step_flops(n_matmul, config.num_hidden_layers, d_attn, tokens, lengths)

    on_h200 = "H200" in device_name()
    peak = H200_BF16_PEAK_FLOPS if on_h200 else None
    print(f"device: {device_name()}; torch {torch.__version__}; {args.shape}: {n_matmul / 1e6:,.1f}M "
          f"matmul parameters; {args.rows} x {args.seq_len} tokens per step"
          f"{'' if peak else '; MFU only printed on an H200 (its peak is the one known here)'}", flush=True)
    results: dict[str, Any] = {"device": device_name(), "args": {k: str(v) for k, v in vars(args).items()}}
    results["plain"] = run_plain(model, args, config.vocab_size)
    plain = summarise("plain", results["plain"], flops_of, args.warmup, peak)
    free_memory()
    results["ours"] = run_ours(model, args, config.vocab_size)
    ours = summarise("nemo-rl", results["ours"], flops_of, args.warmup, peak)
    free_memory()
    ratio = ours["tokens_per_s"] / plain["tokens_per_s"]
    results.update(summary={"ours": ours, "plain": plain}, tokens_per_s_ratio=ratio)
    print(f"tokens/s, ours / plain loop: {ratio:.3f}"
          + (f"; MFU ours {ours['mfu']:.1%}, plain {plain['mfu']:.1%}" if peak else ""), flush=True)
    (work / "sft_vs_plain.json").write_text(json.dumps(results, indent=2))
    print(f"results: {work / 'sft_vs_plain.json'}")
    return results


if __name__ == "__main__":
    main()
