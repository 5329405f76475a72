"""Checkpoints of the training backend and full-weight export.

Layout of a checkpoint directory:

    <path>/        HF safetensors + config.json + generation_config.json + tokenizer files at the
                   top, so `AutoModelForCausalLM.from_pretrained(<path>)` loads the checkpoint
                   directory itself (HF ignores the other entries).
    <path>/optim/   torch.distributed.checkpoint (DCP) of the optimizer state (each rank writes
                    its own shards), plus scheduler.pt and rng_rank<r>.pt.

Example:
    >>> hf_weight_shards({"a": 1, "b": 2}, {"a": 10, "b": 10}, max_shard_bytes=15)
    [['a'], ['b']]
"""

from __future__ import annotations

import json
import random
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

MODEL_DIR, OPTIM_DIR = ".", "optim"  # the HF model sits at the top of the checkpoint
MAX_SHARD_BYTES = 5 * 1024**3


def _is_distributed() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def _rank() -> int:
    import torch.distributed as dist

    return dist.get_rank() if _is_distributed() else 0


def _barrier() -> None:
    import torch.distributed as dist

    if _is_distributed():
        dist.barrier()


@contextmanager
def _single_process_is_intended() -> Iterator[None]:
    # World size 1 runs without a process group by design; DCP warns about that even with no_dist.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.distributed is disabled")
        yield


def full_model_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """All weights under their HF names as full CPU tensors (a collective when sharded: every rank
    must call it; only rank 0 receives the tensors, the others get an empty dict).

    Example:
        >>> import torch
        >>> sorted(full_model_state_dict(torch.nn.Linear(1, 1)))
        ['bias', 'weight']
    """
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return get_model_state_dict(model, options=options)


def hf_weight_shards(
    names: Mapping[str, Any], sizes: Mapping[str, int], max_shard_bytes: int = MAX_SHARD_BYTES
) -> list[list[str]]:
    """Group weight names, in order, into safetensors files of at most `max_shard_bytes` each.

    Example:
        >>> hf_weight_shards({"a": 0, "b": 0, "c": 0}, {"a": 4, "b": 4, "c": 9}, max_shard_bytes=8)
        [['a', 'b'], ['c']]
    """
    shards: list[list[str]] = [[]]
    used = 0
    for name in names:
        if shards[-1] and used + sizes[name] > max_shard_bytes:
            shards.append([])
            used = 0
        shards[-1].append(name)
        used += sizes[name]
    return shards


