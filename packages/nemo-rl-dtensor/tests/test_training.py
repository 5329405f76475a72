"""Single-process training: loss goes down, micro-batching does not change the math, masks, clipping."""

from __future__ import annotations

import pytest
import torch
from nemo_rl.algorithms.sft import NLLLoss
from nemo_rl.config import PolicyConfig
from nemo_rl.data import BatchedDataDict
from nemo_rl.infra.cluster import InlineCluster
from nemo_rl_dtensor import DTensorTrainingBackend


def make_backend(model_path, **overrides) -> DTensorTrainingBackend:
    fields = {"model_name": str(model_path), "optimizer": {"lr": 3e-3, "weight_decay": 0.0}}
    fields.update(overrides)
    backend = DTensorTrainingBackend()
    backend.setup(PolicyConfig(**fields), InlineCluster(device="cpu"))
    return backend


def loss_curve(backend, batch, steps: int) -> list[float]:
    return [backend.train_step(batch, NLLLoss())["loss"] for _ in range(steps)]


def test_sft_training_lowers_the_loss(tiny_model_path, sft_batch):
    curve = loss_curve(make_backend(tiny_model_path), sft_batch, steps=8)
    assert curve[-1] < 0.6 * curve[0], curve
    assert all(b < a for a, b in zip(curve, curve[1:], strict=False)), curve


@pytest.mark.parametrize(
    "batching",
    [
        {"train_micro_batch_size": 1},
        {"train_micro_batch_size": 4, "activation_checkpointing": True},
        {"max_tokens_per_microbatch": 40},  # dynamic batching by token budget
        {"max_tokens_per_microbatch": 40, "sequence_packing": True},
    ],
    ids=["mbs1", "mbs4-checkpointing", "token-budget", "packing"],
)
def test_loss_curve_does_not_depend_on_microbatching(tiny_model_path, sft_batch, batching):
    reference = loss_curve(make_backend(tiny_model_path, train_micro_batch_size=4), sft_batch, 3)
    curve = loss_curve(make_backend(tiny_model_path, **batching), sft_batch, 3)
    assert curve == pytest.approx(reference, abs=1e-5)


def test_global_batch_size_gives_one_update_per_chunk(tiny_model_path, sft_batch):
    split = make_backend(tiny_model_path, train_global_batch_size=4, train_micro_batch_size=2)
    metrics = split.train_step(sft_batch, NLLLoss())
    assert metrics["num_updates"] == 2.0
    manual = make_backend(tiny_model_path)
    first = manual.train_step(sft_batch.slice(0, 4), NLLLoss())
    second = manual.train_step(sft_batch.slice(4, 8), NLLLoss())
    assert metrics["loss"] == pytest.approx((first["loss"] + second["loss"]) / 2, abs=1e-6)
    assert metrics["grad_norm"] == pytest.approx(
        (first["grad_norm"] + second["grad_norm"]) / 2, abs=1e-5
    )
    torch.testing.assert_close(split.get_logprobs(sft_batch), manual.get_logprobs(sft_batch))


def test_masked_samples_change_nothing(tiny_model_path, sft_batch):
    junk = sft_batch.slice(0, 2)
    junk["input_ids"] = torch.randint(6, 100, junk["input_ids"].shape)
    junk["sample_mask"] = torch.zeros(2)
    with_junk = BatchedDataDict.from_batches([sft_batch, junk])
    clean = make_backend(tiny_model_path).train_step(sft_batch, NLLLoss())
    padded = make_backend(tiny_model_path).train_step(with_junk, NLLLoss())
    assert padded["loss"] == pytest.approx(clean["loss"], abs=1e-6)
    assert padded["grad_norm"] == pytest.approx(clean["grad_norm"], abs=1e-5)
    assert padded["num_valid_tokens"] == clean["num_valid_tokens"] == sft_batch["token_mask"].sum()


def test_gradient_clipping_bounds_the_update(tiny_model_path, sft_batch):
    backend = make_backend(
        tiny_model_path,
        optimizer={"name": "sgd", "lr": 1.0, "weight_decay": 0.0},
        max_grad_norm=0.01,
    )
    module = backend.inline_module()
    before = torch.cat([p.detach().flatten().clone() for p in module.parameters()])
    metrics = backend.train_step(sft_batch, NLLLoss())
    after = torch.cat([p.detach().flatten() for p in module.parameters()])
    assert metrics["grad_norm"] > 1.0  # the raw norm is reported, before clipping
    assert (after - before).norm().item() == pytest.approx(
        0.01, rel=1e-3
    )  # SGD step = lr * clipped


def test_scheduler_warmup_sets_the_reported_lr(tiny_model_path, sft_batch):
    backend = make_backend(
        tiny_model_path,
        optimizer={"lr": 1e-3},
        scheduler={"name": "linear", "warmup_steps": 2, "total_steps": 4},
    )
    lrs = [backend.train_step(sft_batch, NLLLoss())["lr"] for _ in range(4)]
    assert lrs == pytest.approx([5e-4, 1e-3, 1e-3, 5e-4])


def test_bad_inputs_raise_clear_errors(tiny_model_path, sft_batch):
    backend = make_backend(tiny_model_path, train_global_batch_size=3, train_micro_batch_size=1)
    with pytest.raises(ValueError, match="multiple of the global batch size"):
        backend.train_step(sft_batch, NLLLoss())
    no_mask = BatchedDataDict({k: v for k, v in sft_batch.items() if k != "token_mask"})
    with pytest.raises(KeyError, match="no 'token_mask'"):
        backend.train_step(no_mask, NLLLoss())
    too_long = sft_batch.copy()
    too_long["input_lengths"] = too_long["input_lengths"] + 100
    with pytest.raises(ValueError, match="input_lengths"):
        backend.get_logprobs(too_long)
    with pytest.raises(RuntimeError, match="not set up"):
        DTensorTrainingBackend().train_step(sft_batch, NLLLoss())
    with pytest.raises(ValueError, match="float16"):
        make_backend(tiny_model_path, precision="float16")
    with pytest.raises(FileNotFoundError, match="no such directory"):
        make_backend(tiny_model_path / "missing")


def test_backend_options_are_refused_not_ignored(tiny_qwen2_path):
    from nemo_rl.config import ConfigError

    config = PolicyConfig(model_name=str(tiny_qwen2_path), backend_options={"cpu_offload": True})
    with pytest.raises(ConfigError, match=r"policy.backend_options \['cpu_offload'\] are not read by the dtensor backend"):
        DTensorTrainingBackend().setup(config, InlineCluster(device="cpu"))
