"""`VLLMGenerationBackend`: the `GenerationBackend` protocol on a vLLM engine (`vllm.LLM`).

Prompts arrive right-padded (`input_ids` [B, T], `input_lengths` [B]) and go to vLLM as token ids;
the result matches the HF backend's: `output_ids` [B, L] (generated tokens only, right-padded
with the pad id), `logprobs` [B, L] of the sampled tokens under the UNSCALED model (vLLM's
`raw_logprobs`: temperature 1, no top-k/top-p, as the training backend's `get_logprobs`),
`lengths` [B] (the stop token or stop string included) and `truncated` [B] (no stop within
`max_new_tokens`). Temperature 0 is greedy. Each row gets its own seed (`requests.row_seed`).
`generate_stream` hands out the same rows one by one as they finish (`streaming.py`), which the
rollout engine uses to score finished samples while the others generate.

The engine runs in this process by default (`VLLM_ENABLE_V1_MULTIPROCESSING=0` unless already
set): a refit then streams the exported weights straight into the model, with no serialized
copy, and scripts need no `if __name__ == "__main__":` guard. With tensor or pipeline
parallelism (or multiprocessing forced on), the engine's workers live in other processes and a
refit is sent as layer-aligned chunks of at most `refit_chunk_bytes` (`refit.py`).

With `generation.colocated: false` the engine runs on GPUs of its own (`self.devices`: the
`generation.num_gpus` after the training workers', vLLM's `device_ids`), never sleeps (infra
calls neither `sleep` nor `wake` then) and is refit after every training step as when colocated.

`sleep`/`wake` use vLLM's sleep mode on CUDA (level `sleep_level`, 1 by default: weights kept in
host memory, KV cache dropped). On the CPU they only mark the engine asleep: vLLM's CPU platform
has no sleep mode, and its KV cache is a fixed host allocation (`VLLM_CPU_KVCACHE_SPACE` GiB)
that training could not use anyway.

Example:
    >>> # gen = VLLMGenerationBackend()
    >>> # gen.setup(GenerationConfig(model_name="/models/tiny", backend="vllm"), InlineCluster(device="cpu"))
    >>> # out = gen.generate(prompts, SamplingParams(temperature=0.0, max_new_tokens=16))
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import closing
from typing import Any

import torch
from nemo_rl.config.generation import GenerationConfig, SamplingParams
from nemo_rl.data import BatchedDataDict
from nemo_rl.protocols import Cluster

from nemo_rl_vllm import compat
from nemo_rl_vllm.options import VLLMOptions, engine_devices, parse_options
from nemo_rl_vllm.refit import call_with_deadline, layer_aligned_chunks, with_tied_lm_head
from nemo_rl_vllm.requests import collect_outputs, request_prompts, sampling_kwargs
from nemo_rl_vllm.streaming import stream_finished

_STREAM_OPEN = (
    "a generate_stream iterator of this VLLMGenerationBackend is still running; read it to the "
    "end or close() it before generating again"
)


class VLLMGenerationBackend:
    """Generates with a `vllm.LLM` engine (see the module docstring).

    Example:
        >>> VLLMGenerationBackend().llm is None
        True
    """

    def __init__(self) -> None:
        self.config: GenerationConfig | None = None
        self.options = VLLMOptions()
        self.llm: Any = None
        self.tokenizer: Any = None
        self.device_type = "cpu"
        self.devices: list[int] | None = None  # its own GPUs when not colocated (on CUDA)
        self.tied_embeddings = False
        self._asleep = False
        self._params: Any = None  # vllm.SamplingParams, imported at setup
        self._streaming = False  # a generate_stream iterator is running

    # ------------------------------------------------------------------ lifecycle
    def setup(self, config: GenerationConfig, cluster: Cluster) -> None:
        """Build the engine for `config.model_name` with `config.backend_options` (see `options`)."""
        if config.model_name is None:
            raise ValueError(
                "generation.model_name is None; set it to the policy's model (the trainer fills "
                "it from policy.model_name) or to another HF model path"
            )
        self.device_type = cluster.device_type
        visible = torch.cuda.device_count() if cluster.device_type == "cuda" else 0
        self.devices = engine_devices(
            config.colocated, config.num_gpus, cluster.device_type, cluster.world_size, visible
        )
        self.options = parse_options(config.backend_options, cluster.device_type, config.colocated, self.devices)
        self.config = config
        # Why in-process: see the module docstring. Set before vLLM reads its environment.
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        vllm = compat.import_vllm()
        if self.devices:
            compat.require_engine_arg(vllm, "device_ids", "generation.colocated=false (GPUs of its own)")
        from transformers import AutoConfig, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(config.model_name)
        hf_config = AutoConfig.from_pretrained(config.model_name)
        text_config = getattr(hf_config, "get_text_config", lambda: hf_config)()
        self.tied_embeddings = bool(getattr(text_config, "tie_word_embeddings", False))
        self._params = vllm.SamplingParams
        self.llm = vllm.LLM(model=config.model_name, **self.options.engine)
        self._asleep = False

    @property
    def pad_id(self) -> int:
        """The id that pads `output_ids`: the tokenizer's pad token, else its EOS."""
        pad = self.tokenizer.pad_token_id
        return int(pad if pad is not None else self.tokenizer.eos_token_id)

    def _require_engine(self) -> Any:
        if self.llm is None:
            raise RuntimeError("VLLMGenerationBackend is not set up; call setup(config, cluster) first")
        if self._asleep:
            raise RuntimeError("VLLMGenerationBackend is asleep; call wake() before generating")
        return self.llm

    @property
    def engine_in_process(self) -> bool:
        """Whether the model lives in this process (then a refit streams without copies)."""
        engine = self.options.engine
        parallel = int(engine.get("tensor_parallel_size", 1)) * int(engine.get("pipeline_parallel_size", 1))
        return os.environ.get("VLLM_ENABLE_V1_MULTIPROCESSING") == "0" and parallel == 1

    # ------------------------------------------------------------------ generation
    def generate(self, prompts: BatchedDataDict, sampling: SamplingParams) -> BatchedDataDict:
        """Sample continuations of right-padded prompts (see the module docstring for the result).

        Example:
            >>> # out = gen.generate(BatchedDataDict(input_ids=ids, input_lengths=lens), params)
        """
        llm = self._require_engine()
        if self._streaming:  # LLM.generate would also step, and return, the stream's requests
            raise RuntimeError(_STREAM_OPEN)
        requests = request_prompts(prompts)
        params = [self._params(**kw) for kw in sampling_kwargs(sampling, len(requests))]
        outputs = llm.generate(requests, params, use_tqdm=False)
        return collect_outputs(outputs, self.pad_id)

    def generate_stream(
        self, prompts: BatchedDataDict, sampling: SamplingParams
    ) -> Iterator[tuple[int, BatchedDataDict]]:
        """`(row, one-row result)` as each row finishes (the `StreamingGeneration` capability):
        the same requests as `generate`, so row i gets the same tokens; see `streaming.py`.
        Closing the iterator early cancels the rows not yielded yet.

        Example:
            >>> # for row, out in gen.generate_stream(prompts, params):
            >>> #     print(row, out["output_ids"][0, : int(out["lengths"][0])])
        """
        llm = self._require_engine()  # checked now, not at the first next()
        requests = request_prompts(prompts)
        params = [self._params(**kw) for kw in sampling_kwargs(sampling, len(requests))]
        return self._stream(llm, requests, params)

    def _stream(self, llm: Any, requests: list[Any], params: list[Any]) -> Iterator[tuple[int, BatchedDataDict]]:
        if self._streaming:
            raise RuntimeError(_STREAM_OPEN)
        self._streaming = True
        try:
            with closing(stream_finished(llm, requests, params)) as stream:
                for row, output in stream:
                    yield row, collect_outputs([output], self.pad_id)
        finally:
            self._streaming = False

    # ------------------------------------------------------------------ weights and memory
    def update_weights(self, weights: Iterable[tuple[str, torch.Tensor]]) -> None:
        """Load (HF name, tensor) pairs into the engine in place (checkpoint format), then drop
        the prefix cache, whose KV entries were computed with the old weights.

        Raises `RefitError` when the reload fails or outlasts `refit_timeout_s`.

        Example:
            >>> # gen.update_weights(training_backend.export_weights())
        """
        llm = self._require_engine()
        stream = with_tied_lm_head(weights, self.tied_embeddings)
        timeout = self.options.refit_timeout_s
        if self.engine_in_process:
            call_with_deadline(lambda: compat.reload_weights(llm, stream), timeout, "vLLM weight refit")
        else:
            for i, chunk in enumerate(layer_aligned_chunks(stream, self.options.refit_chunk_bytes)):
                call_with_deadline(
                    lambda chunk=chunk: compat.reload_weights(llm, chunk, timeout=timeout),
                    timeout,
                    f"vLLM weight refit (chunk {i})",
                )
        llm.reset_prefix_cache()

    @property
    def _sleep_mode(self) -> bool:
        # vLLM's sleep mode exists on CUDA only, and only in an engine built with it.
        return self.device_type == "cuda" and bool(self.options.engine.get("enable_sleep_mode"))

    def sleep(self) -> None:
        """Release the engine's accelerator memory (CUDA with sleep mode, on by default when
        colocated); otherwise only mark it asleep."""
        if self.llm is not None and not self._asleep and self._sleep_mode:
            compat.sleep(self.llm, self.options.sleep_level)
        self._asleep = True

    def wake(self) -> None:
        """Restore what `sleep` released."""
        if self.llm is not None and self._asleep and self._sleep_mode:
            compat.wake(self.llm)
        self._asleep = False

    def shutdown(self) -> None:
        """Stop the engine. Needed before another engine starts in this process: an in-process
        engine's parallel state is process-global (see `compat.shutdown`)."""
        if self.llm is not None:
            compat.shutdown(self.llm)
            self.llm = None
