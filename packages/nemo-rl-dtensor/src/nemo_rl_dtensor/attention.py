"""Variable-length attention for packed rows: no FLOPs on attention across packed sequences.

transformers turns a packed row (`position_ids` restarting at 0 for each sequence) into a
block-diagonal mask, and SDPA with an explicit mask runs a kernel that computes every query-key
pair of the row: a row of 16 sequences of 1,024 tokens does 16x the attention work it needs. The
`nemo_rl_varlen` implementation registered here gives each sequence its own causal attention
through torch's flash-attention varlen kernel (`torch.nn.attention.varlen.varlen_attn`), driven by
the `cu_seq_lens_q`/`max_length_q` keywords that `packed_logprobs` passes for packed rows.

Everything else goes to transformers' SDPA attention: a call without those keywords and without
a mask is plain causal attention (exact on right-padded rows, whose padding comes after every
real token; `padded_logprobs` passes no mask for that reason), and a call with a padding mask
(left-padded generation on the shared module) gets the same mask SDPA would. Off CUDA, or in
float32, packed rows run one SDPA call per sequence: the same result, without the kernel.

`policy.dtensor.attention` picks the implementation: `auto` (varlen where the kernel runs: CUDA,
bf16 compute, a model without sliding-window attention), `varlen`, `sdpa` or `eager`.

Example:
    >>> import torch
    >>> q = k = v = torch.randn(1, 2, 5, 8)  # [batch 1, heads, packed tokens, head dim]
    >>> cu = torch.tensor([0, 2, 5], dtype=torch.int32)  # two sequences: 2 and 3 tokens
    >>> out = per_sequence_attention(q, k, v, cu, scale=8 ** -0.5)
    >>> out.shape  # [batch, tokens, heads, head dim], as transformers expects back
    torch.Size([1, 5, 2, 8])
"""

from __future__ import annotations

import inspect
from typing import Any

import torch

IMPLEMENTATION = "nemo_rl_varlen"
CHOICES = ("auto", "varlen", "sdpa", "eager")


def _find_varlen_kernel() -> tuple[Any, frozenset[str]] | None:
    """torch's varlen attention and its keyword names, or None (torch < 2.10)."""
    try:
        from torch.nn.attention.varlen import varlen_attn
    except ImportError:
        return None
    return varlen_attn, frozenset(inspect.signature(varlen_attn).parameters)


# Looked up once at import: every attention layer of every packed forward asks, and inside a
# compiled layer (policy.dtensor.compile) a cached function call is traced through, signature
# inspection included, where a module constant is simply read.
VARLEN_KERNEL = _find_varlen_kernel()


def per_sequence_attention(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, cu_seqlens: torch.Tensor,
    scale: float,
) -> torch.Tensor:
    """Causal attention of each packed sequence on its own, one SDPA call per sequence: the
    reference the varlen kernel must match, and the path off CUDA or in float32.

    `query` [1, H, N, D], `key`/`value` [1, H_kv, N, D] (grouped-query heads are repeated);
    returns [1, N, H, D].

    Example:
        >>> import torch
        >>> q = torch.randn(1, 1, 3, 4)
        >>> whole = per_sequence_attention(q, q, q, torch.tensor([0, 3]), scale=0.5)
        >>> ref = torch.nn.functional.scaled_dot_product_attention(q, q, q, is_causal=True, scale=0.5)
        >>> torch.allclose(whole, ref.transpose(1, 2))
        True
    """
    groups = query.shape[1] // key.shape[1]
    if groups > 1:
        key, value = key.repeat_interleave(groups, dim=1), value.repeat_interleave(groups, dim=1)
    bounds = cu_seqlens.tolist()
    pieces = [
        torch.nn.functional.scaled_dot_product_attention(
            query[:, :, s:e], key[:, :, s:e], value[:, :, s:e], is_causal=True, scale=scale
        )
        for s, e in zip(bounds[:-1], bounds[1:], strict=True) if e > s
    ]
    return torch.cat(pieces, dim=2).transpose(1, 2)


