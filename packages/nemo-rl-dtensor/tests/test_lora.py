"""LoRA in the dtensor backend (tiny Qwen2, CPU, float32): only adapters train and sit in the
optimizer, the reference is the base model, export and checkpoints give the merged policy and a
peft-loadable adapter, and two FSDP2 ranks reproduce one."""

from __future__ import annotations

import json
import sys

import pytest
import torch
from nemo_rl.algorithms.sft import NLLLoss
from nemo_rl.config import ConfigError, PolicyConfig
from nemo_rl.infra.cluster import InlineCluster, LocalProcessCluster
from nemo_rl_dtensor import DTensorTrainingBackend
from nemo_rl_dtensor.lora import DEFAULT_TARGET_MODULES
from transformers import AutoModelForCausalLM

peft = pytest.importorskip("peft")

LORA = {"enabled": True, "rank": 4, "alpha": 8.0}


def lora_config(model_path, **lora) -> PolicyConfig:
    return PolicyConfig(
        model_name=str(model_path), precision="float32", optimizer={"lr": 1e-2},
        train_micro_batch_size=4, lora={**LORA, **lora},
    )


def make_backend(model_path, cluster=None, **lora) -> DTensorTrainingBackend:
    backend = DTensorTrainingBackend()
    backend.setup(lora_config(model_path, **lora), cluster or InlineCluster(device="cpu"))
    return backend


def base_logprobs(model_path, batch) -> torch.Tensor:
    """log p(token t | < t) under the untouched base model, zero at column 0 and padding."""
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    ids = batch["input_ids"]
    with torch.no_grad():
        logits = model(ids).logits.float()
    picked = torch.log_softmax(logits[:, :-1], -1).gather(-1, ids[:, 1:, None]).squeeze(-1)
    out = torch.cat([torch.zeros(ids.shape[0], 1), picked], dim=1)
    keep = torch.arange(ids.shape[1])[None] < batch["input_lengths"][:, None]
    return out * keep


def test_only_adapters_train_and_the_optimizer_holds_only_them(tiny_qwen2_path, sft_batch):
    backend = make_backend(tiny_qwen2_path)
    module = backend.inline_module()
    worker = backend.group.worker
    trainable = {name for name, p in module.named_parameters() if p.requires_grad}
    assert trainable and all(".lora_A." in n or ".lora_B." in n for n in trainable)
    in_optimizer = {id(p) for group in worker.optimizer.param_groups for p in group["params"]}
    assert in_optimizer == {id(p) for p in module.parameters() if p.requires_grad}
    assert worker.reference is None  # no copy of the weights for the reference

    # The same counts as peft on a model it wraps itself with the same settings.
    plain = AutoModelForCausalLM.from_pretrained(tiny_qwen2_path)
    reference = peft.get_peft_model(plain, peft.LoraConfig(
        r=4, lora_alpha=8, target_modules=DEFAULT_TARGET_MODULES["qwen2"]))
    trainable_count, total = reference.get_nb_trainable_parameters()
    assert backend.parameter_counts() == {"trainable": trainable_count, "total": total}
    # 2 layers x (q 128x128, k/v 128x64, o 128x128, gate/up 128x256, down 256x128) at rank 4
    assert trainable_count == 2 * 4 * ((128 + 128) * 2 + (128 + 64) * 2 + (128 + 256) * 3)

    frozen = {k: v.clone() for k, v in module.state_dict().items() if "lora_" not in k}
    losses = [backend.train_step(sft_batch, NLLLoss())["loss"] for _ in range(3)]
    assert losses[-1] < losses[0], losses
    for name, tensor in module.state_dict().items():
        if name in frozen:
            assert torch.equal(tensor, frozen[name]), f"frozen weight {name} changed"


def test_reference_logprobs_are_the_base_model(tiny_qwen2_path, sft_batch):
    backend = make_backend(tiny_qwen2_path)
    for _ in range(2):
        backend.train_step(sft_batch, NLLLoss())
    expected = base_logprobs(tiny_qwen2_path, sft_batch)
    torch.testing.assert_close(
        backend.get_logprobs(sft_batch, reference=True), expected, atol=1e-6, rtol=0
    )
    assert (backend.get_logprobs(sft_batch) - expected).abs().max() > 1e-2  # the policy moved


def test_export_and_checkpoint_give_the_merged_policy(tiny_qwen2_path, sft_batch, tmp_path):
    backend = make_backend(tiny_qwen2_path, save_merged=True)
    for _ in range(2):
        backend.train_step(sft_batch, NLLLoss())
    backend.save_checkpoint(tmp_path / "ckpt")
    live = backend.inline_module()
    with torch.no_grad():
        ours = live(sft_batch["input_ids"]).logits

    # The adapter loads with peft onto the base model and gives the same logits.
    config = json.loads((tmp_path / "ckpt" / "adapter_config.json").read_text())
    assert config["r"] == 4 and config["lora_alpha"] == 8
    loaded = peft.PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(tiny_qwen2_path), tmp_path / "ckpt"
    )
    merged_dir = AutoModelForCausalLM.from_pretrained(tmp_path / "ckpt" / "merged")
    with torch.no_grad():
        torch.testing.assert_close(loaded(sft_batch["input_ids"]).logits, ours, atol=1e-6, rtol=0)
        torch.testing.assert_close(
            merged_dir(sft_batch["input_ids"]).logits, ours, atol=1e-5, rtol=0
        )

    # export_weights streams the merged model under HF names, equal to peft's own merge.
    exported = dict(backend.export_weights())
    merged = loaded.merge_and_unload().state_dict()
    assert list(exported) == list(merged)
    assert not any("lora_" in n or "base_layer" in n for n in exported)
    for name, tensor in merged.items():
        torch.testing.assert_close(exported[name], tensor, atol=1e-6, rtol=0)

    # Resume: a fresh backend takes the adapter and optimizer back and continues identically.
    next_loss = backend.train_step(sft_batch, NLLLoss())["loss"]
    resumed = make_backend(tiny_qwen2_path, save_merged=True)
    resumed.load_checkpoint(tmp_path / "ckpt")
    assert resumed.train_step(sft_batch, NLLLoss())["loss"] == pytest.approx(next_loss, abs=1e-6)


