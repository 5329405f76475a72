"""The hf backend's decoder: a static KV cache, one forward per token, CUDA graphs on a GPU.

transformers' `generate` on a GPU is bound by the host: every decoding step runs the model's
Python and launches several hundred small kernels, so a 1.5B model at batch 64 decodes at the
speed of the CPU, not of the GPU. This decoder keeps every shape of a decoding step fixed (keys and
values in preallocated [B, H_kv, prompt + max_new_tokens, D] tensors, written at a slot index that
is a device tensor, and an explicit [B, 1, 1, L] key mask) so that on CUDA the step is captured
once per call as a CUDA graph and then replayed: one launch per token instead of hundreds.

Only the model's forward is captured. Sampling (`token_sampling`), the log-prob of each sampled
token under the unscaled model, stops and padding run eagerly between replays, and are the same
on the CPU, where the step runs eagerly. Rows are left-padded; a finished row gets the pad token.

`static_decoding_unsupported(model)` says why a model cannot take this path (then the backend
uses `generate`): the forward must take an explicit 4D mask, which the Llama and Qwen families do
with SDPA attention; sliding-window layers are refused because one mask serves every layer.

Example:
    >>> # tokens, logprobs, stopped_at = StaticDecoder(model).decode(ids, mask, plan)
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from nemo_rl_dtensor.attention import IMPLEMENTATION as VARLEN_IMPLEMENTATION
from nemo_rl_dtensor.token_sampling import next_tokens

log = logging.getLogger(__name__)

SUPPORTED_MODEL_TYPES = frozenset({"llama", "qwen2", "qwen3"})
# How many tokens pass between host checks of "every row finished" (a sync each).
FINISH_CHECK_EVERY = 16


def static_decoding_unsupported(model: torch.nn.Module) -> str | None:
    """Why `model` cannot decode through `StaticDecoder`, or None if it can.

    Example:
        >>> static_decoding_unsupported(torch.nn.Linear(2, 2))
        'Linear has no HF config'
    """
    config = getattr(model, "config", None)
    if config is None:
        return f"{type(model).__name__} has no HF config"
    if config.model_type not in SUPPORTED_MODEL_TYPES:
        return f"model_type {config.model_type!r} is not one of {sorted(SUPPORTED_MODEL_TYPES)}"
    layer_types = set(getattr(config, "layer_types", None) or ["full_attention"])
    if layer_types != {"full_attention"}:
        return f"the model has {sorted(layer_types - {'full_attention'})} layers"
    # The training module's varlen attention hands every call without packed-sequence
    # keywords to SDPA, mask included.
    if getattr(config, "_attn_implementation", None) not in ("sdpa", VARLEN_IMPLEMENTATION):
        return f"attention implementation {config._attn_implementation!r} (sdpa is needed)"
    return None


# Options of a model's own generation config that change what `generate` samples and that the
# static decoder does not apply (temperature, top-k and top-p always come from SamplingParams).
_GENERATE_ONLY_OPTIONS = (
    "repetition_penalty", "encoder_repetition_penalty", "no_repeat_ngram_size",
    "encoder_no_repeat_ngram_size", "bad_words_ids", "sequence_bias", "suppress_tokens",
    "begin_suppress_tokens", "forced_bos_token_id", "forced_eos_token_id", "min_length",
    "min_new_tokens", "min_p", "typical_p", "epsilon_cutoff", "eta_cutoff",
    "exponential_decay_length_penalty", "renormalize_logits", "num_beams",
)


def generation_config_extras(config: Any) -> dict[str, Any]:
    """The options of an HF `GenerationConfig` that `generate` would apply and the static
    decoder does not: those set to something other than transformers' default.

    Example:
        >>> from transformers import GenerationConfig
        >>> generation_config_extras(GenerationConfig(repetition_penalty=1.05, temperature=0.7))
        {'repetition_penalty': 1.05}
    """
    if config is None:
        return {}
    from transformers import GenerationConfig

    defaults = GenerationConfig()
    return {
        name: getattr(config, name)
        for name in _GENERATE_ONLY_OPTIONS
        if hasattr(defaults, name) and getattr(config, name, None) != getattr(defaults, name)
    }


class StaticKVCache:
    """Keys and values of every layer in [B, H_kv, L, D] tensors, written at `write_index`.

    transformers' attention layers call `update(keys, values, layer_idx)` and attend over what it
    returns; with the explicit mask the decoder passes, nothing else of a cache is asked for. The
    tensors are zeros until written: a masked slot still enters the attention product, where
    uninitialised memory could hold NaN (and 0 x NaN is NaN).

    Example:
        >>> cache = StaticKVCache(layers=1, max_len=4)
        >>> cache.write_index = torch.tensor([0, 1])
        >>> k, v = cache.update(torch.ones(1, 1, 2, 3), torch.ones(1, 1, 2, 3), 0)
        >>> k.shape, k[0, 0, :, 0].tolist()
        (torch.Size([1, 1, 4, 3]), [1.0, 1.0, 0.0, 0.0])
    """

    def __init__(self, layers: int, max_len: int) -> None:
        self.max_len = max_len
        self.keys: list[torch.Tensor | None] = [None] * layers
        self.values: list[torch.Tensor | None] = [None] * layers
        self.write_index = torch.zeros(1, dtype=torch.long)

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, layer_idx: int,
        *args: Any, **kwargs: Any,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        keys, values = self.keys[layer_idx], self.values[layer_idx]
        if keys is None or values is None:
            batch, heads, _, _ = key_states.shape
            keys = key_states.new_zeros(batch, heads, self.max_len, key_states.shape[-1])
            values = value_states.new_zeros(batch, heads, self.max_len, value_states.shape[-1])
            self.keys[layer_idx], self.values[layer_idx] = keys, values
        keys.index_copy_(2, self.write_index, key_states)
        values.index_copy_(2, self.write_index, value_states)
        return keys, values


@dataclass(frozen=True)
class DecodePlan:
    """What one `decode` call does: sampling, lengths, stops and the pad token.

    `stop_ids` end a row (the stop token is kept); `banned_until` suppresses them for the first
    `min_new_tokens` tokens. `string_stop(sequences)` -> bool [B], if given, is asked after every
    token with the prompt and the tokens so far.

    Example:
        >>> DecodePlan(max_new_tokens=8, stop_ids=(2,), pad_id=0).temperature  # greedy
        0.0
    """

    max_new_tokens: int
    stop_ids: tuple[int, ...]
    pad_id: int
    temperature: float = 0.0
    top_k: int | None = None
    top_p: float = 1.0
    min_new_tokens: int = 0
    string_stop: Callable[[torch.Tensor], torch.Tensor] | None = None


class _DecodeStep:
    """One decoding forward on fixed buffers: the thing captured as a CUDA graph."""

    def __init__(
        self, model: torch.nn.Module, cache: StaticKVCache, key_valid: torch.Tensor,
        cache_argument: str, first_slot: int, positions: torch.Tensor,
    ) -> None:
        batch, device = key_valid.shape[0], key_valid.device
        self.model, self.cache, self.key_valid = model, cache, key_valid
        self.cache_argument = cache_argument
        # `advance` moves to the first token's slot and positions before the first forward.
        self.input_ids = torch.zeros(batch, 1, dtype=torch.long, device=device)
        self.positions = positions - 1  # [B, 1]
        self.slot = torch.full((1,), first_slot - 1, dtype=torch.long, device=device)

    def forward(self) -> torch.Tensor:
        """Write the token at `slot`, attend to every valid slot; return the next logits [B, V]."""
        self.key_valid.index_fill_(1, self.slot, True)
        self.cache.write_index = self.slot
        out = self.model(
            input_ids=self.input_ids,
            attention_mask=self.key_valid[:, None, None, :],
            position_ids=self.positions,
            use_cache=True,
            logits_to_keep=1,
            **{self.cache_argument: self.cache},
        )
        return out.logits[:, -1]

    def advance(self, tokens: torch.Tensor) -> None:
        self.input_ids.copy_(tokens.unsqueeze(1))
        self.positions.add_(1)
        self.slot.add_(1)


class _GraphedStep:
    """`_DecodeStep.forward` captured once as a CUDA graph and replayed for every token."""

    def __init__(self, step: _DecodeStep) -> None:
        # Warm up on a side stream (library handles and kernel choices are made outside the
        # capture); the warm-up writes the slot the first real step overwrites.
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            step.forward()
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.logits = step.forward()

    def forward(self) -> torch.Tensor:
        self.graph.replay()
        return self.logits


def _cache_argument(model: torch.nn.Module) -> str:
    # transformers renamed the forward's cache argument (past_key_values -> cache) in 5.2x.
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


class StaticDecoder:
    """Decodes left-padded prompts with `model` (see the module docstring).

    `cuda_graphs` False runs every step eagerly (the CPU always does); a failed capture falls
    back to eager steps with a warning, so a model the capture cannot take still decodes.

    Example:
        >>> # tokens, logprobs, stopped_at = StaticDecoder(model).decode(ids, mask, plan)
    """

    def __init__(self, model: torch.nn.Module, cuda_graphs: bool = True) -> None:
        reason = static_decoding_unsupported(model)
        if reason is not None:
            raise ValueError(f"StaticDecoder cannot decode this model: {reason}")
        self.model = model
        self.cache_argument = _cache_argument(model)
        self.cuda_graphs = cuda_graphs
        self.graphed_last_call = False
        self.capture_error: Exception | None = None  # why the last capture failed, if it did

    @torch.no_grad()
    def decode(
        self, ids: torch.Tensor, mask: torch.Tensor, plan: DecodePlan
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Generate after `ids` [B, T] (left-padded; `mask` 1 on real tokens).

        Returns `tokens` [B, N] (pad after a row's stop), `logprobs` [B, N] float32 of each
        sampled token under the unscaled model, and `stopped_at` [B]: the 1-based step at which
        a stop string ended the row, 0 if none did (stop tokens are found in `tokens`). N is
        `plan.max_new_tokens`, or the last row's stop when every row stopped (as `generate`).
        """
        batch, prompt_len = ids.shape
        device = ids.device
        total = prompt_len + plan.max_new_tokens
        cache = StaticKVCache(self.model.config.num_hidden_layers, total)
        key_valid = torch.zeros(batch, total, dtype=torch.bool, device=device)
        key_valid[:, :prompt_len] = mask.bool()
        logits = self._prefill(ids, mask, key_valid, cache)

        step = _DecodeStep(
            self.model, cache, key_valid, self.cache_argument, prompt_len,
            mask.long().sum(-1, keepdim=True),
        )
        forward: Callable[[], torch.Tensor] | None = None
        stop_ids = torch.tensor(plan.stop_ids, dtype=torch.long, device=device)
        sequences = torch.cat([ids, torch.full((batch, plan.max_new_tokens), plan.pad_id,
                                               dtype=ids.dtype, device=device)], dim=1)
        logprobs = torch.zeros(batch, plan.max_new_tokens, dtype=torch.float32, device=device)
        finished = torch.zeros(batch, dtype=torch.bool, device=device)
        stopped_at = torch.zeros(batch, dtype=torch.long, device=device)
        finish_step = torch.zeros(batch, dtype=torch.long, device=device)
        steps = 0
        for index in range(plan.max_new_tokens):
            banned = stop_ids if index < plan.min_new_tokens else None
            tokens = next_tokens(logits, plan.temperature, plan.top_k, plan.top_p, banned)
            scores = torch.log_softmax(logits, dim=-1, dtype=torch.float32)
            logprobs[:, index] = scores.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
            tokens = tokens.masked_fill(finished, plan.pad_id)
            sequences[:, prompt_len + index] = tokens
            steps = index + 1
            ended = torch.isin(tokens, stop_ids)
            if plan.string_stop is not None and steps >= plan.min_new_tokens:
                hit = plan.string_stop(sequences[:, : prompt_len + steps]) & ~finished
                stopped_at = torch.where(hit, steps, stopped_at)
                ended |= hit
            finish_step = torch.where(ended & ~finished, steps, finish_step)
            finished |= ended
            if steps == plan.max_new_tokens:
                break
            if steps % FINISH_CHECK_EVERY == 0 and bool(finished.all()):
                break
            step.advance(tokens)
            if forward is None:  # captured at the first token's slot, which it overwrites
                forward = self._step_runner(step, plan.max_new_tokens)
            logits = forward()
        # As wide as generate's result: up to the last row's stop once every row stopped.
        width = int(finish_step.max()) if bool(finished.all()) else steps
        return sequences[:, prompt_len : prompt_len + width], logprobs[:, :width], stopped_at

    def _prefill(
        self, ids: torch.Tensor, mask: torch.Tensor, key_valid: torch.Tensor,
        cache: StaticKVCache,
    ) -> torch.Tensor:
        """Run the prompts through the model, filling slots 0..T-1; return the next logits."""
        prompt_len, device = ids.shape[1], ids.device
        positions = (mask.long().cumsum(-1) - 1).clamp(min=0)
        slots = torch.arange(key_valid.shape[1], device=device)
        causal = slots[None, :] <= torch.arange(prompt_len, device=device)[:, None]  # [T, L]
        attend = causal[None] & key_valid[:, None, :]
        # A padding query would see no key at all, and SDPA gives NaN for such a row; letting it
        # see itself keeps its (never attended) keys and values finite.
        attend |= slots[None, None, :] == torch.arange(prompt_len, device=device)[None, :, None]
        cache.write_index = torch.arange(prompt_len, device=device)
        out = self.model(
            input_ids=ids,
            attention_mask=attend[:, None],
            position_ids=positions,
            use_cache=True,
            logits_to_keep=1,
            **{self.cache_argument: cache},
        )
        return out.logits[:, -1]

    def _step_runner(self, step: _DecodeStep, max_new_tokens: int) -> Callable[[], torch.Tensor]:
        self.graphed_last_call = False
        if not (self.cuda_graphs and step.key_valid.is_cuda and max_new_tokens > 1):
            return step.forward
        try:
            graphed = _GraphedStep(step)
        except Exception as err:  # noqa: BLE001 - any capture failure falls back to eager steps
            self.capture_error = err
            log.warning(
                "hf generation: CUDA graph capture of the decoding step failed (%s: %s); decoding "
                "eagerly from now on (generation.backend_options.cuda_graphs=false skips the "
                "attempt)", type(err).__name__, err,
            )
            return step.forward
        self.graphed_last_call = True
        return graphed.forward
