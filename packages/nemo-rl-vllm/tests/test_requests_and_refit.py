"""Engine-free parts of the vllm backend: options, per-row seeds, outputs, refit chunks, deadline,
the GPUs of an engine that does not share them.

These run without vLLM (in the main environment too)."""

from __future__ import annotations

import time
from types import SimpleNamespace as NS

import pytest
import torch
from nemo_rl.config import SamplingParams
from nemo_rl.data import BatchedDataDict
from nemo_rl.infra.resources import ResourceError
from nemo_rl_vllm.options import engine_devices, parse_options
from nemo_rl_vllm.refit import (
    LM_HEAD,
    RefitError,
    call_with_deadline,
    layer_aligned_chunks,
    with_tied_lm_head,
)
from nemo_rl_vllm.requests import collect_outputs, request_prompts, sampling_kwargs


def test_options_defaults_per_device_and_passthrough():
    cpu = parse_options({}, "cpu", colocated=True).engine
    assert cpu == {"logprobs_mode": "raw_logprobs", "dtype": "float32", "enforce_eager": True}
    gpu = parse_options({"precision": "bfloat16", "engine_kwargs": {"max_num_seqs": 7}}, "cuda", True)
    assert gpu.engine["enable_sleep_mode"] and gpu.engine["dtype"] == "bfloat16"
    assert gpu.engine["max_num_seqs"] == 7
    apart = parse_options({"tensor_parallel_size": 2}, "cuda", colocated=False).engine
    assert "enable_sleep_mode" not in apart and apart["tensor_parallel_size"] == 2


def test_an_engine_on_its_own_gpus_spans_them_all():
    # generation.num_gpus=2 after 2 training GPUs: cuda 2 and 3, tensor parallel over both.
    devices = engine_devices(False, 2, "cuda", training_workers=2, visible=4)
    engine = parse_options({}, "cuda", colocated=False, devices=devices).engine
    assert engine["device_ids"] == [2, 3] and engine["tensor_parallel_size"] == 2
    assert "enable_sleep_mode" not in engine  # it never sleeps: nothing else uses its GPUs
    split = parse_options({"tensor_parallel_size": 1, "pipeline_parallel_size": 2}, "cuda", False, [2, 3])
    assert split.engine["device_ids"] == [2, 3] and split.engine["tensor_parallel_size"] == 1
    assert engine_devices(True, 0, "cuda", 4, 4) is None  # colocated: the training GPUs
    assert engine_devices(False, 0, "cpu", 1, 0) is None  # a CPU run generates on the CPU


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: parse_options({"tensor_parallel_size": 4}, "cuda", False, [2, 3]), ValueError,
         r"generation.num_gpus=2 but generation.backend_options has tensor_parallel_size=4"),
        (lambda: engine_devices(False, 1, "cpu", 1, 0), ValueError,
         r"generation.num_gpus=1 with generation.colocated=false .* the cluster runs on the CPU"),
        (lambda: engine_devices(False, 2, "cuda", 7, 8), ResourceError,
         r"generation.num_gpus=2 after 7 training GPU\(s\) needs 9 GPUs on this host but it has 8"),
    ],
)
def test_an_engine_that_cannot_get_its_own_gpus_is_one_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"tp": 2}, "not understood by the vllm backend"),
        ({"logprobs_mode": "processed_logprobs"}, "only 'raw_logprobs'"),
        ({"engine_kwargs": [1]}, "must be a mapping"),
        ({"dtype": "float32", "precision": "bfloat16"}, "not both"),
        ({"sleep_level": 3}, "use 1 or 2"),
    ],
)
def test_bad_options_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        parse_options(options, "cuda", colocated=True)


def test_prompts_are_token_ids_without_padding():
    batch = BatchedDataDict(
        input_ids=torch.tensor([[5, 6, 7], [8, 0, 0]]), input_lengths=torch.tensor([3, 1])
    )
    assert request_prompts(batch) == [{"prompt_token_ids": [5, 6, 7]}, {"prompt_token_ids": [8]}]
    with pytest.raises(KeyError, match="input_lengths"):
        request_prompts(BatchedDataDict(input_ids=torch.ones(1, 2, dtype=torch.long)))


