"""GPU: the static decoder's CUDA graphs, and decoding a shared float32 module on a bf16 copy."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from nemo_rl.config import GenerationConfig, PolicyConfig, SamplingParams
from nemo_rl.data import BatchedDataDict
from nemo_rl.infra.cluster import InlineCluster
from nemo_rl_dtensor import DTensorTrainingBackend, HFGenerationBackend
from nemo_rl_dtensor.fused_norms import fuse_rms_norms
from nemo_rl_dtensor.generation_backend import right_to_left_padding
from nemo_rl_dtensor.static_decoding import DecodePlan, StaticDecoder
from nemo_rl_dtensor.testing import QWEN2_0_5B_SHAPE, build_tiny_model
from transformers import AutoModelForCausalLM

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def qwen_0_5b(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("qwen2-0.5b"), **QWEN2_0_5B_SHAPE)


def prompts(batch: int = 16) -> BatchedDataDict:
    gen = torch.Generator().manual_seed(0)
    lengths = torch.randint(3, 24, (batch,), generator=gen)
    ids = torch.randint(10, 250, (batch, 24), generator=gen)
    ids[torch.arange(24)[None, :] >= lengths[:, None]] = 0
    return BatchedDataDict(input_ids=ids, input_lengths=lengths)


def test_cuda_graph_steps_decode_exactly_what_eager_steps_decode(qwen_0_5b):
    model = AutoModelForCausalLM.from_pretrained(qwen_0_5b, dtype=torch.bfloat16).cuda().eval()
    fuse_rms_norms(model)
    batch = prompts()
    ids, mask = right_to_left_padding(batch["input_ids"], batch["input_lengths"], 0)
    ids, mask = ids.cuda(), mask.cuda()
    for seed, kw in enumerate([dict(), dict(temperature=1.0), dict(temperature=0.8, top_k=50, top_p=0.9)]):
        plan = DecodePlan(max_new_tokens=48, stop_ids=(1,), pad_id=0, min_new_tokens=4, **kw)
        results = []
        for graphs in (False, True):
            decoder = StaticDecoder(model, cuda_graphs=graphs)
            torch.manual_seed(seed)
            results.append(decoder.decode(ids, mask, plan))
            assert decoder.graphed_last_call == graphs
        (eager_tokens, eager_lp, _), (graph_tokens, graph_lp, _) = results
        assert torch.equal(eager_tokens, graph_tokens), kw
        assert (eager_lp - graph_lp).abs().max() < 1e-3, kw


def test_shared_float32_module_decodes_on_a_bf16_copy_with_cuda_graphs(qwen_0_5b):
    trainer = DTensorTrainingBackend()
    trainer.setup(PolicyConfig(model_name=str(qwen_0_5b)), InlineCluster(device="cuda"))
    assert trainer.inline_module().lm_head.weight.dtype == torch.float32
    shared = HFGenerationBackend()
    shared.setup(GenerationConfig(model_name=str(qwen_0_5b)), InlineCluster(device="cuda"))
    shared.share_module(trainer.inline_module())
    own = HFGenerationBackend()
    own.setup(GenerationConfig(model_name=str(qwen_0_5b)), InlineCluster(device="cuda"))
    greedy = SamplingParams(temperature=0.0, max_new_tokens=32)

    before = torch.cuda.memory_allocated()
    out = shared.generate(prompts(), greedy)
    assert shared.last_decoder == "static, CUDA graphs, bf16 copy"
    # The copy (about 1 GB at this shape) is freed after the call.
    assert torch.cuda.memory_allocated() - before < 64 * 2**20
    # The same bf16 weights decoded by a backend that loaded its own bf16 model.
    mine = own.generate(prompts(), greedy)
    assert own.last_decoder == "static, CUDA graphs"
    assert torch.equal(out["output_ids"], mine["output_ids"])
    assert (out["logprobs"] - mine["logprobs"]).abs().max() < 1e-3

    # Without the copy: the float32 weights under autocast, eager steps.
    autocast = HFGenerationBackend()
    autocast.setup(
        GenerationConfig(model_name=str(qwen_0_5b), backend_options={"decode_copy": False}),
        InlineCluster(device="cuda"),
    )
    autocast.share_module(trainer.inline_module())
    third = autocast.generate(prompts(), greedy)
    assert autocast.last_decoder == "static"
    # bf16 weights vs float32 weights under autocast: near-uniform random logits (about -12)
    # move by bf16 rounding, about 0.08 on average on an H200.
    assert (third["logprobs"] - out["logprobs"]).abs().mean() < 0.25


def test_a_step_the_capture_cannot_take_decodes_eagerly(qwen_0_5b, caplog):
    """A forward that syncs with the host cannot be captured: one warning, eager steps, same
    tokens as an eager decoder."""
    model = AutoModelForCausalLM.from_pretrained(qwen_0_5b, dtype=torch.bfloat16).cuda().eval()
    def host_sync(module, args, output):  # .item() waits for the GPU: not capturable
        output[0, 0, 0].item()

    hook = model.model.norm.register_forward_hook(host_sync)
    batch = prompts(4)
    ids, mask = right_to_left_padding(batch["input_ids"], batch["input_lengths"], 0)
    plan = DecodePlan(max_new_tokens=8, stop_ids=(1,), pad_id=0)
    try:
        graphed = StaticDecoder(model, cuda_graphs=True)
        tokens = graphed.decode(ids.cuda(), mask.cuda(), plan)[0]
        eager = StaticDecoder(model, cuda_graphs=False).decode(ids.cuda(), mask.cuda(), plan)[0]
    finally:
        hook.remove()
    assert graphed.capture_error is not None and not graphed.graphed_last_call
    assert "CUDA graph capture of the decoding step failed" in caplog.text
    assert torch.equal(tokens, eager)
