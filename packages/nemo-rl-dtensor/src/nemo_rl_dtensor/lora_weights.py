"""Weights of a LoRA-wrapped model: HF names, merged weights, and peft's adapter file names.

A peft model names a base weight `base_model.model.<HF name with .base_layer>` and its adapter
`...<layer>.lora_A.default.weight`. Generation backends and transformers know only the HF names
of the merged model, where an adapted layer's weight is `W + scaling * B @ A`; peft's adapter
files drop the adapter name (`...lora_A.weight`).

Example:
    >>> hf_weight_name("base_model.model.model.layers.0.self_attn.q_proj.base_layer.weight")
    'model.layers.0.self_attn.q_proj.weight'
    >>> hf_weight_name("base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight") is None
    True
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import torch

PEFT_PREFIX = "base_model.model."
ADAPTER_FILE, ADAPTER_CONFIG_FILE = "adapter_model.safetensors", "adapter_config.json"
_LORA = re.compile(r"\.lora_(A|B)\.")


def hf_weight_name(peft_name: str) -> str | None:
    """The HF name of a peft model's base weight, or None for an adapter weight.

    Example:
        >>> hf_weight_name("base_model.model.lm_head.weight")
        'lm_head.weight'
    """
    if _LORA.search(peft_name):
        return None
    name = peft_name[len(PEFT_PREFIX):] if peft_name.startswith(PEFT_PREFIX) else peft_name
    return name.replace(".base_layer.", ".")


def saved_adapter_name(live_name: str, adapter: str = "default") -> str:
    """The key peft's adapter file uses for a live adapter weight (the adapter name dropped).

    Example:
        >>> saved_adapter_name("base_model.model.a.q_proj.lora_B.default.weight")
        'base_model.model.a.q_proj.lora_B.weight'
    """
    return live_name.replace(f".lora_A.{adapter}.", ".lora_A.").replace(
        f".lora_B.{adapter}.", ".lora_B."
    )


def live_adapter_name(saved_name: str, adapter: str = "default") -> str:
    """The live model's key for a key of peft's adapter file (inverse of `saved_adapter_name`).

    Example:
        >>> live_adapter_name("base_model.model.a.q_proj.lora_A.weight")
        'base_model.model.a.q_proj.lora_A.default.weight'
    """
    return _LORA.sub(lambda m: f".lora_{m.group(1)}.{adapter}.", saved_name, count=1)


def merge_lora_weight(
    base: torch.Tensor, lora_a: torch.Tensor, lora_b: torch.Tensor, scaling: float
) -> torch.Tensor:
    """`base + scaling * lora_b @ lora_a`, computed in float32 and returned in `base`'s dtype.

    Example:
        >>> import torch
        >>> merge_lora_weight(torch.zeros(2, 2), torch.tensor([[1.0, 2.0]]),
        ...                   torch.tensor([[1.0], [3.0]]), 0.5).tolist()
        [[0.5, 1.0], [1.5, 3.0]]
    """
    if lora_a.shape[0] != lora_b.shape[1] or (lora_b.shape[0], lora_a.shape[1]) != base.shape:
        raise ValueError(
            f"merge_lora_weight: B {tuple(lora_b.shape)} @ A {tuple(lora_a.shape)} does not give "
            f"the base weight's shape {tuple(base.shape)}"
        )
    delta = lora_b.float() @ lora_a.float()
    return (base.float() + scaling * delta).to(base.dtype)


@dataclass(frozen=True)
class MergedWeight:
    """Where one HF weight of the merged model comes from in the live (peft) state dict."""

    base: str
    lora_a: str | None = None
    lora_b: str | None = None
    scaling: float = 0.0


def merge_plan(
    state_names: Iterable[str], scalings: Mapping[str, float], adapter: str = "default"
) -> dict[str, MergedWeight]:
    """{HF name: its `MergedWeight`} in state-dict order, for the live state dict's names and
    `scalings` ({peft module name: alpha / rank} of each adapted layer).

    Example:
        >>> names = ["base_model.model.q.base_layer.weight", "base_model.model.q.base_layer.bias",
        ...          "base_model.model.q.lora_A.default.weight", "base_model.model.q.lora_B.default.weight"]
        >>> plan = merge_plan(names, {"base_model.model.q": 2.0})
        >>> plan["q.weight"].lora_a, plan["q.bias"].lora_a
        ('base_model.model.q.lora_A.default.weight', None)
    """
    names = list(state_names)
    present = set(names)
    plan: dict[str, MergedWeight] = {}
    for name in names:
        hf = hf_weight_name(name)
        if hf is None:
            continue
        module, _, leaf = name.rpartition(".base_layer.")
        if leaf == "weight" and module in scalings:
            a, b = f"{module}.lora_A.{adapter}.weight", f"{module}.lora_B.{adapter}.weight"
            if a not in present or b not in present:
                raise KeyError(f"merge_plan: {module} is adapted but {a} or {b} is missing")
            plan[hf] = MergedWeight(name, a, b, scalings[module])
        else:
            plan[hf] = MergedWeight(name)
    return plan
