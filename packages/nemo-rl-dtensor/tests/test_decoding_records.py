"""What the HF backend reads off the decoding loop: stop positions, left padding and sampled-token
log-probs, each against hand-computed values and a brute-force reference."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from nemo_rl.config import GenerationConfig, SamplingParams
from nemo_rl.data import BatchedDataDict
from nemo_rl.infra.cluster import InlineCluster
from nemo_rl_dtensor import HFGenerationBackend
from nemo_rl_dtensor.decoding_records import (
    LogprobRecorder,
    StringStopRecorder,
    combine_stops,
    first_stop_positions,
)
from nemo_rl_dtensor.generation_backend import right_to_left_padding
from transformers import AutoModelForCausalLM


def make_generator(model_path) -> HFGenerationBackend:
    gen = HFGenerationBackend()
    gen.setup(GenerationConfig(model_name=str(model_path)), InlineCluster(device="cpu"))
    return gen


def random_prompts(seed: int, rows: int, width: int) -> BatchedDataDict:
    """Right-padded random prompts of random lengths (1..width), padded with id 0."""
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, width + 1, (rows,), generator=gen)
    ids = torch.randint(10, 250, (rows, width), generator=gen)
    ids = torch.where(torch.arange(width) < lengths.unsqueeze(1), ids, 0)
    return BatchedDataDict(input_ids=ids, input_lengths=lengths)


# ---------------------------------------------------------------- pure functions


def test_first_stop_positions_hand_computed():
    generated = torch.tensor([[5, 4, 4, 1], [1, 2, 3, 9], [0, 0, 0, 0], [9, 5, 0, 0]])
    assert first_stop_positions(generated, [4, 9]).tolist() == [2, 4, 0, 1]
    assert first_stop_positions(generated, []).tolist() == [0, 0, 0, 0]
    assert first_stop_positions(torch.zeros(3, 0, dtype=torch.long), [1]).tolist() == [0, 0, 0]


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    st.lists(st.lists(st.integers(0, 6), min_size=0, max_size=7), min_size=1, max_size=5).filter(
        lambda rows: len({len(r) for r in rows}) == 1
    ),
    st.lists(st.integers(0, 6), max_size=3),
)
def test_first_stop_positions_match_a_loop(rows, stop_ids):
    def brute(row):
        for i, token in enumerate(row):
            if token in stop_ids:
                return i + 1
        return 0

    generated = torch.tensor(rows, dtype=torch.long).reshape(len(rows), -1)
    assert first_stop_positions(generated, stop_ids).tolist() == [brute(r) for r in rows]


def test_combine_stops_hand_computed():
    by_token, by_string = torch.tensor([0, 3, 4, 0, 2]), torch.tensor([2, 5, 0, 0, 2])
    assert combine_stops(by_token, by_string).tolist() == [2, 3, 4, 0, 2]
    assert combine_stops(by_token, None) is by_token


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(st.tuples(st.integers(0, 9), st.integers(0, 9)), min_size=1, max_size=8))
def test_combine_stops_is_the_earliest_actual_stop(pairs):
    a, b = torch.tensor([p[0] for p in pairs]), torch.tensor([p[1] for p in pairs])
    expected = [min([x for x in p if x > 0], default=0) for p in pairs]
    assert combine_stops(a, b).tolist() == expected


@settings(max_examples=100, deadline=None, derandomize=True)
@given(st.integers(0, 10_000), st.integers(1, 6), st.integers(1, 8), st.integers(0, 3))
def test_right_to_left_padding_matches_a_row_loop(seed, rows, width, extra):
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(0, width + 1, (rows,), generator=gen)
    lengths[0] = width  # the longest row sets the output width
    ids = torch.randint(1, 100, (rows, width + extra), generator=gen)
    out, mask = right_to_left_padding(ids, lengths, pad_id=-1)
    for r, n in enumerate(lengths.tolist()):
        assert out[r].tolist() == [-1] * (width - n) + ids[r, :n].tolist()
        assert mask[r].tolist() == [0] * (width - n) + [1] * n
    assert mask.dtype == ids.dtype


def test_right_to_left_padding_rejects_lengths_beyond_the_ids():
    with pytest.raises(ValueError, match=r"input_lengths'\] reaches 4"):
        right_to_left_padding(torch.ones(2, 3, dtype=torch.long), torch.tensor([4, 1]), 0)


# ---------------------------------------------------------------- recorders


class _Output:
    def __init__(self, logits):
        self.logits = logits


def test_logprob_recorder_scores_each_step_against_the_next_input():
    rec = LogprobRecorder()
    # Step 0 (prefill, 2 positions: only the last one counts), then one decoding step.
    prefill = torch.tensor([[[9.0, 9.0, 9.0], [0.0, math.log(3.0), 0.0]]])
    rec(None, (), {"input_ids": torch.tensor([[7, 7]])}, _Output(prefill))
    rec(None, (), {"input_ids": torch.tensor([[1]])}, _Output(torch.tensor([[[0.0, 0.0, math.log(2.0)]]])))
    # Token 1 after step 0: p = 3/5; token 2 (read from the final sequence) after step 1: p = 2/4.
    logprobs = rec.logprobs(torch.tensor([[7, 7, 1, 2]]), steps=2)
    torch.testing.assert_close(logprobs, torch.tensor([[math.log(3 / 5), math.log(2 / 4)]]))


def test_logprob_recorder_errors():
    rec = LogprobRecorder()
    rec(None, (), {"input_ids": torch.tensor([[1]])}, _Output(torch.zeros(1, 1, 3)))
    with pytest.raises(RuntimeError, match="no input_ids"):
        rec(None, (), {"inputs_embeds": torch.zeros(1, 1, 4)}, _Output(torch.zeros(1, 1, 3)))
    with pytest.raises(RuntimeError, match="recorded 1 log-prob steps for 3"):
        rec.logprobs(torch.tensor([[1, 2]]), steps=3)
    assert LogprobRecorder().logprobs(torch.zeros(2, 4, dtype=torch.long), steps=0).shape == (2, 0)


def test_string_stop_recorder_keeps_the_first_match():
    rec = StringStopRecorder(lambda ids, scores: ids[:, -1] == 9, prompt_width=2, batch_size=3)
    done = rec(torch.tensor([[0, 0, 9], [0, 0, 1], [0, 0, 1]]), None)
    assert done.tolist() == [True, False, False]
    rec(torch.tensor([[0, 0, 9, 9], [0, 0, 1, 9], [0, 0, 1, 1]]), None)
    assert rec.stopped_at.tolist() == [1, 2, 0]


# ---------------------------------------------------------------- the backend end to end


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_logprobs_equal_a_full_forward_of_each_row(tiny_qwen2_path, seed):
    """Sampled with temperature and top-k, on left-padded prompts of random lengths: every
    returned log-prob equals the unscaled model's log-softmax from an unpadded full forward."""
    gen = make_generator(tiny_qwen2_path)
    prompts = random_prompts(seed, rows=6, width=9)
    sampling = SamplingParams(temperature=0.8, top_k=30, max_new_tokens=10, seed=seed)
    out = gen.generate(prompts, sampling)
    model = AutoModelForCausalLM.from_pretrained(tiny_qwen2_path, dtype=torch.float32).eval()
    for i in range(prompts.size):
        p, n = int(prompts["input_lengths"][i]), int(out["lengths"][i])
        row = torch.cat([prompts["input_ids"][i, :p], out["output_ids"][i, :n]]).unsqueeze(0)
        with torch.no_grad():
            logprobs = model(row).logits[0].double().log_softmax(-1)
        expected = logprobs[p - 1 : p + n - 1].gather(-1, row[0, p:].unsqueeze(-1)).squeeze(-1)
        torch.testing.assert_close(out["logprobs"][i, :n].double(), expected, atol=1e-5, rtol=0)
        assert (out["logprobs"][i, n:] == 0).all()


