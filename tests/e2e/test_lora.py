"""LoRA end to end (`policy.lora.enabled`) on the toy tasks of test_learning.py: SFT lowers the
held-out loss and reports peft's trainable-parameter count, GRPO raises the reward and generates
with the merged policy after each refit, DPO's reference log-probs are the base model's."""

from __future__ import annotations

from pathlib import Path

import peft
import pytest
import torch
from nemo_rl import DPOTrainer, GRPOTrainer, SFTTrainer
from nemo_rl.config import GenerationConfig, SamplingParams
from nemo_rl.data import BatchedDataDict
from nemo_rl.infra.cluster import InlineCluster
from nemo_rl_dtensor import HFGenerationBackend
from nemo_rl_dtensor.lora import DEFAULT_TARGET_MODULES
from transformers import AutoModelForCausalLM

LORA = {"policy.lora.enabled": True, "policy.lora.rank": 8, "policy.lora.alpha": 16.0}
EMBEDDING_SCALE = 5.0


@pytest.fixture(scope="module")
def base_model(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with its embeddings (tied to the output head) scaled x5.

    LoRA leaves the embeddings, the output head and the norms frozen; at random-init scale
    (std 0.02, hidden 64) they bound the logits to about +-1.3, so every next-token distribution
    stays near uniform whatever the adapters do. Scaled, the logits span about +-7, as a trained
    model's do, and adapters can move them (unscaled, the same SFT run ends at 5.3 nats, near
    ln 262 = 5.57, and GRPO's reward does not move).
    """
    from transformers import AutoTokenizer

    path = tmp_path_factory.mktemp("lora-base")
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    with torch.no_grad():
        model.get_input_embeddings().weight.mul_(EMBEDDING_SCALE)
    model.save_pretrained(path)
    AutoTokenizer.from_pretrained(tiny_model).save_pretrained(path)
    return path


def test_sft_with_lora_lowers_held_out_loss(base_model, tmp_path, settings, copy_task,
                                            check_finite):
    train, val = copy_task
    trainer = SFTTrainer.from_pretrained(base_model, **settings["sft"](
        tmp_path, val_at_start=True, val_at_end=True, **LORA, **{"policy.optimizer.lr": 2e-2}))
    result = trainer.fit(dataset=train, val_dataset=val)

    check_finite(result.history)
    start = _first_logged(tmp_path, "val/loss")
    end = result.metrics["val/loss"]
    # Seed 0: 6.81 -> 4.39 nats; below ln 262 = 5.57, so it learned more than unlearning the
    # scaled model's confident guesses.
    assert end < 0.75 * start and end < 5.3, f"held-out loss {start:.3f} -> {end:.3f}"
    # The reported count is peft's for the same adapters on the same model.
    wrapped = peft.get_peft_model(AutoModelForCausalLM.from_pretrained(base_model), peft.LoraConfig(
        r=8, lora_alpha=16, target_modules=DEFAULT_TARGET_MODULES["qwen2"]))
    trainable, total = wrapped.get_nb_trainable_parameters()
    assert trainer.policy.parameter_counts() == {"trainable": trainable, "total": total}
    assert f"parameters: {trainable:,} of {total:,} train" in "\n".join(trainer.header)


def test_grpo_with_lora_raises_reward_and_generates_with_the_merged_policy(
    base_model, tmp_path, settings, rewards, prompt_rows, check_finite
):
    # Not colocated: generation keeps its own model, so every rollout follows a refit.
    trainer = GRPOTrainer.from_pretrained(base_model, **settings["grpo"](
        tmp_path, max_num_steps=12, val_at_end=True, **LORA,
        **{"generation.colocated": False, "policy.optimizer.lr": 3e-2,
           "policy.lora.save_merged": True}))
    result = trainer.fit(dataset=prompt_rows, reward_fn=rewards["length"],
                         val_dataset=prompt_rows[:4])

    check_finite(result.history)
    curve = [m["reward/mean"] for m in result.history]
    # Seed 0: -0.59 over the first two steps, -0.25 over the last two.
    assert sum(curve[-2:]) / 2 > sum(curve[:2]) / 2 + 0.15, f"mean reward did not rise: {curve}"
    assert not trainer.shared_module
    # The validation rollout after the last step refit generation with the trained policy: its
    # weights and its greedy output are those of the merged model transformers loads.
    trainer.policy.save_checkpoint(tmp_path / "final")
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "final" / "merged")
    generation_weights = trainer.generation.model.state_dict()
    for name, tensor in merged.state_dict().items():
        torch.testing.assert_close(generation_weights[name], tensor, atol=1e-6, rtol=0)
    prompts = _prompts(trainer.tokenizer, [row["prompt"] for row in prompt_rows[:8]])
    greedy = SamplingParams(temperature=0.0, max_new_tokens=8)
    reference = HFGenerationBackend()
    reference.setup(GenerationConfig(model_name=str(tmp_path / "final" / "merged")),
                    InlineCluster(device="cpu"))
    expected = reference.generate(prompts, greedy)
    got = trainer.generation.generate(prompts, greedy)
    assert torch.equal(got["output_ids"], expected["output_ids"])
    base = HFGenerationBackend()
    base.setup(GenerationConfig(model_name=str(base_model)), InlineCluster(device="cpu"))
    assert not torch.equal(base.generate(prompts, greedy)["output_ids"], got["output_ids"])
    trainer.close()


def test_dpo_with_lora_takes_reference_logprobs_from_the_base_model(
    base_model, tmp_path, settings, preference_task, check_finite
):
    train, val = preference_task
    trainer = DPOTrainer.from_pretrained(base_model, **settings["dpo"](
        tmp_path, val_at_start=True, val_at_end=True, **LORA,
        **{"policy.optimizer.lr": 1e-2}))
    result = trainer.fit(dataset=train, val_dataset=val)

    check_finite(result.history)
    assert result.metrics["val/accuracy"] > _first_logged(tmp_path, "val/accuracy")
    batch = _prompts(trainer.tokenizer, [row["prompt"] + " " + row["chosen"] for row in val[:8]])
    base = AutoModelForCausalLM.from_pretrained(base_model, dtype=torch.float32)
    with torch.no_grad():
        logits = base(batch["input_ids"]).logits
    ids = batch["input_ids"]
    expected = torch.log_softmax(logits[:, :-1], -1).gather(-1, ids[:, 1:, None]).squeeze(-1)
    got = trainer.policy.get_logprobs(batch, reference=True)
    for row, length in enumerate(batch["input_lengths"].tolist()):
        torch.testing.assert_close(got[row, 1:length], expected[row, : length - 1], atol=1e-6,
                                   rtol=0)
    moved = trainer.policy.get_logprobs(batch)
    assert (moved - got).abs().max() > 1e-2  # the policy itself did train


def _prompts(tokenizer, texts: list[str]) -> BatchedDataDict:
    rows = [tokenizer(text)["input_ids"] for text in texts]
    ids = torch.full((len(rows), max(map(len, rows))), tokenizer.pad_token_id)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row)
    return BatchedDataDict(input_ids=ids, input_lengths=torch.tensor([len(r) for r in rows]))


def _first_logged(run_dir, key: str) -> float:
    from nemo_rl.infra import read_metrics

    values = [r[key] for r in read_metrics(run_dir / "metrics.jsonl") if key in r]
    assert values, f"{key} was never logged in {run_dir}"
    return float(values[0])