def test_generation_on_the_shared_module_runs_the_adapters(tiny_qwen2_path, sft_batch):
    from nemo_rl.config import GenerationConfig, SamplingParams
    from nemo_rl.data import BatchedDataDict
    from nemo_rl_dtensor import HFGenerationBackend

    backend = make_backend(tiny_qwen2_path)
    for _ in range(2):
        backend.train_step(sft_batch, NLLLoss())
    prompts = BatchedDataDict(input_ids=sft_batch["input_ids"][:, :4].clone(),
                              input_lengths=sft_batch["input_lengths"].clamp(max=4))
    greedy = SamplingParams(temperature=0.0, max_new_tokens=6)
    outputs = []
    for shared in (True, False):
        gen = HFGenerationBackend()
        gen.setup(GenerationConfig(model_name=str(tiny_qwen2_path)), InlineCluster(device="cpu"))
        if shared:  # colocated on one inline worker: generation runs on the training module
            gen.share_module(backend.inline_module())
        else:  # its own copy, refit with the merged weights
            gen.update_weights(backend.export_weights())
        outputs.append(gen.generate(prompts, greedy))
    assert torch.equal(outputs[0]["output_ids"], outputs[1]["output_ids"])
    torch.testing.assert_close(outputs[0]["logprobs"], outputs[1]["logprobs"], atol=1e-5, rtol=0)
    untrained = HFGenerationBackend()
    untrained.setup(GenerationConfig(model_name=str(tiny_qwen2_path)), InlineCluster(device="cpu"))
    assert not torch.allclose(untrained.generate(prompts, greedy)["logprobs"],
                              outputs[0]["logprobs"], atol=1e-3)


def test_two_fsdp2_ranks_match_one(tiny_qwen2_path, sft_batch, tmp_path):
    single = make_backend(tiny_qwen2_path, layers=[1])
    expected = [single.train_step(sft_batch, NLLLoss())["loss"] for _ in range(2)]
    with LocalProcessCluster(world_size=2, backend="gloo") as cluster:
        sharded = make_backend(tiny_qwen2_path, cluster, layers=[1])
        assert sharded.parameter_counts() == single.parameter_counts()
        got = [sharded.train_step(sft_batch, NLLLoss())["loss"] for _ in range(2)]
        reference = sharded.get_logprobs(sft_batch, reference=True)
        exported = dict(sharded.export_weights())
        sharded.save_checkpoint(tmp_path / "ckpt")
        sharded.train_step(sft_batch, NLLLoss())  # moves away from the checkpoint ...
        sharded.load_checkpoint(tmp_path / "ckpt")  # ... and back, on sharded parameters
        after_load = sharded.get_logprobs(sft_batch)
    assert got == pytest.approx(expected, abs=1e-5)
    torch.testing.assert_close(reference, base_logprobs(tiny_qwen2_path, sft_batch), atol=1e-5,
                               rtol=0)
    torch.testing.assert_close(after_load, single.get_logprobs(sft_batch), atol=1e-5, rtol=0)
    for name, tensor in single.export_weights():
        torch.testing.assert_close(exported[name], tensor, atol=1e-5, rtol=0)
    assert not any("layers.0" in n for n in peft.utils.load_peft_weights(str(tmp_path / "ckpt")))


@pytest.mark.parametrize(
    ("lora", "message"),
    [
        ({"target_modules": ["q_proj", "q_prj"]}, "'q_prj', which matches no layer"),
        ({"target_modules": ["lm_head"]}, "'lm_head', which is not a linear layer of a decoder"),
        ({"exclude_modules": ["v_prj"]}, "exclude_modules names 'v_prj', which matches no layer"),
        ({"layers": [0, 2]}, r"layers \[2\] are past the model's last decoder layer"),
    ],
)
def test_names_that_match_nothing_are_config_errors(tiny_qwen2_path, lora, message):
    with pytest.raises(ConfigError, match=message):
        make_backend(tiny_qwen2_path, **lora)


def test_missing_peft_says_what_to_install(tiny_qwen2_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "peft", None)  # import peft now raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'nemo-rl-dtensor\[lora\]'"):
        make_backend(tiny_qwen2_path)


def test_checkpoint_kinds_are_not_mixed_up(tiny_qwen2_path, tmp_path):
    lora = make_backend(tiny_qwen2_path)
    lora.save_checkpoint(tmp_path / "lora")
    full = DTensorTrainingBackend()
    full.setup(PolicyConfig(model_name=str(tiny_qwen2_path)), InlineCluster(device="cpu"))
    with pytest.raises(ValueError, match="holds a LoRA adapter, but policy.lora.enabled is false"):
        full.load_checkpoint(tmp_path / "lora")
    full.save_checkpoint(tmp_path / "full")
    with pytest.raises(FileNotFoundError, match="holds no LoRA adapter"):
        lora.load_checkpoint(tmp_path / "full")
    with pytest.raises(ValueError, match="another policy.lora.rank"):
        make_backend(tiny_qwen2_path, rank=2).load_checkpoint(tmp_path / "lora")
