"""HF generation: log-probs agree with the trainer's, stops, padding, weight updates, sleep/wake."""

from __future__ import annotations

import pytest
import torch
from nemo_rl.algorithms.sft import NLLLoss
from nemo_rl.config import GenerationConfig, PolicyConfig, SamplingParams
from nemo_rl.data import BatchedDataDict
from nemo_rl.infra.cluster import InlineCluster
from nemo_rl_dtensor import DTensorTrainingBackend, HFGenerationBackend
from nemo_rl_dtensor.generation_backend import right_to_left_padding
from nemo_rl_dtensor.testing import prompt_plus_generation

PROMPTS = ["2+2=", "Say hi: ", "x", "Capital of France? "]


def make_generator(model_path, **options) -> HFGenerationBackend:
    gen = HFGenerationBackend()
    gen.setup(GenerationConfig(model_name=str(model_path), **options), InlineCluster(device="cpu"))
    return gen


def make_trainer(model_path) -> DTensorTrainingBackend:
    backend = DTensorTrainingBackend()
    config = PolicyConfig(model_name=str(model_path), optimizer={"lr": 1e-2, "weight_decay": 0.0})
    backend.setup(config, InlineCluster(device="cpu"))
    return backend


def encode(gen: HFGenerationBackend, texts: list[str]) -> BatchedDataDict:
    rows = [gen.tokenizer(t)["input_ids"] for t in texts]
    ids = torch.full((len(rows), max(map(len, rows))), gen.tokenizer.pad_token_id)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row)
    return BatchedDataDict(input_ids=ids, input_lengths=torch.tensor([len(r) for r in rows]))


def test_right_to_left_padding():
    ids, mask = right_to_left_padding(torch.tensor([[1, 2, 3], [4, 0, 0]]), torch.tensor([3, 1]), 9)
    assert ids.tolist() == [[1, 2, 3], [9, 9, 4]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1]]


def test_generation_logprobs_match_training_logprobs(tiny_qwen2_path):
    trainer, gen = make_trainer(tiny_qwen2_path), make_generator(tiny_qwen2_path)
    prompts = encode(gen, PROMPTS)
    # Sampling with temperature/top-k: the returned log-probs must still be the unscaled model's.
    out = gen.generate(
        prompts, SamplingParams(temperature=0.7, top_k=20, max_new_tokens=12, seed=1)
    )
    scored = trainer.get_logprobs(prompt_plus_generation(prompts, out))
    for i in range(prompts.size):
        p, n = int(prompts["input_lengths"][i]), int(out["lengths"][i])
        assert (scored[i, p : p + n] - out["logprobs"][i, :n]).abs().max() < 1e-4
        assert (out["logprobs"][i, n:] == 0).all()
    assert out["output_ids"].shape == out["logprobs"].shape == (4, int(out["lengths"].max()))


def test_left_padding_does_not_change_greedy_output(tiny_model_path):
    gen = make_generator(tiny_model_path)
    greedy = SamplingParams(temperature=0.0, max_new_tokens=8)
    batched = gen.generate(encode(gen, PROMPTS), greedy)
    for i, text in enumerate(PROMPTS):
        alone = gen.generate(encode(gen, [text]), greedy)
        n = int(alone["lengths"][0])
        assert int(batched["lengths"][i]) == n
        assert batched["output_ids"][i, :n].tolist() == alone["output_ids"][0, :n].tolist()


def test_stop_tokens_stop_strings_and_truncation(tiny_model_path):
    gen = make_generator(tiny_model_path)
    prompts = encode(gen, ["Say hi: "])
    free = gen.generate(prompts, SamplingParams(temperature=0.0, max_new_tokens=10))
    tokens = free["output_ids"][0].tolist()
    assert free["truncated"].tolist() == [True] and free["lengths"].tolist() == [10]
    # Stop at the first occurrence of the 4th token: length includes it, the rest is padding.
    target = tokens[3]
    first = tokens.index(target)
    stopped = gen.generate(
        prompts, SamplingParams(temperature=0.0, max_new_tokens=10, stop_token_ids=[target])
    )
    assert stopped["lengths"].tolist() == [first + 1] and stopped["truncated"].tolist() == [False]
    assert stopped["output_ids"][0, : first + 1].tolist() == tokens[: first + 1]
    assert (stopped["output_ids"][0, first + 1 :] == gen.tokenizer.pad_token_id).all()
    # A stop string made of the 3rd and 4th generated characters ends the row right after them.
    text = gen.tokenizer.decode(tokens[2:4])
    by_string = gen.generate(
        prompts, SamplingParams(temperature=0.0, max_new_tokens=10, stop_strings=[text])
    )
    decoded = gen.tokenizer.decode(tokens)
    end = decoded.index(text) + len(text)
    assert (
        gen.tokenizer.decode(by_string["output_ids"][0, : int(by_string["lengths"][0])])
        == decoded[:end]
    )
    assert by_string["truncated"].tolist() == [False]


def test_update_weights_makes_generation_use_the_new_weights(tiny_model_path, sft_batch):
    trainer, own = make_trainer(tiny_model_path), make_generator(tiny_model_path)
    prompts = encode(own, PROMPTS)
    greedy = SamplingParams(temperature=0.0, max_new_tokens=6)
    before = own.generate(prompts, greedy)
    for _ in range(5):
        trainer.train_step(sft_batch, NLLLoss())
    own.update_weights(trainer.export_weights())
    after = own.generate(prompts, greedy)
    shared = make_generator(tiny_model_path)
    shared.share_module(trainer.inline_module())
    reference = shared.generate(prompts, greedy)
    assert not torch.allclose(before["logprobs"][:, 0], after["logprobs"][:, 0])
    assert after["output_ids"].tolist() == reference["output_ids"].tolist()
    torch.testing.assert_close(after["logprobs"], reference["logprobs"], atol=1e-5, rtol=0)


