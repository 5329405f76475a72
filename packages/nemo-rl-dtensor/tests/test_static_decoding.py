"""The static-cache decoder against transformers' `generate`, and the bf16 decoding copy."""

from __future__ import annotations

import pytest
import torch
from nemo_rl.config import GenerationConfig, SamplingParams
from nemo_rl.data import BatchedDataDict
from nemo_rl.infra.cluster import InlineCluster
from nemo_rl_dtensor import HFGenerationBackend
from nemo_rl_dtensor.decode_weights import decode_copy
from nemo_rl_dtensor.generation_backend import right_to_left_padding
from nemo_rl_dtensor.lora import add_lora_adapters
from nemo_rl_dtensor.static_decoding import (
    DecodePlan,
    StaticDecoder,
    static_decoding_unsupported,
)
from transformers import AutoModelForCausalLM, AutoTokenizer

PROMPTS = ["2+2=", "Say hi: ", "x", "Capital of France? "]
SAMPLINGS = [
    dict(temperature=0.0),
    dict(temperature=1.0),
    dict(temperature=0.7, top_k=20),
    dict(temperature=1.3, top_p=0.8),
    dict(temperature=0.9, top_k=30, top_p=0.7, min_new_tokens=6),
]


def load(path):
    return AutoModelForCausalLM.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)


def left_padded(tok):
    rows = [tok(t)["input_ids"] for t in PROMPTS]
    ids = torch.full((len(rows), max(map(len, rows))), tok.pad_token_id)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row)
    return right_to_left_padding(ids, torch.tensor([len(r) for r in rows]), tok.pad_token_id)


def hf_generate(model, tok, ids, mask, seed, max_new, **kw):
    greedy = kw.get("temperature", 1.0) == 0.0
    torch.manual_seed(seed)
    out = model.generate(
        input_ids=ids, attention_mask=mask, max_new_tokens=max_new, do_sample=not greedy,
        temperature=None if greedy else kw["temperature"], top_k=None if greedy else kw.get("top_k", 0),
        top_p=None if greedy else kw.get("top_p", 1.0), min_new_tokens=kw.get("min_new_tokens"),
        eos_token_id=[tok.eos_token_id], pad_token_id=tok.pad_token_id,
        return_dict_in_generate=True, output_logits=True,
    )
    tokens = out.sequences[:, ids.shape[1] :]
    logprobs = torch.stack(out.logits, 1).float().log_softmax(-1).gather(-1, tokens.unsqueeze(-1))
    return tokens, logprobs.squeeze(-1)


@pytest.mark.parametrize("arch_fixture", ["tiny_model_path", "tiny_qwen2_path"])
def test_static_decoder_samples_what_generate_samples(arch_fixture, request):
    """Same seed, same tokens as transformers' `generate` (Llama and Qwen2, greedy, temperature,
    top-k, top-p, min_new_tokens), and the log-prob of each under the unscaled model."""
    model, tok = load(request.getfixturevalue(arch_fixture))
    ids, mask = left_padded(tok)
    for seed, kw in enumerate(SAMPLINGS):
        plan = DecodePlan(max_new_tokens=24, stop_ids=(tok.eos_token_id,), pad_id=tok.pad_token_id, **kw)
        torch.manual_seed(seed)
        tokens, logprobs, stopped_at = StaticDecoder(model).decode(ids, mask, plan)
        expected, expected_logprobs = hf_generate(model, tok, ids, mask, seed, 24, **kw)
        assert torch.equal(tokens, expected), kw
        live = torch.cumsum(torch.isin(tokens, torch.tensor([tok.eos_token_id])), 1) <= 1
        live &= tokens != tok.pad_token_id
        assert (logprobs - expected_logprobs)[live].abs().max() < 1e-5, kw
        assert stopped_at.tolist() == [0, 0, 0, 0]
        if "min_new_tokens" in kw:
            assert not torch.isin(tokens[:, :6], torch.tensor([tok.eos_token_id])).any()


