"""The offline tiny model helper: loads with plain transformers, deterministic, chat template."""

from __future__ import annotations

import pytest
import torch
from nemo_rl_dtensor.testing import IM_END, NUM_SPECIAL, build_char_tokenizer, build_tiny_model
from transformers import AutoModelForCausalLM, AutoTokenizer


def test_char_tokenizer_round_trips_text_one_token_per_ascii_char(tiny_model_path, tiny_qwen2_path):
    text = "Hello, world!\n\t2 + 2 = 4  (é)"
    for path in (tiny_model_path, tiny_qwen2_path):
        tok = AutoTokenizer.from_pretrained(path)
        ids = tok(text)["input_ids"]
        assert ids[:5] == [NUM_SPECIAL + ord(c) for c in "Hello"]
        assert len(ids) == len(text.encode())  # é is two bytes
        assert tok.decode(ids) == text
        assert tok.eos_token == IM_END and tok.pad_token_id == 0


def test_chat_template_with_generation_prompt(tiny_model_path):
    tok = AutoTokenizer.from_pretrained(tiny_model_path)
    msgs = [{"role": "user", "content": "2+2?"}]
    text = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    assert text == "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n"
    ids = tok.apply_chat_template(msgs, add_generation_prompt=False)["input_ids"]
    assert ids[0] == tok.convert_tokens_to_ids("<|im_start|>")
    assert ids[-2:] == [tok.eos_token_id, NUM_SPECIAL + ord("\n")]


def test_tiny_models_load_and_match_architecture(tiny_model_path, tiny_qwen2_path):
    llama = AutoModelForCausalLM.from_pretrained(tiny_model_path)
    qwen = AutoModelForCausalLM.from_pretrained(tiny_qwen2_path)
    assert llama.config.model_type == "llama" and not llama.config.tie_word_embeddings
    assert qwen.config.model_type == "qwen2" and qwen.config.tie_word_embeddings
    assert qwen.config.num_key_value_heads == 2
    for model in (llama, qwen):
        assert model.config.hidden_size // model.config.num_attention_heads == 32
        assert model.config.vocab_size == len(build_char_tokenizer())
        assert model.generation_config.eos_token_id == 4
        logits = model(torch.tensor([[1, 10, 20]])).logits
        assert logits.shape == (1, 3, model.config.vocab_size) and torch.isfinite(logits).all()


def test_build_is_deterministic_and_seed_dependent(tmp_path):
    a = AutoModelForCausalLM.from_pretrained(build_tiny_model(tmp_path / "a", layers=1, seed=3))
    b = AutoModelForCausalLM.from_pretrained(build_tiny_model(tmp_path / "b", layers=1, seed=3))
    c = AutoModelForCausalLM.from_pretrained(build_tiny_model(tmp_path / "c", layers=1, seed=4))
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb), name
    assert not torch.equal(a.model.embed_tokens.weight, c.model.embed_tokens.weight)


def test_padded_vocab_and_bad_arguments(tmp_path):
    model = AutoModelForCausalLM.from_pretrained(
        build_tiny_model(tmp_path / "p", layers=1, vocab_size=320)
    )
    assert model.config.vocab_size == 320
    with pytest.raises(ValueError, match="vocab_size=10 is smaller"):
        build_tiny_model(tmp_path / "x", vocab_size=10)
    with pytest.raises(ValueError, match="unknown arch 'gpt2'"):
        build_tiny_model(tmp_path / "y", arch="gpt2")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="divisible by heads"):
        build_tiny_model(tmp_path / "z", hidden_size=100, heads=3)
