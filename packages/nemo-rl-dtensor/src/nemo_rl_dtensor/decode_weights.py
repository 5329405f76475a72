"""A bf16 copy of a float32 training module, made for one generation call.

On one GPU, generation shares the training module (no second model, no refit), whose master
weights are float32. Decoding on them under bf16 autocast re-casts activations and weights in
every layer of every step, and a float32 module cannot be captured as a plain bf16 CUDA graph.
`decode_copy(module)` instead builds the same architecture with bf16 weights on the module's
device (about 2 bytes per parameter: 3 GB at 1.5B), copies the current weights in (a few
milliseconds on the GPU) and is dropped after the call, so its memory goes back to training.

The copy runs SDPA attention and the fused RMSNorm, keeps the source's buffers in their own
dtype (rotary frequencies stay float32, as a bf16 checkpoint load leaves them), and shares the
source's `generation_config` object. A module whose parameters differ from a plain model of its
class (LoRA adapters inside it) gets no copy: None.

Example:
    >>> # twin = decode_copy(training_module)  # bf16, same weights, or None
"""

from __future__ import annotations

import copy
import logging
from collections import defaultdict
from typing import Any

import torch

from nemo_rl_dtensor.fused_norms import fuse_rms_norms

log = logging.getLogger(__name__)


def _set_submodule_parameter(root: torch.nn.Module, name: str, value: torch.nn.Parameter) -> None:
    owner, _, leaf = name.rpartition(".")
    setattr(root.get_submodule(owner) if owner else root, leaf, value)


def _tie_like(twin: torch.nn.Module, source: torch.nn.Module) -> None:
    """Give `twin` the same parameter sharing as `source` (to_empty unties what was tied)."""
    names_of: dict[int, list[str]] = defaultdict(list)
    for name, param in source.named_parameters(remove_duplicate=False):
        names_of[id(param)].append(name)
    for names in names_of.values():
        first = twin.get_parameter(names[0])
        for name in names[1:]:
            _set_submodule_parameter(twin, name, first)


def decode_copy(source: torch.nn.Module, dtype: torch.dtype = torch.bfloat16) -> Any:
    """A `dtype` copy of HF causal LM `source` on its device, or None (see the module docstring).

    Raises torch.OutOfMemoryError when the device has no room for it.

    Example:
        >>> # twin = decode_copy(model); twin.generate(...)
    """
    config = copy.deepcopy(source.config)
    config._attn_implementation = "sdpa"
    device = next(source.parameters()).device
    with torch.device("meta"):
        twin = type(source)(config)
    source_params = dict(source.named_parameters(remove_duplicate=False))
    source_buffers = dict(source.named_buffers())
    twin_names = {name for name, _ in twin.named_parameters(remove_duplicate=False)}
    if twin_names != set(source_params) or {n for n, _ in twin.named_buffers()} != set(source_buffers):
        log.info(
            "hf generation: the shared module's parameters differ from a plain %s (%d extra, "
            "e.g. LoRA adapters); decoding on the module itself",
            type(source).__name__, len(set(source_params) - twin_names),
        )
        return None
    twin.to(dtype)  # on meta: only the recorded dtype changes
    twin.to_empty(device=device)
    _tie_like(twin, source)
    for name, _ in list(twin.named_buffers()):
        owner, _, leaf = name.rpartition(".")
        module = twin.get_submodule(owner) if owner else twin
        module._buffers[leaf] = source_buffers[name].detach().clone()
    with torch.no_grad():
        for name, param in twin.named_parameters():
            param.copy_(source_params[name])
    twin.requires_grad_(False)
    twin.generation_config = source.generation_config
    fuse_rms_norms(twin)  # after the copy: it probes each norm with its real weight
    return twin.eval()