def test_static_decoder_on_qwen3_equals_generate():
    """Qwen3 (per-head q/k norms) is on the supported list: greedy output equals generate's."""
    from transformers import Qwen3Config

    config = Qwen3Config(
        vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=256,
    )
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config).eval()
    ids = torch.randint(3, 128, (3, 7), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    mask[0, :3] = 0  # left padding
    mask[1, :1] = 0
    tokens, _, _ = StaticDecoder(model).decode(ids, mask, DecodePlan(max_new_tokens=12, stop_ids=(), pad_id=0))
    expected = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=12, do_sample=False,
                              pad_token_id=0, eos_token_id=None)[:, 7:]
    assert torch.equal(tokens, expected)


def test_finished_rows_are_padded_and_an_all_finished_batch_stops_early(tiny_qwen2_path):
    model, tok = load(tiny_qwen2_path)
    ids, mask = left_padded(tok)
    greedy = StaticDecoder(model).decode(
        ids, mask, DecodePlan(max_new_tokens=40, stop_ids=(), pad_id=tok.pad_token_id)
    )[0]
    # Make every row stop by its 3rd token: the result ends at the last row's stop, as
    # generate's does, padded after each row's own stop.
    stops = tuple(sorted(set(greedy[:, 2].tolist())))
    tokens, _, _ = StaticDecoder(model).decode(
        ids, mask, DecodePlan(max_new_tokens=40, stop_ids=stops, pad_id=tok.pad_token_id)
    )
    last = max(next(i for i, t in enumerate(row.tolist()) if t in stops) for row in greedy) + 1
    assert tokens.shape == (4, last) and last <= 3
    for row, full in zip(tokens, greedy, strict=True):
        first = next(i for i, t in enumerate(full.tolist()) if t in stops)
        assert row[: first + 1].tolist() == full[: first + 1].tolist()
        assert (row[first + 1 :] == tok.pad_token_id).all()


def test_backend_decoders_agree_with_stop_strings_tokens_and_min_length(tiny_qwen2_path):
    """The backend's static decoder and its `generate` path return the same result."""
    results = {}
    for decoder in ("auto", "generate"):
        gen = HFGenerationBackend()
        gen.setup(
            GenerationConfig(model_name=str(tiny_qwen2_path), backend_options={"decoder": decoder}),
            InlineCluster(device="cpu"),
        )
        rows = [gen.tokenizer(t)["input_ids"] for t in PROMPTS]
        ids = torch.full((4, max(map(len, rows))), gen.tokenizer.pad_token_id)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row)
        prompts = BatchedDataDict(input_ids=ids, input_lengths=torch.tensor([len(r) for r in rows]))
        greedy = gen.generate(prompts, SamplingParams(temperature=0.0, max_new_tokens=12))
        text = gen.tokenizer.decode(greedy["output_ids"][0, 3:5].tolist())
        results[decoder] = [
            gen.generate(prompts, SamplingParams(temperature=0.0, max_new_tokens=12, stop_strings=[text])),
            gen.generate(prompts, SamplingParams(temperature=0.0, max_new_tokens=12, stop_strings=[text],
                                                 min_new_tokens=6)),
            gen.generate(prompts, SamplingParams(temperature=0.9, top_k=40, max_new_tokens=12, seed=4,
                                                 stop_token_ids=[int(greedy["output_ids"][1, 2])])),
        ]
        assert gen.last_decoder == ("static" if decoder == "auto" else "generate")
    for ours, theirs in zip(results["auto"], results["generate"], strict=True):
        for key in ("output_ids", "lengths", "truncated"):
            assert torch.equal(ours[key], theirs[key]), key
        assert (ours["logprobs"] - theirs["logprobs"]).abs().max() < 1e-5
    first, late = results["auto"][0], results["auto"][1]
    n = int(first["lengths"][0])
    assert n <= 5 and gen.tokenizer.decode(first["output_ids"][0, :n].tolist()).endswith(text)
    assert int(late["lengths"].min()) >= 6 and int(late["lengths"][0]) < 12  # not before min_new_tokens


