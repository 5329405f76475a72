"""Checkpoints load with plain transformers, resume exactly, and export_weights streams HF tensors."""

from __future__ import annotations

import json

import pytest
import torch
from nemo_rl.algorithms.sft import NLLLoss
from nemo_rl.config import PolicyConfig
from nemo_rl.infra.cluster import InlineCluster
from nemo_rl.training import token_logprobs
from nemo_rl_dtensor import DTensorTrainingBackend
from nemo_rl_dtensor.checkpointing import hf_weight_shards, save_hf_model
from transformers import AutoModelForCausalLM, AutoTokenizer


def make_backend(model_path) -> DTensorTrainingBackend:
    config = PolicyConfig(
        model_name=str(model_path),
        optimizer={"lr": 3e-3},
        scheduler={"name": "cosine", "warmup_steps": 1, "total_steps": 4},
        train_micro_batch_size=3,
    )
    backend = DTensorTrainingBackend()
    backend.setup(config, InlineCluster(device="cpu"))
    return backend


@pytest.mark.parametrize("arch_fixture", ["tiny_model_path", "tiny_qwen2_path"])
def test_checkpoint_loads_with_plain_transformers(arch_fixture, request, sft_batch, tmp_path):
    backend = make_backend(request.getfixturevalue(arch_fixture))
    backend.train_step(sft_batch, NLLLoss())
    backend.save_checkpoint(tmp_path / "ckpt")

    model = AutoModelForCausalLM.from_pretrained(tmp_path / "ckpt")
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "ckpt")
    assert tokenizer.decode(tokenizer("hi there")["input_ids"]) == "hi there"
    assert tokenizer.apply_chat_template([{"role": "user", "content": "q"}], tokenize=False)
    config = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert not config["architectures"][0].startswith("FSDP")
    with torch.no_grad():
        logits = model(
            sft_batch["input_ids"], attention_mask=(sft_batch["token_mask"] >= 0).long()
        ).logits
        ours = backend.inline_module()(sft_batch["input_ids"]).logits
    torch.testing.assert_close(logits, ours, atol=1e-5, rtol=0)
    lengths = sft_batch["input_lengths"]
    expected = token_logprobs(logits, sft_batch["input_ids"])
    got = backend.get_logprobs(sft_batch)
    for i, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(got[i, :n], expected[i, :n], atol=1e-5, rtol=0)


def test_resume_continues_with_identical_losses(tiny_model_path, sft_batch, tmp_path):
    uninterrupted = make_backend(tiny_model_path)
    full = [uninterrupted.train_step(sft_batch, NLLLoss()) for _ in range(4)]

    first = make_backend(tiny_model_path)
    for _ in range(2):
        first.train_step(sft_batch, NLLLoss())
    first.save_checkpoint(tmp_path / "step2")
    resumed = make_backend(tiny_model_path)
    resumed.load_checkpoint(tmp_path / "step2")
    rest = [resumed.train_step(sft_batch, NLLLoss()) for _ in range(2)]

    for a, b in zip(full[2:], rest, strict=True):
        assert b["loss"] == pytest.approx(a["loss"], abs=1e-6)
        assert b["grad_norm"] == pytest.approx(a["grad_norm"], abs=1e-5)
        assert b["lr"] == pytest.approx(a["lr"], rel=1e-9)  # the scheduler resumed too
    # The reference policy stays the initial model, not the checkpoint.
    torch.testing.assert_close(
        resumed.get_logprobs(sft_batch, reference=True),
        uninterrupted.get_logprobs(sft_batch, reference=True),
    )


def test_export_weights_streams_every_hf_tensor(tiny_qwen2_path, sft_batch):
    backend = make_backend(tiny_qwen2_path)
    backend.train_step(sft_batch, NLLLoss())
    exported = dict(backend.export_weights())
    fresh = AutoModelForCausalLM.from_pretrained(tiny_qwen2_path)
    assert set(exported) == set(fresh.state_dict())  # HF names, tied lm_head included
    live = backend.inline_module().state_dict()
    for name, tensor in exported.items():
        assert torch.equal(tensor, live[name]), name
    name = "model.layers.0.mlp.up_proj.weight"
    assert not torch.equal(exported[name], fresh.state_dict()[name])  # the trained weights


def test_weight_sharding_writes_an_index(tiny_model_path, tmp_path):
    model = AutoModelForCausalLM.from_pretrained(tiny_model_path)
    # 200 kB per file forces several files from a ~1 MB model.
    save_hf_model(
        model.state_dict(), model.config, model.generation_config, tmp_path / "m", 200_000
    )
    index = json.loads((tmp_path / "m" / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 1
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "m")
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, reloaded.state_dict()[name]), name
    assert hf_weight_shards({"a": 0, "b": 0}, {"a": 3, "b": 3}, max_shard_bytes=10) == [["a", "b"]]


def test_load_checkpoint_errors(tiny_model_path, tmp_path):
    backend = make_backend(tiny_model_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        backend.load_checkpoint(tmp_path / "nope")
    (tmp_path / "empty").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="no \\*.safetensors"):
        backend.load_checkpoint(tmp_path / "empty")
