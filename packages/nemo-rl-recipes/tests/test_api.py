"""The Python API: `nemo_rl.train(...)` and `Trainer.from_pretrained(...)` set the config fields
they are given, and `fit` returns a FitResult whose checkpoint loads with transformers and whose
run directory holds the metrics and the curves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nemo_rl
import pytest
import torch
import yaml
from nemo_rl import Callback, ConfigError, DPOTrainer, GRPOTrainer, SFTTrainer


class RecordTrainer(Callback):
    """Keeps the trainer `nemo_rl.train` built, so the test can read its config."""

    def on_fit_start(self, trainer: Any) -> None:
        self.trainer = trainer


def char_code_reward(prompt: str, response: str, **row: Any) -> float:
    """A reward that almost surely differs between two random responses, so every GRPO group
    has non-zero advantages and the policy moves."""
    return (sum(map(ord, response)) % 97) / 96


def state_dict(path: Path) -> dict[str, torch.Tensor]:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).state_dict()


@pytest.mark.parametrize("algorithm", ["sft", "grpo", "dpo"])
def test_train_sets_fields_and_returns_a_loadable_checkpoint(
    algorithm, tiny_model, tmp_path, run_settings, sum_rows, preference_rows
):
    settings = run_settings(tmp_path, algorithm)
    settings["policy.optimizer.weight_decay"] = 0.0  # dotted key
    settings["seed"] = 7  # flat key
    recorder = RecordTrainer()
    reward = {"reward_fn": char_code_reward} if algorithm == "grpo" else {}

    rows = preference_rows if algorithm == "dpo" else sum_rows
    result = nemo_rl.train(algorithm, tiny_model, rows, callbacks=[recorder], **reward, **settings)

    cfg = recorder.trainer.config
    assert cfg.algorithm == algorithm
    assert cfg.policy.model_name == str(tiny_model)
    assert (cfg.seed, cfg.max_num_steps) == (7, 2)
    assert cfg.policy.optimizer.lr == 1e-3 and cfg.policy.optimizer.weight_decay == 0.0
    assert cfg.logger.log_dir == str(tmp_path / "run")
    if algorithm == "grpo":
        assert (cfg.num_prompts_per_step, cfg.num_generations_per_prompt) == (2, 2)
        assert cfg.generation.max_new_tokens == 4
    else:
        assert cfg.batch_size == 4

    assert isinstance(result, nemo_rl.FitResult)
    assert result.steps == 2 and result.stop_reason == "finished"
    assert result.checkpoint_path == tmp_path / "ckpt" / "step_2"
    assert result.run_dir == tmp_path / "run"
    trained = state_dict(result.checkpoint_path)
    initial = state_dict(tiny_model)
    assert trained.keys() == initial.keys()
    # lr 1e-3 for two steps moves the weights: the checkpoint is the trained model, not a copy.
    assert any(not torch.equal(trained[k], initial[k]) for k in initial)

    records = [
        json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()
    ]
    assert [r["step"] for r in records if "loss" in r] == [1, 2]
    assert result.metrics["loss"] == pytest.approx(records[-1]["loss"])
    assert (result.run_dir / "curves.png").read_bytes()[:4] == b"\x89PNG"
    saved = yaml.safe_load((result.run_dir / "config.yaml").read_text())
    assert saved["policy"]["optimizer"]["lr"] == 1e-3 and saved["seed"] == 7


def test_from_pretrained_sets_flat_and_dotted_fields(tiny_model):
    trainer = GRPOTrainer.from_pretrained(
        tiny_model,
        num_prompts_per_step=3,
        on_reward_error="zero",
        **{"policy.optimizer.lr": 2e-6, "generation.temperature": 0.5, "loss.kl_penalty": 0.0},
    )
    cfg = trainer.config
    assert cfg.policy.model_name == str(tiny_model)
    assert cfg.num_prompts_per_step == 3 and cfg.on_reward_error == "zero"
    assert cfg.policy.optimizer.lr == 2e-6
    assert cfg.generation.temperature == 0.5 and cfg.loss.kl_penalty == 0.0
    # Fields not given keep their defaults.
    defaults = nemo_rl.GRPOConfig()
    assert cfg.num_generations_per_prompt == defaults.num_generations_per_prompt
    assert cfg.policy.optimizer.weight_decay == defaults.policy.optimizer.weight_decay


@pytest.mark.parametrize(
    ("trainer_cls", "algorithm", "field", "value"),
    [(SFTTrainer, "sft", "loss_on_prompt", True), (DPOTrainer, "dpo", "beta", 0.25)],
)
def test_from_pretrained_then_fit(
    trainer_cls,
    algorithm,
    field,
    value,
    tiny_model,
    tmp_path,
    run_settings,
    sum_rows,
    preference_rows,
):
    settings = {**run_settings(tmp_path, algorithm), "policy.max_grad_norm": 0.5}
    trainer = trainer_cls.from_pretrained(tiny_model, **{field: value}, **settings)
    assert trainer.config.algorithm == algorithm
    assert getattr(trainer.config, field) == value
    assert trainer.config.policy.max_grad_norm == 0.5

    result = trainer.fit(dataset=preference_rows if algorithm == "dpo" else sum_rows)
    assert result.steps == 2 and result.checkpoint_path == tmp_path / "ckpt" / "step_2"
    assert state_dict(result.checkpoint_path).keys() == state_dict(tiny_model).keys()
    assert {"metrics.jsonl", "curves.png", "config.yaml"} <= {
        p.name for p in result.run_dir.iterdir()
    }


def test_from_pretrained_names_a_misspelt_field_and_the_fix(tiny_model):
    with pytest.raises(ConfigError) as err:
        GRPOTrainer.from_pretrained(tiny_model, num_generation_per_prompt=4)
    message = str(err.value)
    assert "num_generation_per_prompt" in message
    assert "did you mean 'num_generations_per_prompt'" in message


def test_train_names_the_installed_algorithms_for_an_unknown_one(tiny_model, sum_rows):
    with pytest.raises(LookupError) as err:
        nemo_rl.train("ppo", tiny_model, sum_rows)
    message = str(err.value)
    assert "'ppo'" in message and "grpo" in message and "sft" in message