def test_stop_ids_end_rows_where_an_unstopped_run_first_reaches_them(tiny_model_path):
    """Stopping never changes the random draws, so a run with extra stop ids must give each row
    the unstopped run's tokens up to (and including) its first stop id, then padding."""
    gen = make_generator(tiny_model_path)
    prompts = random_prompts(5, rows=16, width=6)
    free = gen.generate(prompts, SamplingParams(temperature=1.0, max_new_tokens=24, seed=7))
    eos = gen.tokenizer.eos_token_id
    counts = torch.bincount(free["output_ids"][free["output_ids"] != gen.tokenizer.pad_token_id])
    common = counts.topk(2).indices.tolist()  # frequent tokens, so most rows stop early
    stops = common + [gen.tokenizer.pad_token_id]  # pad fills finished rows: must not move stops
    stopped = gen.generate(
        prompts, SamplingParams(temperature=1.0, max_new_tokens=24, seed=7, stop_token_ids=stops)
    )
    assert (stopped["lengths"] < 24).sum() >= 8
    for i in range(prompts.size):
        tokens = free["output_ids"][i, : int(free["lengths"][i])].tolist()
        ends = [k + 1 for k, t in enumerate(tokens) if t in stops or t == eos]
        n = ends[0] if ends else len(tokens)
        assert int(stopped["lengths"][i]) == n
        assert bool(stopped["truncated"][i]) == (not ends and len(tokens) == 24)
        assert stopped["output_ids"][i, :n].tolist() == tokens[:n]
        assert (stopped["output_ids"][i, n:] == gen.tokenizer.pad_token_id).all()
        torch.testing.assert_close(stopped["logprobs"][i, :n], free["logprobs"][i, :n])