def test_shared_module_needs_no_copy(tiny_model_path):
    trainer, gen = make_trainer(tiny_model_path), make_generator(tiny_model_path)
    gen.share_module(trainer.inline_module())

    def must_not_be_read():
        raise AssertionError("a shared module must not read the weight stream")
        yield  # pragma: no cover

    gen.update_weights(must_not_be_read())
    assert gen.model is trainer.inline_module()
    greedy = SamplingParams(temperature=0.0, max_new_tokens=4)
    out = gen.generate(encode(gen, PROMPTS), greedy)
    own = make_generator(tiny_model_path).generate(encode(gen, PROMPTS), greedy)
    assert out["output_ids"].tolist() == own["output_ids"].tolist()
    assert trainer.inline_module().training  # generation put the training module back in train mode


def test_sleep_wake_and_errors(tiny_model_path):
    gen = make_generator(tiny_model_path)
    prompts = encode(gen, ["a"])
    gen.sleep()
    with pytest.raises(RuntimeError, match="asleep"):
        gen.generate(prompts, SamplingParams(max_new_tokens=2))
    gen.wake()
    assert (
        gen.generate(prompts, SamplingParams(max_new_tokens=2, seed=0))["output_ids"].shape[0] == 1
    )
    with pytest.raises(KeyError, match="does not have"):
        gen.update_weights([("not.a.weight", torch.zeros(1))])
    with pytest.raises(ValueError, match="model_name is None"):
        HFGenerationBackend().setup(GenerationConfig(), InlineCluster(device="cpu"))
    with pytest.raises(ValueError, match=r"backend_options.tp: not an option .* accepts cuda_graphs"):
        make_generator(tiny_model_path, backend_options={"tp": 2})
    with pytest.raises(ValueError, match=r"backend_options.decoder = 'vllm': Input should be"):
        make_generator(tiny_model_path, backend_options={"decoder": "vllm"})
    with pytest.raises(KeyError, match="input_lengths"):
        gen.generate(
            BatchedDataDict(input_ids=torch.ones(1, 2, dtype=torch.long)), SamplingParams()
        )


def test_batch_size_chunks_give_the_same_result(tiny_model_path):
    whole, chunked = make_generator(tiny_model_path), make_generator(tiny_model_path, batch_size=3)
    greedy = SamplingParams(temperature=0.0, max_new_tokens=5)
    a = whole.generate(encode(whole, PROMPTS), greedy)
    b = chunked.generate(encode(chunked, PROMPTS), greedy)
    assert a["output_ids"].tolist() == b["output_ids"].tolist()
    torch.testing.assert_close(a["logprobs"], b["logprobs"], atol=1e-5, rtol=0)


def test_unseeded_calls_advance_the_rng_and_seeded_calls_repeat(tiny_qwen2_path):
    gen = make_generator(tiny_qwen2_path)
    prompts = encode(gen, PROMPTS * 4)
    torch.manual_seed(0)
    unseeded = SamplingParams(temperature=1.0, max_new_tokens=8)
    first = gen.generate(prompts, unseeded)["output_ids"]
    second = gen.generate(prompts, unseeded)["output_ids"]
    # A rollout per GRPO step: unseeded calls must not replay the same random draws.
    assert not torch.equal(first, second)
    seeded = SamplingParams(temperature=1.0, max_new_tokens=8, seed=3)
    state = torch.get_rng_state()
    a = gen.generate(prompts, seeded)["output_ids"]
    assert torch.equal(torch.get_rng_state(), state)  # a seeded call leaves the global RNG alone
    assert torch.equal(a, gen.generate(prompts, seeded)["output_ids"])


def test_logprobs_need_no_scoring_pass(tiny_qwen2_path):
    """One forward pass per generated token (prefill included) and no more: the log-probs are
    read from the decoding passes, yet equal a full-sequence forward of the training backend."""
    trainer, gen = make_trainer(tiny_qwen2_path), make_generator(tiny_qwen2_path)
    prompts = encode(gen, PROMPTS)
    gen.share_module(trainer.inline_module())
    widths = []  # tokens fed to each forward pass
    hook = gen.model.register_forward_pre_hook(
        lambda module, args, kwargs: widths.append(kwargs["input_ids"].shape[1]), with_kwargs=True
    )
    try:
        out = gen.generate(prompts, SamplingParams(temperature=1.0, max_new_tokens=9, seed=0,
                                                   stop_token_ids=[]))
    finally:
        hook.remove()
    assert len(widths) == out["output_ids"].shape[1]
    # The prompt once, then one token per step: the KV cache is used although the training
    # module's config says use_cache=False.
    assert widths[0] == prompts["input_ids"].shape[1] and set(widths[1:]) == {1}
    scored = trainer.get_logprobs(prompt_plus_generation(prompts, out))
    for i in range(prompts.size):
        p, n = int(prompts["input_lengths"][i]), int(out["lengths"][i])
        torch.testing.assert_close(out["logprobs"][i, :n], scored[i, p : p + n], atol=1e-4, rtol=0)
