"""GRPO step time, ours vs TRL's `GRPOTrainer`, in one process on one device.

Both trainers get the same random model (default: the Qwen2.5-1.5B shape; fp32 master weights,
bf16 autocast on the GPU), the same chat prompts, group size, completion length (exactly
`--completion-len` tokens: `generation.min_new_tokens` on our side, `min_new_tokens` in the
model's generation config, which HF `generate` honours, on TRL's), learning rate (constant, no
weight decay), micro-batch, activation checkpointing, no KL term, and transformers' model code
for sampling: TRL calls `generate`; ours runs the `hf` backend, whose decoder is chosen by
`--decoder` (`auto`: its static-cache decoder with CUDA graphs on a bf16 copy of the weights;
`generate`: transformers' `generate` on that copy; both to run ours twice). One step is one
rollout of prompts x generations sequences and one optimizer update over all of them.

Printed: per-step times of both; for ours the phases (generation, log-probs, training, refit)
and for TRL its generation; completion tokens per second of step time; the steady-state ratio
(warm-up steps excluded); and each side's gradient norms, which must be finite.

Usage (TRL comes from the `bench` extra: `pip install 'nemo-rl-recipes[bench]'`):
    python -m nemo_rl_recipes.benchmarks.grpo_vs_trl --steps 6 --warmup 2
    python -m nemo_rl_recipes.benchmarks.grpo_vs_trl --tiny   # CPU smoke run, seconds

Example:
    >>> s = Settings(prompts=2, generations=4, micro_batch=4)
    >>> s.sequences, s.accumulation
    (8, 2)
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from nemo_rl_recipes.benchmarks.common import (
    PhaseTimes,
    build_model,
    device_name,
    format_row,
    free_memory,
    steady_state,
    sync,
)

OUR_PHASES = ("generation", "logprobs", "training", "refit")


@dataclass
class Settings:
    """What both trainers are given (see the module docstring).

    Example:
        >>> Settings().sequences
        64
    """

    shape: str = "qwen2.5-1.5b"
    prompts: int = 8
    generations: int = 8
    completion_len: int = 256
    lr: float = 1e-6
    micro_batch: int = 8
    steps: int = 6
    warmup: int = 2
    activation_checkpointing: bool = True

    @property
    def sequences(self) -> int:
        return self.prompts * self.generations

    @property
    def accumulation(self) -> int:
        if self.sequences % self.micro_batch:
            raise ValueError(
                f"--micro-batch {self.micro_batch} must divide prompts x generations = {self.sequences}"
            )
        return self.sequences // self.micro_batch

    @property
    def gpu(self) -> bool:
        return torch.cuda.is_available()


def prompt_rows(count: int) -> list[dict[str, str]]:
    """`count` distinct arithmetic questions (same text for both trainers).

    Example:
        >>> prompt_rows(1)
        [{'prompt': 'Question 0: what is 0 + 7? Think, then answer.', 'answer': '7'}]
    """
    return [
        {"prompt": f"Question {i}: what is {i} + {7 * i + 7}? Think, then answer.",
         "answer": str(8 * i + 7)}
        for i in range(count)
    ]


def checksum_reward(prompt: Any, response: str, **_: Any) -> float:
    """A reward in [0, 1) that differs between responses, so advantages and gradients are real.

    Example:
        >>> 0.0 <= checksum_reward("p", "some text") < 1.0
        True
    """
    return (zlib.crc32(response.encode()) % 1000) / 1000


def grad_norms_ok(norms: list[float]) -> bool:
    """True when every step reported a finite, non-zero gradient norm.

    Example:
        >>> grad_norms_ok([0.5, 1.0]), grad_norms_ok([0.5, float("nan")]), grad_norms_ok([])
        (True, False, False)
    """
    return bool(norms) and all(math.isfinite(n) and n > 0 for n in norms)


# --------------------------------------------------------------------------------------- ours
def run_ours(
    model: Path, settings: Settings, run_dir: Path, decoder: str = "auto"
) -> dict[str, Any]:
    """N steps of nemo-rl's GRPOTrainer with the hf backend's `decoder`; returns step times,
    phase times, tokens, grad norms and how generation decoded."""
    from nemo_rl import GRPOTrainer
    from nemo_rl.trainers.callbacks import Callback

    times = PhaseTimes()
    steps: list[float] = []
    norms: list[float] = []
    generated: list[float] = [0.0]
    decoded: list[str] = []

    class Recorder(Callback):
        def on_fit_start(self, trainer: Any) -> None:
            times.wrap(trainer.generation, "generate", "generation",
                       after=lambda out: generated.__setitem__(-1, generated[-1] + float(out["lengths"].sum())))
            times.wrap(trainer.policy, "get_logprobs", "logprobs")
            times.wrap(trainer.policy, "train_step", "training")
            times.wrap(trainer.generation, "update_weights", "refit")
            self.started = 0.0

        def on_step_start(self, trainer: Any, step: int) -> None:
            sync()
            self.started = time.perf_counter()

        def on_step_end(self, trainer: Any, metrics: dict[str, float]) -> None:
            sync()
            steps.append(time.perf_counter() - self.started)
            norms.append(float(metrics.get("grad_norm", float("nan"))))
            decoded.append(trainer.generation.last_decoder)
            times.new_step()
            generated.append(0.0)

    trainer = GRPOTrainer.from_pretrained(
        str(model), run_dir=run_dir, num_prompts_per_step=settings.prompts,
        num_generations_per_prompt=settings.generations, max_num_steps=settings.steps,
        val_at_end=False, val_period=0, **{
            "generation.max_new_tokens": settings.completion_len,
            "generation.min_new_tokens": settings.completion_len,
            "generation.backend_options": {"decoder": decoder},
            "generation.temperature": 1.0,
            "policy.precision": "bfloat16" if settings.gpu else "float32",
            "policy.activation_checkpointing": settings.activation_checkpointing,
            "policy.train_micro_batch_size": settings.micro_batch,
            "policy.train_global_batch_size": settings.sequences,
            "policy.max_total_sequence_length": settings.completion_len + 128,
            "policy.optimizer.lr": settings.lr, "policy.optimizer.weight_decay": 0.0,
            "loss.kl_penalty": 0.0, "checkpointing.enabled": False,
        },
    )
    try:
        trainer.fit(dataset=prompt_rows(settings.prompts * settings.steps),
                    reward_fn=checksum_reward, callbacks=[Recorder()])
    finally:
        trainer.close()
    return {"step_s": steps, "phases": times.steps[: len(steps)], "grad_norms": norms,
            "completion_tokens": generated[: len(steps)], "decoder": sorted(set(decoded))}


# ---------------------------------------------------------------------------------------- TRL
def run_trl(model: Path, settings: Settings, out_dir: Path) -> dict[str, Any]:
    """N steps of TRL's GRPOTrainer with the same settings (one optimizer step = one rollout of
    prompts x generations sequences, `gradient_accumulation_steps` micro-batches)."""
    from datasets import Dataset
    from transformers import AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    tokenizer = AutoTokenizer.from_pretrained(model)
    rows = prompt_rows(settings.prompts * settings.steps)
    dataset = Dataset.from_list(
        [{"prompt": [{"role": "user", "content": r["prompt"]}], "answer": r["answer"]} for r in rows]
    )

    def reward(prompts: list[Any], completions: list[Any], **_: Any) -> list[float]:
        return [checksum_reward(None, c[0]["content"] if isinstance(c, list) else c) for c in completions]

    config = GRPOConfig(
        output_dir=str(out_dir), report_to="none", save_strategy="no", logging_steps=1,
        max_steps=settings.steps, per_device_train_batch_size=settings.micro_batch,
        gradient_accumulation_steps=settings.accumulation, num_generations=settings.generations,
        max_completion_length=settings.completion_len, learning_rate=settings.lr,
        lr_scheduler_type="constant", weight_decay=0.0, max_grad_norm=1.0, beta=0.0,
        loss_type="dapo", temperature=1.0, use_vllm=False, bf16=settings.gpu,
        use_cpu=not settings.gpu, gradient_checkpointing=settings.activation_checkpointing,
        model_init_kwargs={"dtype": "float32"}, shuffle_dataset=False, seed=0,
        disable_tqdm=True,
    )
    times = PhaseTimes()
    steps: list[float] = []
    norms: list[float] = []

    class Recorder(TrainerCallback):
        started = 0.0

        def on_step_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            sync()
            self.started = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            sync()
            steps.append(time.perf_counter() - self.started)
            times.new_step()

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            if logs and "grad_norm" in logs:
                norms.append(float(logs["grad_norm"]))

    trainer = GRPOTrainer(model=str(model), reward_funcs=reward, args=config,
                          train_dataset=dataset, processing_class=tokenizer, callbacks=[Recorder()])
    # TRL's generation (HF generate plus its padding), timed per call like ours.
    times.wrap(trainer, "_generate_single_turn", "generation")
    trainer.train()
    del trainer
    return {"step_s": steps, "phases": times.steps[: len(steps)], "grad_norms": norms,
            "completion_tokens": [float(settings.sequences * settings.completion_len)] * len(steps)}


# ------------------------------------------------------------------------------------ report
def summarise(
    name: str, result: dict[str, Any], settings: Settings, phases: tuple[str, ...] = ()
) -> dict[str, float]:
    """Steady-state step time, phase times (`phases` always, 0 when never entered, e.g. no refit
    with a shared module) and completion tokens/s of one side."""
    step = steady_state(result["step_s"], settings.warmup)
    summary = {"step_s": step,
               "tokens_per_s": steady_state(result["completion_tokens"], settings.warmup) / step}
    seen = {p for s in result["phases"] for p in s}
    for phase in [*phases, *sorted(seen - set(phases))]:
        summary[f"{phase}_s"] = steady_state([s.get(phase, 0.0) for s in result["phases"]], settings.warmup)
    print(format_row(name, summary), flush=True)
    print(f"{'':<9} step times {[round(s, 3) for s in result['step_s']]}; grad norms "
          f"{[round(n, 4) for n in result['grad_norms']]} (finite: {grad_norms_ok(result['grad_norms'])})",
          flush=True)
    return summary


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = Settings()
    parser.add_argument("--shape", default=defaults.shape)
    for field in ("prompts", "generations", "completion_len", "micro_batch", "steps", "warmup"):
        parser.add_argument(f"--{field.replace('_', '-')}", type=int, default=getattr(defaults, field))
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--no-activation-checkpointing", action="store_true")
    parser.add_argument("--tiny", action="store_true",
                        help="CPU smoke run: tiny shape, 2 prompts x 4 generations x 8 tokens, 3 steps")
    parser.add_argument("--skip", choices=("ours", "trl"), help="run only the other side")
    parser.add_argument("--decoder", choices=("auto", "generate", "both"), default="auto",
                        help="our hf backend's decoder (see the module docstring)")
    parser.add_argument("--out", type=Path, default=None, help="work directory (default: a temp dir)")
    args = parser.parse_args(argv)
    settings = Settings(
        shape=args.shape, prompts=args.prompts, generations=args.generations,
        completion_len=args.completion_len, lr=args.lr, micro_batch=args.micro_batch,
        steps=args.steps, warmup=args.warmup,
        activation_checkpointing=not args.no_activation_checkpointing,
    )
    if args.tiny:
        settings = Settings(shape="tiny", prompts=2, generations=4, completion_len=8,
                            micro_batch=4, steps=3, warmup=1, lr=args.lr)
    settings.accumulation  # noqa: B018 - checks the micro-batch divides the step
    if settings.steps <= settings.warmup:
        raise SystemExit(f"--steps ({settings.steps}) must exceed --warmup ({settings.warmup})")
    work = args.out or Path(tempfile.mkdtemp(prefix="grpo_vs_trl_"))
    model = build_model(work, settings.shape, fixed_new_tokens=settings.completion_len)
    print(f"device: {device_name()}; torch {torch.__version__}; settings {asdict(settings)}", flush=True)
    results: dict[str, Any] = {"device": device_name(), "settings": asdict(settings)}
    summaries: dict[str, dict[str, float]] = {}
    if args.skip != "ours":
        for decoder in ("auto", "generate") if args.decoder == "both" else (args.decoder,):
            name = "ours" if decoder == "auto" else f"ours ({decoder})"
            results[name] = run_ours(model, settings, work / f"ours-{decoder}", decoder)
            print(f"our hf backend decoded with: {results[name]['decoder']}", flush=True)
            summaries[name] = summarise(name.replace("ours", "nemo-rl"), results[name], settings, OUR_PHASES)
            free_memory()
    if args.skip != "trl":
        import trl

        results["trl"] = run_trl(model, settings, work / "trl")
        summaries["trl"] = summarise(f"trl {trl.__version__}", results["trl"], settings)
        free_memory()
    print(f"summary ({device_name()}, steady state over steps {settings.warmup + 1}-{settings.steps}):")
    for name, summary in summaries.items():  # again at the end, after TRL's own log lines
        print(format_row(name, summary), flush=True)
    ours_runs = [name for name in summaries if name.startswith("ours")]
    for name in ours_runs if "trl" in summaries else []:
        ratio = summaries[name]["step_s"] / summaries["trl"]["step_s"]
        results[f"step_time_ratio ({name})" if name != "ours" else "step_time_ratio"] = ratio
        finite = grad_norms_ok(results[name]["grad_norms"]) and grad_norms_ok(results["trl"]["grad_norms"])
        results["finite_gradients"] = results.get("finite_gradients", True) and finite
        print(f"steady-state step time, {name} / TRL: {ratio:.3f} (speed-up over TRL: "
              f"{1 / ratio:.2f}x); finite gradients on both sides: {finite}", flush=True)
    (work / "grpo_vs_trl.json").write_text(json.dumps(results, indent=2))
    print(f"results: {work / 'grpo_vs_trl.json'}")
    return results


if __name__ == "__main__":
    main()
