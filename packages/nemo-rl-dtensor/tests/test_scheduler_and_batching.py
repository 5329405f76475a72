"""Pure helpers: LR schedule values, optimizer choice, micro-batch plans, counts and padding."""

from __future__ import annotations

import math

import pytest
import torch
from nemo_rl.config import PolicyConfig
from nemo_rl.config.policy import OptimizerConfig, SchedulerConfig
from nemo_rl.data import BatchedDataDict
from nemo_rl.training import build_optimizer, build_scheduler, global_valid_counts, lr_multiplier
from nemo_rl_dtensor.batching import check_batch, pad_to_multiple, plan_microbatches
from nemo_rl_dtensor.model_loading import resolve_compute_dtype
from nemo_rl_dtensor.policy_worker import merge_metrics


def test_lr_multiplier_hand_computed():
    constant = SchedulerConfig(warmup_steps=4)
    assert [lr_multiplier(k, constant) for k in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    linear = SchedulerConfig(name="linear", total_steps=4, min_lr_ratio=0.2)
    assert [lr_multiplier(k, linear) for k in range(6)] == pytest.approx(
        [1.0, 0.8, 0.6, 0.4, 0.2, 0.2]
    )
    cosine = SchedulerConfig(name="cosine", warmup_steps=1, total_steps=5)
    expected = [1.0, 1.0] + [0.5 * (1 + math.cos(math.pi * p / 4)) for p in (1, 2, 3, 4)]
    assert [lr_multiplier(k, cosine) for k in range(6)] == pytest.approx(expected)


def test_optimizer_and_scheduler_builders():
    params = list(torch.nn.Linear(2, 2).parameters())
    assert type(build_optimizer(params, OptimizerConfig(name="adam"))).__name__ == "Adam"
    sgd = build_optimizer(params, OptimizerConfig(name="sgd", lr=0.5))
    build_scheduler(sgd, SchedulerConfig(warmup_steps=2))
    assert sgd.param_groups[0]["lr"] == 0.25
    with pytest.raises(ValueError, match="total_steps, which is None"):
        build_scheduler(sgd, SchedulerConfig(name="cosine"))


def test_compute_dtype():
    assert resolve_compute_dtype("auto", "cuda") == torch.bfloat16
    assert resolve_compute_dtype("float32", "cuda") == torch.float32
    with pytest.raises(ValueError, match="loss scaling"):
        resolve_compute_dtype("float16", "cuda")


def test_plan_microbatches_per_mode():
    lengths = [5, 3, 2, 6]
    assert plan_microbatches(lengths, PolicyConfig(train_micro_batch_size=3)) == [[0, 1, 2], [3]]
    logprob_cfg = PolicyConfig(train_micro_batch_size=1, logprob_batch_size=4)
    assert plan_microbatches(lengths, logprob_cfg, for_logprobs=True) == [[0, 1, 2, 3]]
    # Token budget 10: [5, 3] costs 2 x 5 = 10; adding 2 keeps 3 x 5 = 15 > 10; [2, 6] costs 12.
    assert plan_microbatches(lengths, PolicyConfig(max_tokens_per_microbatch=10)) == [
        [0, 1],
        [2],
        [3],
    ]
    # Packing into rows of 8 tokens, longest first: 6 | 5, then 3 joins 5 and 2 joins 6.
    packing = PolicyConfig(max_tokens_per_microbatch=8, sequence_packing=True)
    assert plan_microbatches(lengths, packing) == [[2, 3], [0, 1]]


def test_counts_padding_and_checks():
    batch = BatchedDataDict(
        input_ids=torch.ones(3, 4, dtype=torch.long),
        input_lengths=torch.tensor([4, 2, 3]),
        token_mask=torch.tensor([[0, 1, 1, 1], [0, 1, 0, 0], [0, 1, 1, 0]]),
        sample_mask=torch.tensor([1.0, 1.0, 0.0]),
    )
    assert global_valid_counts(batch) == (4, 2)
    padded, size = pad_to_multiple(batch, 2)
    assert size == 3 and padded.size == 4
    assert padded["sample_mask"].tolist() == [1.0, 1.0, 0.0, 0.0]
    assert padded["input_lengths"].tolist() == [4, 2, 3, 3]
    check_batch(batch)
    bad = batch.copy()
    bad["token_mask"] = torch.ones(3, 5)
    with pytest.raises(ValueError, match="token_mask.*expected \\(3, 4\\)"):
        check_batch(bad)
    bad = batch.copy()
    bad["input_lengths"] = torch.tensor([0, 1, 1])
    with pytest.raises(ValueError, match="must lie in \\[1, 4\\]"):
        check_batch(bad)


def test_merge_metrics_sums_and_extremes():
    merged = merge_metrics(
        [{"loss": 1, "kl_max": 2, "ratio_min": 0.5}, {"loss": 2, "kl_max": 1, "ratio_min": 0.1}]
    )
    assert merged == {"loss": 3.0, "kl_max": 2.0, "ratio_min": 0.1}
