"""`HFGenerationBackend`: batched sampling with a transformers model, in the driver process.

Prompts arrive right-padded (`input_ids` [B, T], `input_lengths` [B]) and are re-padded on the
left. The result holds `output_ids` [B, L] (generated tokens only, right-padded with the pad id),
`logprobs` [B, L] of the sampled tokens under the UNSCALED model (temperature 1, no top-k/top-p
filtering, the same quantity `get_logprobs` of the training backend returns), `lengths` [B] (the
stop token or stop string included) and `truncated` [B] (no EOS, stop token or stop string within
`max_new_tokens`). Temperature 0 is greedy decoding. The log-probs come from the decoding passes
themselves, so no second pass scores the tokens.

Decoding (`generation.backend_options`, see `hf_options`): Llama, Qwen2 and Qwen3 models with SDPA
attention go through the static-cache decoder (`static_decoding`: CUDA graphs on a GPU), which
samples with `SamplingParams` only; other models, or `decoder: generate`, go through
transformers' `generate` (log-probs read by a forward hook, see `decoding_records`), which also
applies what the model's own generation config adds. For the same seed both draw the same
tokens (tested on the CPU in float32).

Colocated with an inline training backend, `share_module(training.inline_module())` makes
generation run on the training weights themselves: no refit, and `update_weights` is a no-op
(on a GPU a float32 module decodes on a bf16 copy made for each call and freed after it, see
`decode_weights`). Otherwise the backend loads its own copy from `GenerationConfig.model_name` and
`update_weights` copies exported tensors into it.

Example:
    >>> # gen = HFGenerationBackend()
    >>> # gen.setup(GenerationConfig(model_name="/models/tiny"), InlineCluster(device="cpu"))
    >>> # out = gen.generate(prompts, SamplingParams(temperature=0.0, max_new_tokens=16))
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from typing import Any

import torch
from nemo_rl.config.generation import GenerationConfig, SamplingParams
from nemo_rl.data import BatchedDataDict
from nemo_rl.protocols import Cluster
from nemo_rl.training import length_mask

from nemo_rl_dtensor.decode_weights import decode_copy
from nemo_rl_dtensor.decoding_records import (
    LogprobRecorder,
    StringStopRecorder,
    combine_stops,
    first_stop_positions,
)
from nemo_rl_dtensor.fused_norms import fuse_rms_norms
from nemo_rl_dtensor.hf_options import HFBackendOptions, parse_backend_options
from nemo_rl_dtensor.static_decoding import (
    DecodePlan,
    StaticDecoder,
    generation_config_extras,
    static_decoding_unsupported,
)

log = logging.getLogger(__name__)


def right_to_left_padding(
    input_ids: torch.Tensor, lengths: torch.Tensor, pad_id: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Re-pad right-padded rows on the left; return (ids, attention_mask) trimmed to the longest.

    Example:
        >>> import torch
        >>> ids, mask = right_to_left_padding(torch.tensor([[5, 6, 0], [7, 0, 0]]), torch.tensor([2, 1]), 0)
        >>> ids.tolist(), mask.tolist()
        ([[5, 6], [0, 7]], [[1, 1], [0, 1]])
    """
    width = int(lengths.max())
    if width > input_ids.shape[1]:
        raise ValueError(
            f"prompts['input_lengths'] reaches {width}, but prompts['input_ids'] has only "
            f"{input_ids.shape[1]} columns; input_lengths must count each row's tokens"
        )
    # One gather instead of a copy per row: column c of row r holds input column c - (width - n_r).
    shift = width - lengths.to(input_ids.device)
    source = torch.arange(width, device=input_ids.device) - shift.unsqueeze(1)
    kept = source >= 0
    out = torch.where(kept, input_ids[:, :width].gather(1, source.clamp(min=0)), pad_id)
    return out, kept.to(input_ids.dtype)


