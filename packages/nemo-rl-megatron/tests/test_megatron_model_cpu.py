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


# One process per rank (gloo), with the same CUDA patches; Tensor.cuda is also patched because
# GPTModel moves a tied output layer to the GPU when it sits on another pipeline stage.
RANK_SCRIPT = """
import contextlib, os, sys, torch
rank, world, tp, pp, path = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
from transformers import AutoModelForCausalLM
from nemo_rl.training import padded_logprobs
hf = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
torch.manual_seed(0)
ids, lengths = torch.randint(6, 200, (2, 10)), torch.tensor([10, 8])
with torch.no_grad():
    want = padded_logprobs(hf, ids, lengths)
torch.cuda.current_device = lambda: "cpu"
torch.Tensor.cuda = lambda self, *a, **k: self
from megatron.core.tensor_parallel import random as mc_random
mc_random.CudaRNGStatesTracker.fork = lambda self, name="model-parallel-rng": contextlib.nullcontext()
import torch.distributed as dist
dist.init_process_group("gloo", rank=rank, world_size=world)
from megatron.core import parallel_state as ps
ps.initialize_model_parallel(tp, pp)
from nemo_rl.config import PolicyConfig
from nemo_rl_megatron import weights
from nemo_rl_megatron.layout import ModelLayout
from nemo_rl_megatron.model_builder import build_gpt_model
from nemo_rl_megatron.vocab_parallel import shifted_token_logprobs
options = PolicyConfig(backend="megatron", megatron={"tensor_parallel_size": tp,
                                                     "pipeline_parallel_size": pp}).megatron
layout = ModelLayout.from_hf_config(hf.config)
padded = layout.padded_vocab_size(tp, 128)
gpt = build_gpt_model(hf.config, layout, padded, torch.float32, options, cpu=True)
stage = weights.StageWeights(layout, padded, options)
stage.load_into(gpt, weights.load_hf_state(path))
exported = {}
for index in range(layout.num_layers + 2):
    exported.update(stage.export_chunk(gpt, index) or {})
result = {}
if rank == 0:
    ref = hf.state_dict()
    result["export_equal"] = set(exported) == set(ref) and all(torch.equal(exported[k], ref[k]) for k in ref)
if pp == 1:
    causal = torch.triu(torch.ones(10, 10, dtype=torch.bool), 1)[None, None]
    with torch.no_grad():
        logits = gpt(ids, torch.arange(10).expand(2, -1), causal)
        got = shifted_token_logprobs(logits, ids, ps.get_tensor_model_parallel_rank() * logits.shape[-1],
                                     layout.vocab_size, ps.get_tensor_model_parallel_group())
    mask = torch.arange(10) < lengths[:, None]
    result["logprob_error"] = float(((got - want) * mask).abs().max())
torch.save(result, os.environ["RESULT_DIR"] + f"/{rank}.pt")
dist.destroy_process_group()
"""


@pytest.mark.parametrize(("tp", "pp"), [(2, 1), (2, 2)])
def test_tensor_and_pipeline_ranks_load_forward_and_export_like_hf(tmp_path, tp, pp):
    import subprocess
    import sys
    from pathlib import Path

    from nemo_rl_dtensor.testing import build_tiny_model

    model = build_tiny_model(tmp_path / "model", arch="qwen2", layers=2)  # tied embeddings
    script = tmp_path / "rank.py"
    script.write_text(RANK_SCRIPT)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    src = str(Path(__file__).parents[1] / "src")
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
           "RESULT_DIR": str(tmp_path), "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    world = tp * pp
    procs = [subprocess.Popen([sys.executable, str(script), str(r), str(world), str(tp), str(pp),
                               str(model)], env=env) for r in range(world)]
    assert [p.wait(timeout=400) for p in procs] == [0] * world
    results = [torch.load(tmp_path / f"{r}.pt") for r in range(world)]
    assert results[0]["export_equal"]  # all-gathered over TP, sent over PP: the HF weights
    if pp == 1:
        assert max(r["logprob_error"] for r in results) < 1e-5  # real TP layers + vocab-parallel
