"""GPU (marker `gpu`, two GPUs or more): `generation.colocated: false` puts the engine on a GPU of
its own. The training backend computes on cuda:0; the engine (generation.num_gpus=1) must take its
memory on cuda:1 and leave cuda:0 alone, then follow the trained weights after a refit.

Not yet run on a GPU machine. Run it in its own process (vLLM's sleep-mode allocator of
`test_gpu.py` allows one engine per process):
`python -m pytest packages/nemo-rl-vllm/tests/test_gpu_separate.py -m gpu -q`.
"""

from __future__ import annotations

import pytest
import torch
from nemo_rl.algorithms.sft import NLLLoss
from nemo_rl.config import GenerationConfig, SamplingParams
from nemo_rl.infra.cluster import InlineCluster

pytestmark = pytest.mark.gpu
pytest.importorskip("vllm")

GIB = 1024**3
GREEDY = SamplingParams(temperature=0.0, max_new_tokens=12)


def free_gib(device: int) -> float:
    torch.cuda.synchronize(device)
    return torch.cuda.mem_get_info(device)[0] / GIB


def test_a_separate_engine_lives_on_its_own_gpu_and_follows_refits(tiny_qwen2_path, helpers):
    from nemo_rl_vllm import VLLMGenerationBackend

    if torch.cuda.device_count() < 2:
        pytest.skip("needs two GPUs")
    trainer = helpers.make_trainer(tiny_qwen2_path, device="cuda")  # training on cuda:0
    free_before = free_gib(0), free_gib(1)
    gen = VLLMGenerationBackend()
    config = GenerationConfig(
        model_name=str(tiny_qwen2_path), backend="vllm", colocated=False, num_gpus=1,
        backend_options={"dtype": "float32", "gpu_memory_utilization": 0.3, "enforce_eager": True},
    )
    gen.setup(config, InlineCluster(device="cuda"))
    try:
        assert gen.devices == [1]
        taken = free_before[0] - free_gib(0), free_before[1] - free_gib(1)
        print(f"engine memory: cuda:0 {taken[0]:.2f} GiB, cuda:1 {taken[1]:.2f} GiB")
        assert taken[1] > 1.0 and taken[0] < 0.5, taken  # the KV cache and weights on cuda:1 only
        prompts = helpers.encode(gen.tokenizer, helpers.prompts)
        before = gen.generate(prompts, GREEDY)
        batch = helpers.sft_batch(gen.tokenizer)
        for _ in range(5):
            trainer.train_step(batch, NLLLoss())
        gen.update_weights(trainer.export_weights())
        after = gen.generate(prompts, GREEDY)
        reference = helpers.make_hf(tiny_qwen2_path, device="cuda")
        reference.share_module(trainer.inline_module())
        expected = reference.generate(prompts, GREEDY)
        assert not torch.allclose(before["logprobs"][:, 0], after["logprobs"][:, 0])
        assert after["output_ids"].tolist() == expected["output_ids"].tolist()
        torch.testing.assert_close(after["logprobs"], expected["logprobs"], atol=1e-3, rtol=0)
    finally:
        gen.shutdown()
