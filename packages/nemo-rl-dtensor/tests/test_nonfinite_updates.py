"""A micro-batch whose loss is not finite never reaches the weights, the optimizer or the scheduler."""

from __future__ import annotations

import copy

import pytest
import torch
from nemo_rl.algorithms.sft import NLLLoss
from nemo_rl.config import PolicyConfig
from nemo_rl.infra.cluster import InlineCluster
from nemo_rl.protocols import NONFINITE_MICROBATCHES, SKIPPED_UPDATES
from nemo_rl_dtensor import DTensorTrainingBackend


class PoisonedLoss:
    """NLL, except that the micro-batches listed in `poisoned` (by call order) return `value`."""

    def __init__(self, poisoned: set[int], value: float = float("nan")) -> None:
        self.inner, self.poisoned, self.value, self.calls = NLLLoss(), poisoned, value, 0

    def __call__(self, logprobs, batch, global_valid_tokens, global_valid_seqs):
        loss, metrics = self.inner(logprobs, batch, global_valid_tokens, global_valid_seqs)
        if self.calls in self.poisoned:
            loss = loss * self.value  # keeps the graph: the gradient is non-finite too
        self.calls += 1
        return loss, metrics


def _snapshot(backend: DTensorTrainingBackend) -> dict:
    worker = backend.group.worker  # the inline cluster's one worker object
    return {
        "weights": {k: v.detach().clone() for k, v in worker.module.state_dict().items()},
        "optimizer": copy.deepcopy(worker.optimizer.state_dict()),
        "scheduler": copy.deepcopy(worker.scheduler.state_dict()),
    }


def _assert_identical(a, b) -> None:
    for name, tensor in a["weights"].items():
        assert torch.equal(tensor, b["weights"][name]), name
    assert a["scheduler"] == b["scheduler"]
    state_a, state_b = a["optimizer"]["state"], b["optimizer"]["state"]
    assert state_a.keys() == state_b.keys()
    for key in state_a:
        for field, value in state_a[key].items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(state_b[key][field])), (key, field)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_nonfinite_microbatch_skips_the_whole_update_bit_for_bit(tiny_model_path, sft_batch, value):
    backend = DTensorTrainingBackend()
    backend.setup(PolicyConfig(model_name=str(tiny_model_path), train_micro_batch_size=2,
                               optimizer={"lr": 1e-2}), InlineCluster(device="cpu"))
    backend.train_step(sft_batch, NLLLoss())  # Adam moments and the scheduler have state now
    before = _snapshot(backend)
    metrics = backend.train_step(sft_batch, PoisonedLoss({2}, value))  # 3rd of 4 micro-batches
    _assert_identical(before, _snapshot(backend))
    assert metrics[SKIPPED_UPDATES] == 1.0
    assert metrics[NONFINITE_MICROBATCHES] == 1.0
    assert not torch.isfinite(torch.tensor(metrics["grad_norm"]))
    after = backend.train_step(sft_batch, NLLLoss())  # training goes on from the same state
    assert after[SKIPPED_UPDATES] == 0.0 and torch.isfinite(torch.tensor(after["grad_norm"]))
    assert _snapshot(backend)["scheduler"]["last_epoch"] == before["scheduler"]["last_epoch"] + 1


def test_only_the_poisoned_update_of_a_step_is_skipped(tiny_model_path, sft_batch):
    backend = DTensorTrainingBackend()
    backend.setup(PolicyConfig(model_name=str(tiny_model_path), train_micro_batch_size=4,
                               train_global_batch_size=4), InlineCluster(device="cpu"))
    metrics = backend.train_step(sft_batch, PoisonedLoss({0}))  # 2 updates of 1 micro-batch each
    assert metrics["num_updates"] == 2.0
    assert metrics[SKIPPED_UPDATES] == 1.0 and metrics[NONFINITE_MICROBATCHES] == 1.0


def test_two_fsdp_ranks_skip_together_when_one_shard_is_not_finite(tiny_model_path, sft_batch):
    from nemo_rl.algorithms.grpo import ClippedPGLoss, GRPOLossConfig
    from nemo_rl.infra.cluster import LocalProcessCluster

    loss_fn = ClippedPGLoss(GRPOLossConfig(kl_penalty=0.0))
    with LocalProcessCluster(world_size=2, backend="gloo") as cluster:
        backend = DTensorTrainingBackend()
        backend.setup(PolicyConfig(model_name=str(tiny_model_path), train_micro_batch_size=4,
                                   optimizer={"lr": 1e-2}), cluster)
        batch = sft_batch.slice(0, sft_batch.size)
        batch["prev_logprobs"] = batch["generation_logprobs"] = backend.get_logprobs(batch)
        batch["advantages"] = torch.linspace(-1.0, 1.0, batch.size)
        backend.train_step(batch, loss_fn)
        before = {k: v.clone() for k, v in backend.export_weights()}
        batch["advantages"][0] = float("nan")  # row 0 lands in rank 0's shard only
        metrics = backend.train_step(batch, loss_fn)
        assert metrics[SKIPPED_UPDATES] == 1.0 and metrics[NONFINITE_MICROBATCHES] == 1.0
        for name, tensor in backend.export_weights():
            assert torch.equal(tensor, before[name]), name
        batch["advantages"][0] = 0.5
        assert backend.train_step(batch, loss_fn)[SKIPPED_UPDATES] == 0.0
        backend.shutdown()
