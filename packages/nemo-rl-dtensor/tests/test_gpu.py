"""GPU: bf16 training and generation on a random model of Qwen2.5-0.5B's shape (no hub access)."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
import torch
from nemo_rl.algorithms.sft import NLLLoss
from nemo_rl.config import GenerationConfig, PolicyConfig, SamplingParams
from nemo_rl.data import BatchedDataDict
from nemo_rl.infra.cluster import InlineCluster, LocalProcessCluster
from nemo_rl_dtensor import DTensorTrainingBackend, HFGenerationBackend
from nemo_rl_dtensor.testing import QWEN2_0_5B_SHAPE, build_tiny_model, prompt_plus_generation
from transformers import AutoTokenizer

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def qwen_0_5b(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("qwen2-0.5b"), **QWEN2_0_5B_SHAPE)


def policy_config(path: Path, **overrides) -> PolicyConfig:
    fields = {
        "model_name": str(path),
        "optimizer": {"lr": 1e-4, "weight_decay": 0.0},
        "activation_checkpointing": True,
        "train_micro_batch_size": 4,
    }
    fields.update(overrides)
    return PolicyConfig(**fields)


def test_bf16_training_and_generation_on_0_5b(qwen_0_5b, sft_batch_factory):
    params = sum(p.numel() for p in _count_model(qwen_0_5b).parameters())
    assert params > 0.45e9
    batch = sft_batch_factory(AutoTokenizer.from_pretrained(qwen_0_5b))
    trainer = DTensorTrainingBackend()
    trainer.setup(policy_config(qwen_0_5b), InlineCluster(device="cuda"))
    assert trainer.inline_module().lm_head.weight.dtype == torch.float32  # fp32 master weights
    losses = [trainer.train_step(batch, NLLLoss())["loss"] for _ in range(4)]
    assert all(torch.isfinite(torch.tensor(losses))) and losses[-1] < losses[0], losses

    gen = HFGenerationBackend()
    gen.setup(GenerationConfig(model_name=str(qwen_0_5b)), InlineCluster(device="cuda"))
    prompts = BatchedDataDict(
        input_ids=batch["input_ids"][:, :6].clone(),
        input_lengths=batch["input_lengths"].clamp(max=6),
    )
    gen.update_weights(trainer.export_weights())
    out = gen.generate(prompts, SamplingParams(temperature=1.0, max_new_tokens=16, seed=0))
    assert gen.model.dtype == torch.bfloat16
    assert out["output_ids"].shape[0] == 8 and torch.isfinite(out["logprobs"]).all()
    # The bf16 generator and the fp32-master / bf16-compute trainer agree to bf16 accuracy.
    full = prompt_plus_generation(prompts, out)
    scored = trainer.get_logprobs(full)
    diffs = [
        (scored[i, p : p + n] - out["logprobs"][i, :n]).abs().mean().item()
        for i, (p, n) in enumerate(
            zip(prompts["input_lengths"].tolist(), out["lengths"].tolist(), strict=True)
        )
    ]
    assert max(diffs) < 0.1, diffs

    # Garbage that earlier tests left in reference cycles would count as memory this test failed
    # to offload: collect it first.
    gc.collect()
    before = torch.cuda.memory_allocated()
    gen.sleep()
    trainer.offload()
    assert torch.cuda.memory_allocated() < 0.2 * before
    trainer.onload()
    gen.wake()
    assert trainer.train_step(batch, NLLLoss())["loss"] < losses[0]


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 GPUs")
def test_two_gpu_fsdp2_matches_one_gpu(qwen_0_5b, sft_batch_factory):
    batch = sft_batch_factory(AutoTokenizer.from_pretrained(qwen_0_5b))
    config = policy_config(qwen_0_5b, precision="float32", train_global_batch_size=8)
    single = DTensorTrainingBackend()
    single.setup(config, InlineCluster(device="cuda"))
    expected = [single.train_step(batch, NLLLoss()) for _ in range(2)]
    single.shutdown()
    del single
    torch.cuda.empty_cache()
    with LocalProcessCluster(world_size=2, backend="nccl") as cluster:
        sharded = DTensorTrainingBackend()
        sharded.setup(config, cluster)
        got = [sharded.train_step(batch, NLLLoss()) for _ in range(2)]
    for a, b in zip(expected, got, strict=True):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-4)
        assert b["grad_norm"] == pytest.approx(a["grad_norm"], rel=1e-3)


def _count_model(path: Path) -> torch.nn.Module:
    from transformers import AutoConfig, AutoModelForCausalLM

    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(path))
