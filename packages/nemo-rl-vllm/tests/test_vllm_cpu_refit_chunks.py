"""The chunked refit path on the real CPU engine, in a module of its own: an in-process engine's
parallel state is process-global, so the previous module's engine is shut down before this one.

Run with `nox -s vllm`; skipped where vLLM is not installed.
"""

from __future__ import annotations

import pytest
from nemo_rl.config import SamplingParams

pytest.importorskip("vllm")

GREEDY = SamplingParams(temperature=0.0, max_new_tokens=12)


def test_refit_in_chunks_on_an_untied_model(tiny_llama_path, helpers, monkeypatch):
    """The chunked path (engines whose workers live in other processes), forced in-process with a
    budget small enough that every decoder layer travels in its own reload call."""
    from nemo_rl_vllm import VLLMGenerationBackend

    vllm = helpers.make_vllm(tiny_llama_path, refit_chunk_bytes=1024)
    try:
        hf = helpers.make_hf(tiny_llama_path)
        prompts = helpers.encode(hf.tokenizer, helpers.prompts)
        greedy = vllm.generate(prompts, GREEDY)["output_ids"].tolist()
        assert greedy == hf.generate(prompts, GREEDY)["output_ids"].tolist()
        monkeypatch.setattr(VLLMGenerationBackend, "engine_in_process", property(lambda self: False))
        helpers.refit_and_compare(vllm, tiny_llama_path)
    finally:
        vllm.shutdown()