def test_models_the_static_decoder_refuses(tiny_qwen2_path):
    eager = AutoModelForCausalLM.from_pretrained(tiny_qwen2_path, attn_implementation="eager")
    assert "sdpa is needed" in static_decoding_unsupported(eager)
    model, _ = load(tiny_qwen2_path)
    model.config.layer_types = ["sliding_attention", "full_attention"]
    assert "sliding_attention" in static_decoding_unsupported(model)
    with pytest.raises(ValueError, match="StaticDecoder cannot decode this model"):
        StaticDecoder(model)


def test_decode_copy_is_a_bf16_twin_with_the_same_weights(tiny_qwen2_path):
    model, _ = load(tiny_qwen2_path)
    twin = decode_copy(model)
    assert twin is not model and next(twin.parameters()).dtype == torch.bfloat16
    # Qwen2 ties its embeddings; the copy does too, and keeps float32 rotary frequencies.
    assert twin.lm_head.weight is twin.model.embed_tokens.weight
    assert twin.model.rotary_emb.inv_freq.dtype == torch.float32
    assert torch.equal(twin.model.rotary_emb.inv_freq, model.model.rotary_emb.inv_freq)
    for name, param in model.named_parameters():
        assert torch.equal(twin.get_parameter(name), param.to(torch.bfloat16)), name
    assert twin.generation_config is model.generation_config
    assert not any(p.requires_grad for p in twin.parameters())
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        reference = model.to(torch.bfloat16)(ids).logits
        assert torch.allclose(twin(ids).logits, reference, atol=1e-2)


def test_decode_copy_declines_a_module_with_adapters(tiny_qwen2_path):
    from nemo_rl.config import LoRAConfig

    model, _ = load(tiny_qwen2_path)
    lora = add_lora_adapters(model, LoRAConfig(enabled=True, rank=4))
    assert decode_copy(lora.get_base_model()) is None


def test_generation_config_options_the_static_decoder_does_not_apply_are_named_once(
    tiny_qwen2_path, tmp_path, caplog
):
    """A model whose own generation config adds a repetition penalty (as Qwen2.5-Instruct's
    does): the static decoder says once that it does not apply it; `generate` applies it."""
    import shutil

    path = tmp_path / "model"
    shutil.copytree(tiny_qwen2_path, path)
    model, tok = load(path)
    model.generation_config.repetition_penalty = 1.3
    model.generation_config.save_pretrained(path)
    prompts = BatchedDataDict(
        input_ids=torch.tensor([tok("2+2=")["input_ids"]]), input_lengths=torch.tensor([4])
    )
    results = {}
    for decoder in ("auto", "generate"):
        gen = HFGenerationBackend()
        gen.setup(GenerationConfig(model_name=str(path), backend_options={"decoder": decoder}),
                  InlineCluster(device="cpu"))
        caplog.clear()
        greedy = SamplingParams(temperature=0.0, max_new_tokens=16)
        results[decoder] = [gen.generate(prompts, greedy)["output_ids"] for _ in range(2)]
        warnings = [r for r in caplog.records if "repetition_penalty=1.3" in r.getMessage()]
        assert len(warnings) == (1 if decoder == "auto" else 0), decoder
    # Greedy without the penalty repeats the tiny model's favourite tokens; with it, it may not.
    plain = StaticDecoder(model).decode(
        prompts["input_ids"], torch.ones_like(prompts["input_ids"]),
        DecodePlan(max_new_tokens=16, stop_ids=(tok.eos_token_id,), pad_id=tok.pad_token_id),
    )[0]
    assert torch.equal(results["auto"][0], plain[:, : results["auto"][0].shape[1]])