class HFGenerationBackend:
    """Generates with `model.generate` on one device (see the module docstring).

    Example:
        >>> HFGenerationBackend().shares_training_module
        False
    """

    def __init__(self) -> None:
        self.config: GenerationConfig | None = None
        self.model: Any = None
        self.tokenizer: Any = None
        self.device = torch.device("cpu")
        self.shares_training_module = False
        self.options = HFBackendOptions()
        self.last_decoder = ""  # how the last call decoded (see `_decode`), for logs and tests
        self._asleep = False
        self._copy_failed = False
        self._capture_failed = False
        self._generation_config_checked = False

    # ------------------------------------------------------------------ lifecycle
    def setup(self, config: GenerationConfig, cluster: Cluster) -> None:
        """Load the tokenizer of `config.model_name`; its model loads at first use unless
        `share_module` provides one."""
        from transformers import AutoTokenizer

        if config.model_name is None:
            raise ValueError(
                "generation.model_name is None; set it to the policy's model (the trainer fills "
                "it from policy.model_name) or to another HF model path"
            )
        self.config = config
        self.device = (
            torch.device("cuda", torch.cuda.current_device())
            if cluster.device_type == "cuda"
            else torch.device("cpu")
        )
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(config.model_name)
        except OSError as err:
            raise OSError(
                f"generation.model_name={config.model_name!r} has no loadable tokenizer ({err}); "
                "pass a local HF model directory or a reachable hub name"
            ) from err
        if self.tokenizer.pad_token_id is None:  # generate needs one to fill finished rows
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.options = parse_backend_options(config.backend_options)
        # The model itself loads at first use, so a shared training module never has a twin.

    def _load_own_model(self) -> None:
        from transformers import AutoModelForCausalLM

        assert self.config is not None and self.config.model_name is not None
        dtype = torch.bfloat16 if self.device.type == "cuda" else torch.float32
        if self.options.dtype is not None:
            dtype = getattr(torch, self.options.dtype)
        model = AutoModelForCausalLM.from_pretrained(self.config.model_name, dtype=dtype)
        fuse_rms_norms(model)  # decoding launches one kernel per norm instead of about six
        self.model = model.to(self.device).eval()
        self.shares_training_module = False

    def share_module(self, module: torch.nn.Module) -> None:
        """Generate with `module` (the training backend's live model) instead of an own copy.

        Example:
            >>> # gen.share_module(training_backend.inline_module())
        """
        self.model = module
        self.device = next(module.parameters()).device
        self.shares_training_module = True

    # ------------------------------------------------------------------ weights and memory
    @torch.no_grad()
    def update_weights(self, weights: Iterable[tuple[str, torch.Tensor]]) -> None:
        """Copy (HF name, tensor) pairs into the model; a no-op when sharing the training module.

        Example:
            >>> # gen.update_weights(training_backend.export_weights())
        """
        if self.shares_training_module:
            return  # the shared module already holds the new weights; leave the stream unread
        params = self._require_model().state_dict()
        for name, tensor in weights:
            if name not in params:
                raise KeyError(
                    f"update_weights got {name!r}, which the generation model does not have; "
                    "export weights from a policy of the same architecture"
                )
            if params[name].shape != tensor.shape:
                raise ValueError(
                    f"update_weights: {name!r} has shape {tuple(tensor.shape)}, the generation "
                    f"model expects {tuple(params[name].shape)}"
                )
            params[name].copy_(tensor)

    def sleep(self) -> None:
        """Free accelerator memory: move an own model to CPU (a shared module is the training
        backend's to offload) and release cached blocks."""
        if (
            not self.shares_training_module
            and self.model is not None
            and self.device.type == "cuda"
        ):
            self.model.to("cpu")
        self._asleep = True
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def wake(self) -> None:
        """Bring an own model back to the accelerator."""
        if not self.shares_training_module and self.model is not None:
            self.model.to(self.device)
        self._asleep = False

    def _require_model(self) -> Any:
        if self.model is None:
            if self.config is None:
                raise RuntimeError(
                    "HFGenerationBackend is not set up; call setup(config, cluster) first"
                )
            self._load_own_model()
        if self._asleep:
            raise RuntimeError("HFGenerationBackend is asleep; call wake() before generating")
        return self.model

    # ------------------------------------------------------------------ generation
    def generate(self, prompts: BatchedDataDict, sampling: SamplingParams) -> BatchedDataDict:
        """Sample continuations of right-padded prompts (see the module docstring for the result).

        Example:
            >>> # out = gen.generate(BatchedDataDict(input_ids=ids, input_lengths=lens), params)
        """
        for key in ("input_ids", "input_lengths"):
            if key not in prompts:
                raise KeyError(f"generate needs prompts[{key!r}] (keys: {sorted(prompts)})")
        batch_size = (self.config.batch_size if self.config else None) or prompts.size
        model = self._require_model()
        was_training = model.training
        model.eval()
        try:
            # One decoding model (a bf16 copy, when one is made) for all chunks of the call.
            decoding_model, autocast = self._decoding_model(model)
            chunks = [
                self._generate_chunk(
                    prompts.slice(i, min(i + batch_size, prompts.size)), sampling,
                    decoding_model, autocast,
                )
                for i in range(0, prompts.size, batch_size)
            ]
        finally:
            model.train(was_training)
        if decoding_model is not model:
            self.last_decoder += ", bf16 copy"
        return BatchedDataDict.from_batches(
            chunks, pad_value_dict={"output_ids": self.tokenizer.pad_token_id}
        )

    @torch.no_grad()
    def _generate_chunk(
        self, prompts: BatchedDataDict, sampling: SamplingParams, model: Any, autocast: Any
    ) -> BatchedDataDict:
        from transformers import StopStringCriteria

        ids, mask = right_to_left_padding(
            prompts["input_ids"], prompts["input_lengths"], self.tokenizer.pad_token_id
        )
        ids, mask = ids.to(self.device), mask.to(self.device)
        stop_ids = sorted(self._eos_ids() | set(sampling.stop_token_ids or []))
        # Stops by token id are found in the finished sequences; only stop strings need a
        # per-step check (each one adds work to every decoding step).
        strings = None
        if sampling.stop_strings:
            strings = StringStopRecorder(
                StopStringCriteria(self.tokenizer, sampling.stop_strings), ids.shape[1],
                ids.shape[0], min_steps=sampling.min_new_tokens,
            )
        # A seeded call must not disturb the global RNG; an unseeded one must advance it
        # (forking there would replay the same random draws on every call).
        seeded = sampling.seed is not None
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices) if seeded else contextlib.nullcontext():
            if seeded:
                torch.manual_seed(sampling.seed)
            # Eager even when a shared training module has compiled layers
            # (policy.dtensor.compile): decoding shapes would recompile at every step.
            with _eager(), autocast:
                generated, logprobs, string_stops = self._decode(
                    model, ids, mask, sampling, stop_ids, strings,
                    graphs_allowed=isinstance(autocast, contextlib.nullcontext),
                )
        generated = generated.cpu()
        stopped = combine_stops(first_stop_positions(generated, stop_ids), string_stops)
        return self._result(generated, stopped, logprobs.cpu())

    def _decode(
        self, model: Any, ids: torch.Tensor, mask: torch.Tensor, sampling: SamplingParams,
        stop_ids: list[int], strings: StringStopRecorder | None, graphs_allowed: bool,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(generated [B, N], log-probs [B, N], stop-string steps [B] or None) with the
        static-cache decoder (`static_decoding`; CUDA graphs on a GPU unless autocast is on)
        where the model supports it, else with transformers' `generate`."""
        if self.options.decoder == "auto" and static_decoding_unsupported(model) is None:
            self._note_ignored_generation_config(model)
            graphs = self.options.cuda_graphs and not self._capture_failed and graphs_allowed
            decoder = StaticDecoder(model, cuda_graphs=graphs)
            plan = DecodePlan(
                max_new_tokens=sampling.max_new_tokens, stop_ids=tuple(stop_ids),
                pad_id=self.tokenizer.pad_token_id,
                temperature=sampling.temperature, top_k=sampling.top_k,
                top_p=sampling.top_p, min_new_tokens=sampling.min_new_tokens,
                string_stop=(lambda seqs: strings.criterion(seqs, None)) if strings else None,
            )
            generated, logprobs, stopped_at = decoder.decode(ids, mask, plan)
            # A model the capture cannot take is not captured again (nor warned about).
            self._capture_failed |= decoder.capture_error is not None
            self.last_decoder = "static, CUDA graphs" if decoder.graphed_last_call else "static"
            return generated, logprobs, stopped_at if strings else None
        generated, logprobs = self._hf_generate(model, ids, mask, sampling, stop_ids, strings)
        self.last_decoder = "generate"
        return generated, logprobs, strings.stopped_at if strings else None

    def _note_ignored_generation_config(self, model: Any) -> None:
        """Warn once if the model's own generation config changes sampling in ways the static
        decoder does not apply (`generate` would fill them in)."""
        if self._generation_config_checked:
            return
        self._generation_config_checked = True
        ignored = generation_config_extras(getattr(model, "generation_config", None))
        if ignored:
            log.warning(
                "hf generation: the model's generation_config sets %s; the hf backend samples "
                "with generation's own settings only (temperature, top_p, top_k, stops, "
                "min_new_tokens), so these are not applied and the log-probs it reports are "
                "those of the distribution it samples. To apply them, set "
                "generation.backend_options.decoder=generate.",
                ", ".join(f"{k}={v!r}" for k, v in ignored.items()),
            )

    def _decoding_model(self, model: Any) -> tuple[Any, Any]:
        """(model to decode with, autocast context): a shared float32 module on the GPU decodes
        on a bf16 copy (no autocast), or on itself under autocast if no copy can be made."""
        if self.device.type != "cuda" or next(model.parameters()).dtype != torch.float32:
            return model, contextlib.nullcontext()
        dtype = self.options.dtype or "bfloat16"
        if dtype == "float32":
            return model, contextlib.nullcontext()
        if self.shares_training_module and self.options.decode_copy and not self._copy_failed:
            try:
                copy = decode_copy(model, getattr(torch, dtype))
            except torch.OutOfMemoryError:
                copy = None
                self._copy_failed = True  # training state fills the device; do not retry
                log.warning(
                    "hf generation: no room on the GPU for a %s copy of the shared training "
                    "module; decoding on its float32 weights under autocast (slower)", dtype,
                )
            if copy is not None:
                return copy, contextlib.nullcontext()
        return model, torch.autocast(device_type="cuda", dtype=getattr(torch, dtype))

    def _hf_generate(
        self, model: Any, ids: torch.Tensor, mask: torch.Tensor, sampling: SamplingParams,
        stop_ids: list[int], strings: StringStopRecorder | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """transformers' `generate`, log-probs read from its own passes by a forward hook."""
        from transformers import GenerationConfig as HFGenerationConfig
        from transformers import StoppingCriteriaList

        greedy = sampling.is_greedy
        hf_config = HFGenerationConfig(
            max_new_tokens=sampling.max_new_tokens,
            min_new_tokens=sampling.min_new_tokens or None,
            do_sample=not greedy,
            temperature=None if greedy else sampling.temperature,
            top_p=None if greedy else sampling.top_p,
            top_k=None if greedy else (sampling.top_k or 0),
            eos_token_id=stop_ids,
            pad_token_id=self.tokenizer.pad_token_id,
            # Explicit: unset options are filled from the model's own generation config.
            return_dict_in_generate=False,
        )
        recorder = LogprobRecorder()
        hook = model.register_forward_hook(recorder, with_kwargs=True)
        try:
            sequences = model.generate(
                input_ids=ids,
                attention_mask=mask,
                generation_config=hf_config,
                stopping_criteria=StoppingCriteriaList([strings] if strings else []),
            )
        finally:
            hook.remove()
        generated = sequences[:, ids.shape[1] :]
        return generated, recorder.logprobs(sequences, generated.shape[1])

    def _eos_ids(self) -> set[int]:
        ids = {self.tokenizer.eos_token_id} if self.tokenizer.eos_token_id is not None else set()
        model_eos = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        if isinstance(model_eos, int):
            ids.add(model_eos)
        elif model_eos:
            ids.update(model_eos)
        return ids

    def _result(
        self, generated: torch.Tensor, stopped: torch.Tensor, logprobs: torch.Tensor
    ) -> BatchedDataDict:
        steps = generated.shape[1]
        truncated = stopped == 0
        lengths = torch.where(truncated, torch.full_like(stopped, steps), stopped)
        valid = length_mask(lengths, steps)
        pad = self.tokenizer.pad_token_id
        return BatchedDataDict(
            output_ids=torch.where(valid, generated, torch.full_like(generated, pad)),
            logprobs=logprobs * valid,
            lengths=lengths,
            truncated=truncated,
        )


def _eager() -> Any:
    """Run compiled modules eagerly inside the block (torch >= 2.6; a no-op before)."""
    set_stance = getattr(torch.compiler, "set_stance", None)
    return set_stance("force_eager") if set_stance is not None else contextlib.nullcontext()
