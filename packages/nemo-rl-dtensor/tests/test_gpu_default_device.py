"""GPU: a trainer built with no cluster settings trains on the GPU (gpus_per_node defaults to
"auto"), and its run header says so."""

from __future__ import annotations

import pytest
import torch
from nemo_rl import SFTTrainer
from nemo_rl_dtensor.testing import build_tiny_model

pytestmark = pytest.mark.gpu


def test_default_trainer_model_is_on_cuda(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = build_tiny_model(tmp_path / "tiny", arch="qwen2")
    rows = [{"prompt": f"echo {i}", "answer": str(i)} for i in range(32)]
    trainer = SFTTrainer.from_pretrained(model, max_num_steps=1, batch_size=8)
    try:
        trainer.setup(dataset=rows)
        assert trainer.cluster.device_type == "cuda"
        # Every visible GPU: one worker process each when there are several.
        assert trainer.cluster.world_size == torch.cuda.device_count()
        if torch.cuda.device_count() == 1:
            params = list(trainer.policy.inline_module().parameters())
            assert params and all(p.device.type == "cuda" for p in params)
        device_line = next(line for line in trainer.header if line.startswith("device:"))
        assert f"cuda:0 {torch.cuda.get_device_name(0)}" in device_line, device_line
        assert trainer.fit().steps == 1
    finally:
        trainer.close()
