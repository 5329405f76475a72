"""Two FSDP2 workers (gloo, two processes) reproduce one worker on the same global batch."""

from __future__ import annotations

import pytest
import torch
from nemo_rl.algorithms.sft import NLLLoss
from nemo_rl.config import PolicyConfig
from nemo_rl.infra.cluster import InlineCluster, LocalProcessCluster
from nemo_rl_dtensor import DTensorTrainingBackend
from transformers import AutoModelForCausalLM


def test_two_fsdp2_workers_match_one_worker(tiny_qwen2_path, sft_batch, tmp_path):
    # A token budget gives the two ranks different numbers of micro-batches: they must stay in step.
    config = PolicyConfig(
        model_name=str(tiny_qwen2_path),
        optimizer={"lr": 3e-3},
        max_tokens_per_microbatch=40,
        train_global_batch_size=4,
    )
    single = DTensorTrainingBackend()
    single.setup(config, InlineCluster(device="cpu"))
    expected = [single.train_step(sft_batch, NLLLoss()) for _ in range(2)]
    odd_batch = sft_batch.slice(0, 5)  # not divisible by 2 ranks: padded, then trimmed

    with LocalProcessCluster(world_size=2, backend="gloo") as cluster:
        sharded = DTensorTrainingBackend()
        sharded.setup(config, cluster)
        got = [sharded.train_step(sft_batch, NLLLoss()) for _ in range(2)]
        for a, b in zip(expected, got, strict=True):
            assert b["num_updates"] == a["num_updates"] == 2
            assert b["loss"] == pytest.approx(a["loss"], abs=1e-5)
            assert b["grad_norm"] == pytest.approx(a["grad_norm"], abs=1e-5)
            assert b["num_valid_tokens"] == a["num_valid_tokens"]
        logprobs = sharded.get_logprobs(odd_batch)
        reference = sharded.get_logprobs(odd_batch, reference=True)
        exported = dict(sharded.export_weights())
        sharded.save_checkpoint(tmp_path / "ckpt")
        sharded.train_step(sft_batch, NLLLoss())  # moves away from the checkpoint ...
        sharded.load_checkpoint(tmp_path / "ckpt")  # ... and back: the sharded load path
        resumed = sharded.train_step(sft_batch, NLLLoss())

    torch.testing.assert_close(logprobs, single.get_logprobs(odd_batch), atol=1e-5, rtol=0)
    torch.testing.assert_close(
        reference, single.get_logprobs(odd_batch, reference=True), atol=1e-5, rtol=0
    )
    live = single.inline_module().state_dict()
    assert set(exported) == set(live)
    for name, tensor in exported.items():
        torch.testing.assert_close(tensor, live[name], atol=1e-5, rtol=0)
    saved = AutoModelForCausalLM.from_pretrained(tmp_path / "ckpt").state_dict()
    for name, tensor in saved.items():
        torch.testing.assert_close(tensor, live[name], atol=1e-5, rtol=0)
    next_step = single.train_step(sft_batch, NLLLoss())
    assert resumed["loss"] == pytest.approx(next_step["loss"], abs=1e-5)
    assert resumed["lr"] == next_step["lr"]
    assert sorted(p.name for p in (tmp_path / "ckpt" / "optim").glob("rng_rank*.pt")) == [
        "rng_rank0.pt",
        "rng_rank1.pt",
    ]
