"""Checkpoints and weight export of a LoRA policy: the adapter in peft's format, merged weights.

A LoRA checkpoint directory holds, at the top, peft's adapter files (`adapter_config.json`,
`adapter_model.safetensors`) and the tokenizer, so `PeftModel.from_pretrained(base, <dir>)`
loads it; with `policy.lora.save_merged`, `merged/` also holds the merged model (base weights plus
`scaling * B @ A`) as a plain HF model that transformers loads without peft. The base weights
are not saved: they never change, and resuming reads them from `policy.model_name` again.

Example:
    >>> # names = [hf for hf, _, _ in merged_manifest(model, plan)]
    >>> # tensors = merged_weights(model, plan, names)  # full tensors on rank 0
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch

from nemo_rl_dtensor import checkpointing
from nemo_rl_dtensor.lora import ADAPTER_NAME
from nemo_rl_dtensor.lora_weights import (
    ADAPTER_CONFIG_FILE,
    ADAPTER_FILE,
    MergedWeight,
    live_adapter_name,
    merge_lora_weight,
    saved_adapter_name,
)

MERGED_DIR = "merged"


def full_tensor(tensor: torch.Tensor) -> torch.Tensor:
    """The whole tensor behind a DTensor shard (a collective), or the tensor itself.

    Example:
        >>> import torch
        >>> full_tensor(torch.ones(2)).tolist()
        [1.0, 1.0]
    """
    return tensor.full_tensor() if hasattr(tensor, "full_tensor") else tensor


def merged_manifest(
    model: torch.nn.Module, plan: dict[str, MergedWeight]
) -> list[tuple[str, tuple[int, ...], torch.dtype]]:
    """(HF name, full shape, dtype) of every weight of the merged model, in state-dict order.

    Example:
        >>> # merged_manifest(peft_model, plan)[0] -> ('model.embed_tokens.weight', (262, 64), torch.float32)
    """
    state = model.state_dict()
    return [(hf, tuple(state[w.base].shape), state[w.base].dtype) for hf, w in plan.items()]


@torch.no_grad()
def merged_weights(
    model: torch.nn.Module, plan: dict[str, MergedWeight], names: list[str], to_cpu: bool
) -> dict[str, torch.Tensor]:
    """Full merged tensors of `names` (HF names); a collective when sharded. Unadapted weights
    of an unsharded model are views of the live ones, adapted ones new tensors.

    Example:
        >>> # merged_weights(peft_model, plan, ["model.layers.0.self_attn.q_proj.weight"], False)
    """
    state = model.state_dict()
    out = {}
    for name in names:
        entry = plan[name]
        tensor = full_tensor(state[entry.base])
        if entry.lora_a is not None and entry.lora_b is not None:
            lora_a, lora_b = full_tensor(state[entry.lora_a]), full_tensor(state[entry.lora_b])
            tensor = merge_lora_weight(tensor, lora_a, lora_b, entry.scaling)
        out[name] = (tensor.cpu() if to_cpu else tensor).detach()
    return out


@torch.no_grad()
def adapter_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The trained adapter weights under peft's file keys, as full CPU tensors (a collective).

    Example:
        >>> # sorted(adapter_state(peft_model))[0] -> 'base_model.model.model.layers.0.mlp.down_proj.lora_A.weight'
    """
    return {
        saved_adapter_name(name, ADAPTER_NAME): full_tensor(param.detach()).cpu().contiguous()
        for name, param in model.named_parameters()
        if param.requires_grad
    }


def save_adapter(model: torch.nn.Module, tensors: dict[str, torch.Tensor], directory: Path) -> None:
    """Write peft's adapter files for `tensors` (from `adapter_state`) into `directory`.

    Example:
        >>> # save_adapter(peft_model, adapter_state(peft_model), Path("ckpt/step_10"))
    """
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    config = copy.copy(model.peft_config[ADAPTER_NAME])
    config.inference_mode = True  # as peft writes it: loading for training is the caller's choice
    config.save_pretrained(str(directory))
    save_file(tensors, str(directory / ADAPTER_FILE), metadata={"format": "pt"})


def save_lora_checkpoint(
    model: torch.nn.Module,
    plan: dict[str, MergedWeight],
    directory: Path,
    tokenizer: Any,
    save_merged: bool,
    rank: int,
) -> None:
    """Write the adapter (and with `save_merged` the merged model) of `model`; every rank calls
    it (the gathers are collectives), rank 0 writes.

    Example:
        >>> # save_lora_checkpoint(model, plan, Path("ckpt/step_10"), tokenizer, True, rank=0)
    """
    tensors = adapter_state(model)
    if rank == 0:
        save_adapter(model, tensors, directory)
        tokenizer.save_pretrained(str(directory))
    if not save_merged:
        return
    weights = merged_weights(model, plan, list(plan), to_cpu=True)
    if rank == 0:
        base = model.get_base_model()
        merged_dir = directory / MERGED_DIR
        checkpointing.save_hf_model(
            weights, base.config, getattr(base, "generation_config", None), merged_dir
        )
        tokenizer.save_pretrained(str(merged_dir))


def load_adapter(model: torch.nn.Module, directory: Path) -> None:
    """Copy the adapter weights of peft files in `directory` into `model` (sharded or not).

    Example:
        >>> # load_adapter(peft_model, Path("ckpt/step_10"))
    """
    from safetensors.torch import load_file
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    file = directory / ADAPTER_FILE
    if not file.is_file() or not (directory / ADAPTER_CONFIG_FILE).is_file():
        raise FileNotFoundError(
            f"{directory} holds no LoRA adapter ({ADAPTER_FILE} and {ADAPTER_CONFIG_FILE}); pass a "
            "checkpoint written with policy.lora.enabled=true, or turn policy.lora off to resume a "
            "full-weight checkpoint"
        )
    weights = {live_adapter_name(k, ADAPTER_NAME): v for k, v in load_file(str(file)).items()}
    expected = {name for name, p in model.named_parameters() if p.requires_grad}
    missing, unexpected = expected - set(weights), set(weights) - expected
    if missing or unexpected:
        raise KeyError(
            f"the adapter in {directory} does not fit this model's adapters: missing "
            f"{sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]}; was it written with other "
            "policy.lora target_modules, exclude_modules or layers?"
        )
    shapes = {name: tuple(p.shape) for name, p in model.named_parameters() if p.requires_grad}
    wrong = sorted(n for n, t in weights.items() if tuple(t.shape) != shapes[n])
    if wrong:
        raise ValueError(
            f"the adapter in {directory} has other shapes than this model's adapters ({wrong[0]}: "
            f"{tuple(weights[wrong[0]].shape)} vs {shapes[wrong[0]]}); was it written with another "
            "policy.lora.rank?"
        )
    options = StateDictOptions(full_state_dict=True, strict=False)
    set_model_state_dict(model, weights, options=options)
