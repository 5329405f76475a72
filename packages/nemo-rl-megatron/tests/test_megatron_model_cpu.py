"""The converted weights against a real megatron-core GPTModel (local layer spec) on the CPU:
same tensor names and shapes, and the same logits as the HF model. Needs megatron-core (the
`megatron` nox session installs it); megatron-core assumes CUDA in three places, patched here."""

from __future__ import annotations

import contextlib
import os
import socket

import pytest
import torch

pytest.importorskip("megatron.core")


@pytest.fixture(scope="module")
def megatron_on_cpu():
    import torch.distributed as dist
    from megatron.core import parallel_state
    from megatron.core.tensor_parallel import random as mc_random

    if dist.is_initialized():
        pytest.skip("torch.distributed is already initialised in this process (the GPU tests "
                    "ran first); run this file on its own")
    patch = pytest.MonkeyPatch()
    # Rotary embeddings and the RNG tracker ask for the current CUDA device / CUDA RNG state.
    patch.setattr(torch.cuda, "current_device", lambda: "cpu")
    patch.setattr(mc_random.CudaRNGStatesTracker, "fork",
                  lambda self, name="model-parallel-rng": contextlib.nullcontext())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=0, world_size=1)
    parallel_state.initialize_model_parallel(1, 1)
    yield
    parallel_state.destroy_model_parallel()
    dist.destroy_process_group()
    patch.undo()


@pytest.mark.parametrize("arch", ["llama", "qwen2", "qwen3"])
def test_converted_weights_fit_gptmodel_and_give_hf_logits(megatron_on_cpu, arch):
    from nemo_rl_megatron.conversion import hf_to_megatron, megatron_to_hf
    from nemo_rl_megatron.layout import ModelLayout
    from nemo_rl_megatron.model_builder import build_gpt_model
    from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config, Qwen3Config

    common = dict(vocab_size=100, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    config = {"llama": lambda: LlamaConfig(**common, tie_word_embeddings=False),
              "qwen2": lambda: Qwen2Config(**common, tie_word_embeddings=True),
              "qwen3": lambda: Qwen3Config(**common, head_dim=24)}[arch]()
    torch.manual_seed(0)
    hf = AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()
    layout = ModelLayout.from_hf_config(config)
    model = build_gpt_model(config, layout, padded_vocab_size=128, params_dtype=torch.float32,
                            cpu=True)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()
                if isinstance(v, torch.Tensor)}
    converted = hf_to_megatron(hf.state_dict(), layout, 128)
    assert {k: tuple(v.shape) for k, v in converted.items()} == expected
    model.load_state_dict(converted, strict=False)
    ids = torch.randint(0, 100, (2, 12))
    positions = torch.arange(12).expand(2, -1)
    causal = torch.triu(torch.ones(12, 12, dtype=torch.bool), 1)[None, None]
    with torch.no_grad():
        got = model(ids, positions, causal)[..., :100]
        want = hf(input_ids=ids).logits
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    back = megatron_to_hf(model.state_dict(), layout)
    assert all(torch.equal(back[k], v) for k, v in hf.state_dict().items())
