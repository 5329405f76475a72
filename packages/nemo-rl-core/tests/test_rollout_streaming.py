"""Scoring while generating: `score_while_streaming` and the rollout engine's streamed turns.

The real engine (vLLM's `generate_stream`) is checked in nemo-rl-vllm's tests; here the scheduler
runs on Python generators, and the rollout engine on a deterministic token-rule generator, so
that the streamed and batched rollouts can be compared field by field, multi-turn included.
"""

from __future__ import annotations

import itertools
import threading

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from nemo_rl.config import SamplingParams
from nemo_rl.data import BatchedDataDict
from nemo_rl.protocols import EnvStep, GenerationBackend, StreamingGeneration
from nemo_rl.rollout import RolloutEngine
from nemo_rl.rollout.streaming import score_while_streaming

WAIT_S = 30.0  # a guard against a hang, never reached when the code is right


def test_every_row_is_scored_once_and_results_land_by_row():
    applied: dict[int, int] = {}
    batches: list[list[int]] = []

    def apply(rows, result):
        batches.append(rows)
        for row, value in zip(rows, result, strict=True):
            assert row not in applied
            applied[row] = value

    stream = iter([(3, "d"), (0, "a"), (2, "c"), (1, "b")])
    stats = score_while_streaming(stream, lambda row, item: None, lambda rows: [r * r for r in rows], apply)
    assert applied == {0: 0, 1: 1, 2: 4, 3: 9}
    assert sorted(itertools.chain(*batches)) == [0, 1, 2, 3]
    assert stats.rows == 4 and stats.score_calls == len(batches)


def test_scoring_runs_while_the_stream_is_still_producing():
    events: list[str] = []
    scoring_started = threading.Event()

    def stream():
        yield 0, "first"
        # The second row comes only once the first one is being scored: the scheduler must hand
        # rows to the scorer while the stream is open, not after it ended.
        assert scoring_started.wait(WAIT_S), "row 0 was not scored while the stream was open"
        events.append("yield 1")
        yield 1, "second"

    def score(rows):
        events.append(f"score {rows}")
        scoring_started.set()
        return rows

    stats = score_while_streaming(stream(), lambda r, i: events.append(f"take {r}"), score, lambda r, x: None)
    assert events[:3] == ["take 0", "score [0]", "yield 1"]
    assert stats.rows_sent_before_end >= 1


def test_scoring_is_never_concurrent_and_sees_only_taken_rows():
    busy = threading.Lock()
    taken: set[int] = set()

    def score(rows):
        assert busy.acquire(blocking=False), "score called while another call was running"
        try:
            assert set(rows) <= taken
            return rows
        finally:
            busy.release()

    stream = ((row, None) for row in range(200))
    stats = score_while_streaming(stream, lambda r, _: taken.add(r), score, lambda r, x: None)
    assert stats.rows == 200


def test_a_scoring_error_stops_and_closes_the_stream():
    failed = threading.Event()
    closed: list[bool] = []

    def stream():
        try:
            yield 0, None
            assert failed.wait(WAIT_S)
            for row in itertools.count(1):  # would never end: only closing it stops it
                yield row, None
        finally:
            closed.append(True)

    def score(rows):
        failed.set()
        raise ValueError("reward server down")

    with pytest.raises(ValueError, match="reward server down"):
        score_while_streaming(stream(), lambda r, _: None, score, lambda r, x: None)
    assert closed == [True]


@settings(max_examples=60, deadline=None)
@given(order=st.permutations(list(range(12))), base=st.integers(-5, 5))
def test_any_finishing_order_gives_the_row_by_row_results(order, base):
    applied: dict[int, int] = {}

    def apply(rows, result):
        applied.update(zip(rows, result, strict=True))

    items = [(row, row + base) for row in order]
    stats = score_while_streaming(iter(items), lambda r, _: None, lambda rows: [r * 3 + base for r in rows], apply)
    # The brute-force reference: score each row alone.
    assert applied == {row: row * 3 + base for row in range(12)}
    assert stats.rows == 12


# ---- the rollout engine on a streamed backend ----------------------------------------------


class CharTokenizer:
    """Token id = character code + 1 (0 pads); no chat template."""

    pad_token_id = 0
    chat_template = None

    def encode(self, text, add_special_tokens=False):
        return [ord(c) + 1 for c in text]

    def decode(self, ids, skip_special_tokens=True):
        return "".join(chr(i - 1) for i in ids if i > 0)


STOP = ord(".") + 1


