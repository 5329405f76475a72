"""GRPO with the policy on two FSDP2 worker processes (gloo) and generation in the driver: the
generation model is its own copy, so updated weights must be pushed to it (refit) before each
rollout, also across the colocated sleep/wake of the phase switch."""

from __future__ import annotations

import torch
from nemo_rl import GRPOTrainer


def test_two_workers_train_and_refit_the_generation_model(
    tiny_model, tmp_path, settings, rewards, prompt_rows
):
    trainer = GRPOTrainer.from_pretrained(
        tiny_model,
        **settings["grpo"](
            tmp_path, max_num_steps=2, val_at_end=True, **{"cluster.cpu_workers": 2}
        ),
    )
    try:
        result = trainer.fit(
            dataset=prompt_rows, reward_fn=rewards["length"], val_dataset=prompt_rows[:4]
        )
        assert trainer.cluster.world_size == 2 and not trainer.shared_module
        assert result.steps == 2 and torch.isfinite(torch.tensor(result.metrics["loss"]))
        # Validation after the last step rolled out with the trained weights.
        generated = trainer.generation.model.state_dict()
        trained = dict(trainer.policy.export_weights())
        assert set(trained) >= {k for k in generated if k != "lm_head.weight"}
        for name, tensor in trained.items():
            assert torch.equal(generated[name], tensor.to(generated[name].dtype)), name
    finally:
        trainer.close()