def test_rows_of_a_seeded_call_get_distinct_reproducible_seeds():
    # GRPO repeats each prompt: one shared seed would make a group's samples identical.
    rows = sampling_kwargs(SamplingParams(seed=11, max_new_tokens=3), 64)
    seeds = [r["seed"] for r in rows]
    assert len(set(seeds)) == 64 and all(0 <= s < 2**63 for s in seeds)
    assert seeds == [r["seed"] for r in sampling_kwargs(SamplingParams(seed=11), 64)]
    next_call = {r["seed"] for r in sampling_kwargs(SamplingParams(seed=12), 64)}
    assert not next_call & set(seeds)
    assert "seed" not in sampling_kwargs(SamplingParams(), 1)[0]
    greedy = sampling_kwargs(SamplingParams(temperature=0.0, top_p=0.5, top_k=3), 1)[0]
    assert greedy["temperature"] == 0.0 and greedy["top_p"] == 1.0 and greedy["top_k"] == 3


def test_min_new_tokens_is_vllms_min_tokens_on_every_row():
    rows = sampling_kwargs(SamplingParams(max_new_tokens=8, min_new_tokens=5), 3)
    assert [r["min_tokens"] for r in rows] == [5, 5, 5]
    assert sampling_kwargs(SamplingParams(), 1)[0]["min_tokens"] == 0


def test_outputs_are_right_padded_with_sampled_logprobs():
    def lp(v):
        return NS(logprob=v)

    outs = [
        NS(outputs=[NS(token_ids=[7, 8, 9], logprobs=[{7: lp(-1.0)}, {8: lp(-2.0), 1: lp(-0.1)}, {9: lp(-3.0)}], finish_reason="length")]),
        NS(outputs=[NS(token_ids=[4], logprobs=[{4: lp(-0.5)}], finish_reason="stop")]),
    ]
    result = collect_outputs(outs, pad_id=0)
    assert result["output_ids"].tolist() == [[7, 8, 9], [4, 0, 0]]
    assert result["logprobs"].tolist() == [[-1.0, -2.0, -3.0], [-0.5, 0.0, 0.0]]
    assert result["lengths"].tolist() == [3, 1] and result["truncated"].tolist() == [True, False]
    with pytest.raises(RuntimeError, match="logprobs=0"):
        collect_outputs([NS(outputs=[NS(token_ids=[1], logprobs=None, finish_reason="stop")])], 0)


def _weights(layers: int, numel: int = 4):
    yield "model.embed_tokens.weight", torch.zeros(numel)
    for i in range(layers):
        for part in ("q_proj", "k_proj", "v_proj"):
            yield f"model.layers.{i}.self_attn.{part}.weight", torch.zeros(numel)
    yield "model.norm.weight", torch.zeros(numel)


def test_chunks_respect_the_budget_and_never_split_a_layer():
    chunks = list(layer_aligned_chunks(_weights(3), budget=3 * 16))
    names = [[n for n, _ in c] for c in chunks]
    assert sum(len(c) for c in names) == 11
    for chunk in chunks:
        assert sum(t.numel() * 4 for _, t in chunk) <= 3 * 16 or len({n.split(".")[2] for n, _ in chunk}) == 1
    # q/k/v of one layer always travel together.
    for i in range(3):
        holders = [j for j, c in enumerate(names) if any(f"layers.{i}." in n for n in c)]
        assert len(holders) == 1
    assert len(list(layer_aligned_chunks(_weights(3), budget=10**9))) == 1


def test_tied_lm_head_is_sent_once_right_after_the_embedding():
    tied = [n for n, _ in with_tied_lm_head(_weights(1), tied=True)]
    assert tied[:2] == ["model.embed_tokens.weight", LM_HEAD] and tied.count(LM_HEAD) == 1
    exported = [*_weights(1), (LM_HEAD, torch.zeros(4))]  # the trainer exports it as well
    assert [n for n, _ in with_tied_lm_head(exported, tied=True)].count(LM_HEAD) == 1
    assert LM_HEAD not in [n for n, _ in with_tied_lm_head(_weights(1), tied=False)]


def test_a_stalled_or_failing_refit_raises_a_clear_error():
    with pytest.raises(RefitError, match="did not finish within 0.2 s"):
        call_with_deadline(lambda: time.sleep(5), 0.2, "vLLM weight refit")
    with pytest.raises(RefitError, match="failed: KeyError"):
        call_with_deadline(lambda: {}["x"], 1.0, "vLLM weight refit")