def _kernel_attention(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, cu_seqlens: torch.Tensor,
    max_length: int, scale: float,
) -> torch.Tensor | None:
    """The flash-attention varlen kernel, or None where it cannot run (CPU, float32, a scale
    this torch cannot pass)."""
    kernel = VARLEN_KERNEL
    if kernel is None or not query.is_cuda:
        return None
    if torch.is_autocast_enabled("cuda"):
        # Under autocast, rotary embeddings leave query and key in float32 (their cos/sin follow
        # the float32 hidden states); SDPA would be cast to the autocast dtype, so is the kernel.
        low = torch.get_autocast_dtype("cuda")
        query, key, value = (t.to(low) for t in (query, key, value))
    if query.dtype not in (torch.bfloat16, torch.float16):
        return None
    varlen_attn, params = kernel
    head_dim = query.shape[-1]
    options: dict[str, Any] = {}
    if "scale" in params:
        options["scale"] = scale
    elif abs(scale - head_dim ** -0.5) > 1e-9:  # torch 2.10's kernel always uses 1/sqrt(D)
        return None
    groups = query.shape[1] // key.shape[1]
    if groups > 1:
        if "enable_gqa" in params:
            options["enable_gqa"] = True
        else:
            key, value = key.repeat_interleave(groups, dim=1), value.repeat_interleave(groups, dim=1)
    # torch 2.10 spells causality `is_causal`; 2.11 and later a (left, right) window.
    if "window_size" in params:
        options["window_size"] = (-1, 0)
    else:
        options["is_causal"] = True
    # [1, H, N, D] -> [N, H, D], the kernel's packed layout.
    q, k, v = (t[0].transpose(0, 1) for t in (query, key, value))
    cu = cu_seqlens.to(device=query.device, dtype=torch.int32)
    out = varlen_attn(q, k, v, cu, cu, max_length, max_length, **options)
    return out.unsqueeze(0)


def varlen_attention_forward(
    module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
    attention_mask: torch.Tensor | None, scaling: float | None = None, dropout: float = 0.0,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """transformers' attention-function signature (see the module docstring for the routing).

    Example:
        >>> import torch
        >>> q = torch.randn(1, 2, 4, 8)
        >>> out, weights = varlen_attention_forward(torch.nn.Module(), q, q, q, None)
        >>> out.shape, weights
        (torch.Size([1, 4, 2, 8]), None)
    """
    cu_seqlens = kwargs.get("cu_seq_lens_q")
    if cu_seqlens is None or query.shape[2] == 1:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                      scaling=scaling, **kwargs)
    if query.shape[0] != 1:
        raise ValueError(
            f"varlen attention got {query.shape[0]} packed rows; packed micro-batches are one row "
            "(build_packed_batch)"
        )
    scale = scaling if scaling is not None else query.shape[-1] ** -0.5
    max_length = int(kwargs.get("max_length_q") or query.shape[2])
    out = _kernel_attention(query, key, value, cu_seqlens, max_length, scale)
    if out is None:
        out = per_sequence_attention(query, key, value, cu_seqlens, scale)
    return out, None


def varlen_mask(*args: Any, attention_mask: torch.Tensor | None = None,
                allow_is_causal_skip: bool = True, **kwargs: Any) -> torch.Tensor | None:
    """The mask transformers builds for `nemo_rl_varlen`: none for plain causal attention (the
    attention function needs none, packed rows included), SDPA's mask when there is padding.

    Example:
        >>> varlen_mask(attention_mask=None, allow_is_causal_skip=True) is None
        True
    """
    if attention_mask is None and allow_is_causal_skip:
        return None
    from transformers.masking_utils import sdpa_mask

    return sdpa_mask(*args, attention_mask=attention_mask,
                     allow_is_causal_skip=allow_is_causal_skip, **kwargs)


def register() -> str:
    """Register `nemo_rl_varlen` with transformers (idempotent); returns its name.

    Example:
        >>> register()
        'nemo_rl_varlen'
    """
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    AttentionInterface.register(IMPLEMENTATION, varlen_attention_forward)
    AttentionMaskInterface.register(IMPLEMENTATION, varlen_mask)
    return IMPLEMENTATION


def resolve_attention(choice: str, device_type: str, compute_dtype: torch.dtype,
                      hf_config: Any) -> str | None:
    """The `attn_implementation` to load the model with (None: transformers' default).

    `auto` is varlen where its kernel runs (CUDA, bf16/fp16 compute, torch with varlen attention)
    on a model without sliding-window layers; elsewhere transformers' default.

    Example:
        >>> import torch
        >>> resolve_attention("auto", "cpu", torch.float32, None) is None
        True
        >>> resolve_attention("sdpa", "cpu", torch.float32, None)
        'sdpa'
    """
    if choice not in CHOICES:
        raise ValueError(f"policy.dtensor.attention={choice!r} is unknown; use one of {CHOICES}")
    if choice in ("sdpa", "eager"):
        return choice
    if choice == "varlen":
        return register()
    sliding = getattr(hf_config, "sliding_window", None) and getattr(hf_config, "use_sliding_window", True)
    kernel_runs = (device_type == "cuda" and compute_dtype in (torch.bfloat16, torch.float16)
                   and VARLEN_KERNEL is not None)
    return register() if kernel_runs and not sliding else None


def uses_varlen(model: torch.nn.Module) -> bool:
    """Whether `model` attends with `nemo_rl_varlen` (packed calls then pass sequence bounds).

    Example:
        >>> import torch
        >>> uses_varlen(torch.nn.Linear(1, 1))
        False
    """
    config = getattr(model, "config", None)
    return getattr(config, "_attn_implementation", None) == IMPLEMENTATION