def save_hf_model(
    state_dict: dict[str, torch.Tensor],
    model_config: Any,
    generation_config: Any,
    directory: Path,
    max_shard_bytes: int = MAX_SHARD_BYTES,
) -> None:
    """Write `state_dict` as HF safetensors (sharded with an index above 5 GiB) next to the configs.

    A tied `lm_head.weight` is left out, as transformers does, so loading re-ties it.

    Example:
        >>> # save_hf_model(full_model_state_dict(model), model.config, model.generation_config, out)
    """
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    text_config = (
        model_config.get_text_config() if hasattr(model_config, "get_text_config") else model_config
    )
    weights = dict(state_dict)
    if getattr(text_config, "tie_word_embeddings", False):
        weights.pop("lm_head.weight", None)
    weights = {k: v.detach().contiguous() for k, v in weights.items()}
    sizes = {k: v.numel() * v.element_size() for k, v in weights.items()}
    shards = hf_weight_shards(weights, sizes, max_shard_bytes)
    if len(shards) == 1:
        save_file(weights, str(directory / "model.safetensors"), metadata={"format": "pt"})
    else:
        weight_map = {}
        for i, names in enumerate(shards):
            file_name = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
            save_file(
                {n: weights[n] for n in names},
                str(directory / file_name),
                metadata={"format": "pt"},
            )
            weight_map.update(dict.fromkeys(names, file_name))
        total = sum(v.numel() * v.element_size() for v in weights.values())
        index = {"metadata": {"total_size": total}, "weight_map": weight_map}
        (directory / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    # Write the configs as loaded, so `architectures` names the HF class, not FSDP's wrapper.
    model_config.save_pretrained(str(directory))
    if generation_config is not None:
        generation_config.save_pretrained(str(directory))


def load_hf_weights(directory: Path) -> dict[str, torch.Tensor]:
    """Read every safetensors file of an HF model directory into one CPU state dict.

    Example:
        >>> # weights = load_hf_weights(Path("ckpt/step_10"))
    """
    from safetensors.torch import load_file

    files = sorted(directory.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(
            f"no *.safetensors in {directory}; pass a checkpoint written by save_checkpoint "
            f"(it holds the HF model files and {OPTIM_DIR}/)"
        )
    weights: dict[str, torch.Tensor] = {}
    for file in files:
        weights.update(load_file(str(file)))
    return weights


def set_full_model_state_dict(model: torch.nn.Module, weights: dict[str, torch.Tensor]) -> None:
    """Copy full HF-named tensors into `model` (sharded or not); every rank passes the full dict.

    A missing tied `lm_head.weight` is fine (it shares the embedding); any other mismatch raises.

    Example:
        >>> import torch
        >>> m = torch.nn.Linear(1, 1)
        >>> set_full_model_state_dict(m, {"weight": torch.ones(1, 1), "bias": torch.zeros(1)})
        >>> m.weight.item()
        1.0
    """
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    expected = set(model.state_dict())
    tied = (
        {"lm_head.weight"} if "lm_head.weight" not in weights and _lm_head_is_tied(model) else set()
    )
    missing, unexpected = expected - set(weights) - tied, set(weights) - expected
    if missing or unexpected:
        raise KeyError(
            f"checkpoint weights do not match the model: missing {sorted(missing)[:5]}, unexpected "
            f"{sorted(unexpected)[:5]}; was the checkpoint written for another model?"
        )
    options = StateDictOptions(full_state_dict=True, strict=False)
    set_model_state_dict(model, weights, options=options)


def _lm_head_is_tied(model: torch.nn.Module) -> bool:
    head = getattr(model, "lm_head", None)
    embed = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    return head is not None and embed is not None and head.weight is embed.weight


def save_training_state(
    directory: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any
) -> None:
    """Write optimizer (DCP, sharded), scheduler and this rank's RNG states to `directory`.

    Example:
        >>> # save_training_state(Path("ckpt/optim"), model, optimizer, scheduler)
    """
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

    directory.mkdir(parents=True, exist_ok=True)
    state = {"optimizer": get_optimizer_state_dict(model, optimizer)}
    with _single_process_is_intended():
        dcp.save(state, checkpoint_id=str(directory), no_dist=not _is_distributed())
    rank = _rank()
    if rank == 0:
        torch.save(scheduler.state_dict(), directory / "scheduler.pt")
    rng = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state()
    torch.save(rng, directory / f"rng_rank{rank}.pt")
    _barrier()


def load_training_state(
    directory: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any
) -> None:
    """Restore what `save_training_state` wrote (same world size for the RNG states).

    Example:
        >>> # load_training_state(Path("ckpt/optim"), model, optimizer, scheduler)
    """
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import (
        get_optimizer_state_dict,
        set_optimizer_state_dict,
    )

    if not (directory / ".metadata").exists():
        raise FileNotFoundError(
            f"{directory} holds no optimizer checkpoint (.metadata missing); pass the directory "
            "given to save_checkpoint"
        )
    # The template must hold every state tensor; get_optimizer_state_dict creates them if needed.
    state = {"optimizer": get_optimizer_state_dict(model, optimizer)}
    with _single_process_is_intended():
        dcp.load(state, checkpoint_id=str(directory), no_dist=not _is_distributed())
    set_optimizer_state_dict(model, optimizer, state["optimizer"])
    scheduler.load_state_dict(torch.load(directory / "scheduler.pt", weights_only=False))
    rng_file = directory / f"rng_rank{_rank()}.pt"
    if rng_file.exists():
        rng = torch.load(rng_file, weights_only=False)
        random.setstate(rng["python"])
        torch.set_rng_state(rng["torch"])
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state(rng["cuda"])
