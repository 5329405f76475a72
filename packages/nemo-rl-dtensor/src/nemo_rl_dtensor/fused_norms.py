"""RMSNorm layers of HF models through torch's `rms_norm` (one kernel instead of about six).

HF's Llama-family RMSNorm (Llama, Qwen2, Qwen3, Mistral and the models that copy it) computes
`weight * (x * rsqrt(mean(x^2) + eps))` as separate upcast, square, mean, add, rsqrt and multiply
kernels. A model has two per layer, so a decoding step of a 28-layer model launches about 300
kernels for them alone, and HF decoding is bound by the host launching kernels. `fuse_rms_norms`
swaps each such layer's forward for `torch.nn.functional.rms_norm`, the same arithmetic in float32.

A layer is swapped only if its own forward gives the same output as the fused one on a probe
input (float32 within 1e-5, bfloat16 within one rounding step), so an RMSNorm with other math
(Gemma's `1 + weight`, say) keeps its own forward.

Example:
    >>> import torch
    >>> from transformers.models.llama.modeling_llama import LlamaRMSNorm
    >>> model = torch.nn.Sequential(LlamaRMSNorm(8), torch.nn.Linear(8, 8))
    >>> fuse_rms_norms(model)
    1
"""

from __future__ import annotations

import types

import torch


def _eps(module: torch.nn.Module) -> float | None:
    for name in ("variance_epsilon", "eps"):
        value = getattr(module, name, None)
        if isinstance(value, float):
            return value
    return None


def fused_rms_norm_forward(self: torch.nn.Module, hidden_states: torch.Tensor) -> torch.Tensor:
    """The Llama-family RMSNorm: normalise in float32, cast back, scale by the weight.

    Example:
        >>> import torch
        >>> from transformers.models.llama.modeling_llama import LlamaRMSNorm
        >>> norm = LlamaRMSNorm(4)
        >>> fused_rms_norm_forward(norm, torch.ones(1, 4)).tolist()
        [[0.9999995231628418, 0.9999995231628418, 0.9999995231628418, 0.9999995231628418]]
    """
    shape = (hidden_states.shape[-1],)
    eps = _eps(self)
    weight = self.weight
    if hidden_states.dtype == torch.float32 and weight.dtype == torch.float32:
        return torch.nn.functional.rms_norm(hidden_states, shape, weight, eps)  # one kernel
    normed = torch.nn.functional.rms_norm(hidden_states.float(), shape, eps=eps)
    return weight * normed.to(hidden_states.dtype)


def _same_math(module: torch.nn.Module, width: int) -> bool:
    gen = torch.Generator().manual_seed(0)
    device = module.weight.device
    with torch.no_grad():
        for dtype, tolerance in ((torch.float32, 1e-5), (torch.bfloat16, 1e-2)):
            probe = (torch.randn(2, 3, width, generator=gen) * 3).to(device=device, dtype=dtype)
            theirs = module.forward(probe).float()
            ours = fused_rms_norm_forward(module, probe).float()
            if theirs.shape != ours.shape or not torch.allclose(theirs, ours, atol=tolerance, rtol=tolerance):
                return False
    return True


def fuse_rms_norms(model: torch.nn.Module) -> int:
    """Swap the forward of every Llama-family RMSNorm in `model` (see the module docstring);
    returns how many were swapped. Call it before sharding, on the unsharded module.

    Example:
        >>> import torch
        >>> fuse_rms_norms(torch.nn.Linear(2, 2))
        0
    """
    checked: dict[type, bool] = {}
    swapped = 0
    for module in model.modules():
        kind = type(module)
        weight = getattr(module, "weight", None)
        if not kind.__name__.endswith("RMSNorm") or _eps(module) is None:
            continue
        if not isinstance(weight, torch.nn.Parameter) or weight.dim() != 1:
            continue
        if kind not in checked:
            checked[kind] = _same_math(module, weight.shape[0])
        if checked[kind]:
            module.forward = types.MethodType(fused_rms_norm_forward, module)
            swapped += 1
    return swapped
