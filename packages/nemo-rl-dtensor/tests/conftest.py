"""Shared fixtures: tiny offline models built once per session, and a small fixed SFT batch."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from nemo_rl.data import BatchedDataDict
from nemo_rl_dtensor.testing import build_tiny_model

SFT_PAIRS = [
    ("2+2=", "4"),
    ("Say hi: ", "hi"),
    ("abc -> ", "abcabc"),
    ("Capital of France? ", "Paris"),
    ("1,2,3,", "4,5"),
    ("x", "yz"),
    ("Reverse ab: ", "ba"),
    ("ok? ", "ok!"),
]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer Llama (untied embeddings) with the char tokenizer, saved once per session."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"), arch="llama")


@pytest.fixture(scope="session")
def tiny_qwen2_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer Qwen2 (tied embeddings, grouped-query attention) with the char tokenizer."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-qwen2"), arch="qwen2")


def make_sft_batch(tokenizer, pairs: list[tuple[str, str]] = SFT_PAIRS) -> BatchedDataDict:
    """Right-padded prompt + answer + EOS rows; token_mask marks the answer and EOS tokens."""
    rows, masks = [], []
    for prompt, answer in pairs:
        p = tokenizer(prompt)["input_ids"]
        a = tokenizer(answer)["input_ids"] + [tokenizer.eos_token_id]
        rows.append(p + a)
        masks.append([0] * len(p) + [1] * len(a))
    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
    token_mask = torch.zeros(len(rows), width)
    for i, (row, mask) in enumerate(zip(rows, masks, strict=True)):
        input_ids[i, : len(row)] = torch.tensor(row)
        token_mask[i, : len(mask)] = torch.tensor(mask, dtype=torch.float32)
    return BatchedDataDict(
        input_ids=input_ids,
        input_lengths=torch.tensor([len(r) for r in rows]),
        token_mask=token_mask,
        sample_mask=torch.ones(len(rows)),
    )


@pytest.fixture(scope="session")
def sft_batch_factory():
    """`make_sft_batch(tokenizer, pairs=SFT_PAIRS)`, for tests that bring their own model."""
    return make_sft_batch


@pytest.fixture(scope="session")
def sft_batch(tiny_model_path: Path) -> BatchedDataDict:
    """Eight fixed prompt/answer rows of 3 to 26 tokens, encoded with the tiny tokenizer."""
    from transformers import AutoTokenizer

    return make_sft_batch(AutoTokenizer.from_pretrained(tiny_model_path))