class RuleGeneration:
    """Generates by a fixed rule: a row's reply is `(sum(prompt) % 5) + 1` letters, then '.';
    its length (and so its finishing time) depends on the prompt. The log-prob of token t is
    -t/1000. `max_new_tokens` truncates as an engine would."""

    def reply(self, prompt: list[int], sampling: SamplingParams) -> tuple[list[int], bool]:
        letters = [ord("a") + (sum(prompt) + k) % 26 + 1 for k in range(sum(prompt) % 5 + 1)]
        tokens = [*letters, STOP]
        truncated = len(tokens) > sampling.max_new_tokens
        return tokens[: sampling.max_new_tokens], truncated

    def result(self, replies: list[tuple[list[int], bool]]) -> BatchedDataDict:
        width = max(len(t) for t, _ in replies)
        ids = torch.zeros(len(replies), width, dtype=torch.long)
        for row, (tokens, _) in enumerate(replies):
            ids[row, : len(tokens)] = torch.tensor(tokens)
        return BatchedDataDict(
            output_ids=ids,
            logprobs=-ids.float() / 1000,
            lengths=torch.tensor([len(t) for t, _ in replies]),
            truncated=torch.tensor([t for _, t in replies]),
        )

    def prompts_of(self, prompts: BatchedDataDict) -> list[list[int]]:
        return [prompts["input_ids"][i, : int(n)].tolist() for i, n in enumerate(prompts["input_lengths"])]

    def generate(self, prompts, sampling):
        return self.result([self.reply(p, sampling) for p in self.prompts_of(prompts)])

    setup = update_weights = sleep = wake = lambda self, *a: None


class StreamingRuleGeneration(RuleGeneration):
    """The same rule, handing rows out shortest first (the order an engine finishes them)."""

    def generate_stream(self, prompts, sampling):
        replies = [self.reply(p, sampling) for p in self.prompts_of(prompts)]
        for row in sorted(range(len(replies)), key=lambda r: (len(replies[r][0]), -r)):
            yield row, self.result([replies[row]])


class TwoTurnEnvironment:
    """Reward = reply length; asks for a second reply once, then ends."""

    def step(self, messages, metadata):
        done = [len(m) > 2 for m in messages]
        return EnvStep(
            rewards={"length": torch.tensor([float(len(m[-1]["content"])) for m in messages]),
                     "turn": torch.tensor([float(len(m)) for m in messages])},
            observations=[None if d else {"role": "user", "content": "more"} for d in done],
            done=done,
            metadata=[{} for _ in messages],
        )


def rollout_prompts(texts: list[str], filtered: list[bool]) -> BatchedDataDict:
    tok = CharTokenizer()
    rows = [tok.encode(t) for t in texts]
    ids = torch.zeros(len(rows), max(map(len, rows)), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row)
    return BatchedDataDict(
        input_ids=ids,
        input_lengths=torch.tensor([len(r) for r in rows]),
        messages=[[{"role": "user", "content": t}] for t in texts],
        rows=[{"i": i} for i in range(len(texts))],
        filtered=torch.tensor(filtered),
    )


def test_streamed_rollout_equals_the_batched_rollout():
    assert isinstance(StreamingRuleGeneration(), StreamingGeneration)
    assert not isinstance(RuleGeneration(), StreamingGeneration)
    assert isinstance(RuleGeneration(), GenerationBackend)
    texts = ["ab", "hello", "x", "why?", "zzzz", "ok", "a longer prompt"]
    prompts = rollout_prompts(texts, [False, False, True, False, False, False, False])
    sampling = SamplingParams(max_new_tokens=4, seed=3)
    results = {}
    for name, generation in (("batched", RuleGeneration()), ("streamed", StreamingRuleGeneration())):
        engine = RolloutEngine(generation, TwoTurnEnvironment(), CharTokenizer(), max_turns=3, max_total_length=22)
        results[name] = engine.run(prompts, sampling)
        if name == "streamed":
            assert engine.last_stream_stats is not None and engine.last_stream_stats.rows > 0
    (batched, batched_parts), (streamed, streamed_parts) = results["batched"], results["streamed"]
    assert sorted(batched) == sorted(streamed)
    for key in batched:
        if isinstance(batched[key], torch.Tensor):
            assert torch.equal(batched[key], streamed[key]), key
        else:
            assert batched[key] == streamed[key], key
    assert batched_parts.keys() == streamed_parts.keys()
    assert all(torch.equal(batched_parts[k], streamed_parts[k]) for k in batched_parts)
    # The rule's lengths and the caps did something: truncations, two turns, a filtered row.
    assert batched["truncated"].any() and (batched["num_turns"] == 2).any()
    assert batched["num_turns"][2] == 0


def test_streaming_off_uses_generate():
    prompts = rollout_prompts(["ab", "hello"], [False, False])
    engine = RolloutEngine(
        StreamingRuleGeneration(), TwoTurnEnvironment(), CharTokenizer(), max_turns=1, streaming=False
    )
    engine.run(prompts, SamplingParams(max_new_tokens=8))
    assert engine.last_stream_stats is None


class DroppingGeneration(StreamingRuleGeneration):
    def generate_stream(self, prompts, sampling):
        yield from itertools.islice(super().generate_stream(prompts, sampling), 1)


def test_a_stream_that_drops_rows_is_one_clear_error():
    engine = RolloutEngine(DroppingGeneration(), TwoTurnEnvironment(), CharTokenizer(), max_turns=1)
    with pytest.raises(RuntimeError, match=r"DroppingGeneration.generate_stream yielded no result for rows \[0\]"):
        engine.run(rollout_prompts(["ab", "hello"], [False, False]), SamplingParams(max_new_tokens=8))
