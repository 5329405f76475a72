"""The vocab-parallel log-softmax against torch.log_softmax on the full logits: one shard, and
2 or 4 shards held by real gloo processes (values and gradients)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from nemo_rl_megatron.vocab_parallel import shifted_token_logprobs, vocab_parallel_logprobs

VOCAB, PADDED = 10, 12  # 2 padding columns, as after rounding the vocabulary up for TP


def reference(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return torch.log_softmax(logits[..., :VOCAB].double(), -1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)


def test_hand_computed_values():
    logits = torch.log(torch.tensor([[0.1, 0.2, 0.7]]))
    got = vocab_parallel_logprobs(logits, torch.tensor([2]), vocab_start=0, vocab_size=3)
    assert got.item() == pytest.approx(torch.log(torch.tensor(0.7)).item(), abs=1e-6)
    # Two padding columns with large logits would take 88% of the mass if counted.
    padded = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    got = vocab_parallel_logprobs(padded, torch.tensor([0]), vocab_start=0, vocab_size=2)
    assert got.exp().item() == pytest.approx(0.5)


def test_one_shard_matches_log_softmax_with_gradients():
    torch.manual_seed(0)
    logits = (torch.randn(3, 5, PADDED) * 4).requires_grad_()
    targets = torch.randint(0, VOCAB, (3, 5))
    got = vocab_parallel_logprobs(logits, targets, 0, VOCAB)
    torch.testing.assert_close(got.double(), reference(logits.detach(), targets), atol=1e-5, rtol=0)
    weights = torch.randn(3, 5)
    (got * weights).sum().backward()
    ref_logits = logits.detach().clone().requires_grad_()
    (reference(ref_logits, targets).float() * weights).sum().backward()
    torch.testing.assert_close(logits.grad, ref_logits.grad, atol=1e-5, rtol=0)


def test_shifted_logprobs_follow_the_dtensor_convention():
    torch.manual_seed(1)
    logits, ids = torch.randn(2, 4, PADDED), torch.randint(0, VOCAB, (2, 4))
    got = shifted_token_logprobs(logits, ids, 0, VOCAB)
    assert got[:, 0].eq(0).all()
    torch.testing.assert_close(got[:, 1:].double(), reference(logits[:, :-1], ids[:, 1:]),
                               atol=1e-5, rtol=0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Each rank is its own Python process (a file, since test modules cannot be pickled for spawn).
RANK_SCRIPT = """
import sys, torch, torch.distributed as dist
from nemo_rl_megatron.vocab_parallel import vocab_parallel_logprobs
rank, world, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
torch.set_num_threads(1)
dist.init_process_group("gloo", rank=rank, world_size=world)
torch.manual_seed(0)  # every rank draws the same full logits, targets and upstream gradient
logits, targets, weights = torch.randn(2, 6, {padded}) * 5, torch.randint(0, {vocab}, (2, 6)), torch.randn(2, 6)
pairs = [dist.new_group([0, 1]), dist.new_group([2, 3])]
results = {{}}
for tp, group in ((4, dist.group.WORLD), (2, pairs[rank // 2])):
    local = {padded} // tp
    start = (rank % tp) * local
    mine = logits[..., start : start + local].clone().requires_grad_()
    got = vocab_parallel_logprobs(mine, targets, start, {vocab}, group)
    (got * weights).sum().backward()
    results[tp] = (got.detach(), mine.grad, start, local)
torch.save(results, out)
dist.destroy_process_group()
"""


def test_tensor_parallel_shards_in_gloo_processes_match_the_full_softmax(tmp_path):
    script = tmp_path / "rank.py"
    script.write_text(RANK_SCRIPT.format(padded=PADDED, vocab=VOCAB))
    src = str(Path(__file__).parents[1] / "src")
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()),
           "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    procs = [
        subprocess.Popen([sys.executable, str(script), str(r), "4", str(tmp_path / f"{r}.pt")], env=env)
        for r in range(4)
    ]
    assert [p.wait(timeout=240) for p in procs] == [0, 0, 0, 0]
    torch.manual_seed(0)
    logits = torch.randn(2, 6, PADDED) * 5
    targets = torch.randint(0, VOCAB, (2, 6))
    weights = torch.randn(2, 6)
    full = logits.clone().requires_grad_()
    expected = reference(full, targets)
    (expected.float() * weights).sum().backward()
    for rank in range(4):
        for tp, (got, grad, start, local) in torch.load(tmp_path / f"{rank}.pt").items():
            # TP 4's last rank holds columns 9-11: one real token and the two padding ones.
            torch.testing.assert_close(got.double(), expected.detach(), atol=1e-5, rtol=0,
                                       msg=lambda m, tp=tp, rank=rank: f"tp {tp} rank {rank}: {m}")
            torch.testing.assert_close(grad, full.grad[..., start : start + local], atol=1e-5, rtol=0)
