"""Tensor- and pipeline-parallel cuts of an unsharded Megatron GPTModel state dict (pure torch).

Tensor parallelism splits column-parallel weights (embedding and output vocabulary, fused QKV,
the MLP's fc1) by rows and row-parallel weights (attention output projection, fc2) by columns;
norms are replicated. fc1 holds [gate; up], and each rank holds [its gate rows; its up rows], so
it is split per half. Pipeline parallelism gives each stage a contiguous run of layers,
renumbered from 0; the first stage holds the embedding, the last the final norm and the output
layer, which with tied embeddings is a copy of the embedding there (Megatron keeps the two in
sync through its embedding group).

Example:
    >>> import torch
    >>> shards = shard_tensor_parallel({"mlp.linear_fc1.weight": torch.arange(4.).unsqueeze(1)}, 2)
    >>> [s["mlp.linear_fc1.weight"].flatten().tolist() for s in shards]  # [gate_r; up_r]
    [[0.0, 2.0], [1.0, 3.0]]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

LAYER_PREFIX = "decoder.layers."
ROW_SPLIT = ("word_embeddings.weight", "output_layer.weight", "linear_qkv.weight", "linear_qkv.bias")
COLUMN_SPLIT = ("linear_proj.weight", "linear_fc2.weight")
GATED = ("linear_fc1.weight",)


def split_dim(name: str) -> int | None:
    """The dimension `name` is split along under tensor parallelism (None: replicated).

    Example:
        >>> split_dim("decoder.layers.0.self_attention.linear_proj.weight"), split_dim("x.layernorm.weight")
        (1, None)
    """
    if name.endswith(ROW_SPLIT) or name.endswith(GATED):
        return 0
    if name.endswith(COLUMN_SPLIT):
        return 1
    return None


def _check_divisible(name: str, size: int, parts: int) -> None:
    if size % parts != 0:
        raise ValueError(
            f"{name}: dimension of size {size} does not split into {parts} tensor-parallel parts; "
            "pad the vocabulary (ModelLayout.padded_vocab_size) or choose a divisor of the heads"
        )


def shard_tensor_parallel(state: Mapping[str, torch.Tensor], tp: int) -> list[dict[str, torch.Tensor]]:
    """The `tp` per-rank state dicts of an unsharded one (views where possible, no copies).

    Example:
        >>> import torch
        >>> parts = shard_tensor_parallel({"a.linear_proj.weight": torch.ones(2, 4)}, 2)
        >>> [tuple(p["a.linear_proj.weight"].shape) for p in parts]
        [(2, 2), (2, 2)]
    """
    shards: list[dict[str, torch.Tensor]] = [{} for _ in range(tp)]
    for name, tensor in state.items():
        dim = split_dim(name)
        if dim is None:
            pieces = [tensor] * tp
        elif name.endswith(GATED):
            _check_divisible(name, tensor.shape[0], 2 * tp)
            gate, up = torch.chunk(tensor, 2, dim=0)
            pieces = [
                torch.cat([g, u], dim=0)
                for g, u in zip(torch.chunk(gate, tp), torch.chunk(up, tp), strict=True)
            ]
        else:
            _check_divisible(name, tensor.shape[dim], tp)
            pieces = list(torch.chunk(tensor, tp, dim=dim))
        for shard, piece in zip(shards, pieces, strict=True):
            shard[name] = piece
    return shards


def merge_tensor_parallel(shards: Sequence[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The unsharded state dict of per-rank ones (the inverse of `shard_tensor_parallel`).

    Example:
        >>> import torch
        >>> s = shard_tensor_parallel({"decoder.layers.0.mlp.linear_fc1.weight": torch.arange(8.)}, 2)
        >>> merge_tensor_parallel(s)["decoder.layers.0.mlp.linear_fc1.weight"].tolist()
        [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    """
    if not shards:
        raise ValueError("merge_tensor_parallel needs at least one shard")
    names = list(shards[0])
    for rank, shard in enumerate(shards[1:], start=1):
        if set(shard) != set(names):
            diff = sorted(set(shard) ^ set(names))
            raise ValueError(f"tensor-parallel rank {rank} holds other tensors than rank 0: {diff[:5]}")
    merged = {}
    for name in names:
        pieces = [shard[name] for shard in shards]
        dim = split_dim(name)
        if dim is None:
            merged[name] = pieces[0]
        elif name.endswith(GATED):
            halves = [torch.chunk(p, 2, dim=0) for p in pieces]
            merged[name] = torch.cat([h[0] for h in halves] + [h[1] for h in halves], dim=0)
        else:
            merged[name] = torch.cat(pieces, dim=dim)
    return merged


def pipeline_layer_counts(num_layers: int, pp: int) -> list[int]:
    """Layers per pipeline stage: an even split (Megatron's default layout).

    Example:
        >>> pipeline_layer_counts(24, 4)
        [6, 6, 6, 6]
    """
    if num_layers % pp != 0:
        raise ValueError(
            f"pipeline_parallel_size={pp} does not divide the model's {num_layers} layers; "
            f"choose a divisor of {num_layers}"
        )
    return [num_layers // pp] * pp


def _layer_index(name: str) -> tuple[int, str]:
    index, rest = name[len(LAYER_PREFIX) :].split(".", 1)
    return int(index), rest


def split_pipeline(
    state: Mapping[str, torch.Tensor], layer_counts: Sequence[int], tied_embeddings: bool
) -> list[dict[str, torch.Tensor]]:
    """Per-stage state dicts with stage-local layer numbers (see the module docstring).

    Example:
        >>> import torch
        >>> full = {"embedding.word_embeddings.weight": torch.ones(1), "decoder.layers.0.x": torch.ones(1),
        ...         "decoder.layers.1.x": torch.ones(1), "decoder.final_layernorm.weight": torch.ones(1)}
        >>> [sorted(s) for s in split_pipeline(full, [1, 1], tied_embeddings=True)]
        [['decoder.layers.0.x', 'embedding.word_embeddings.weight'], ['decoder.final_layernorm.weight', 'decoder.layers.0.x', 'output_layer.weight']]
    """
    starts = [sum(layer_counts[:s]) for s in range(len(layer_counts))]
    last = len(layer_counts) - 1
    stages: list[dict[str, torch.Tensor]] = [{} for _ in layer_counts]
    for name, tensor in state.items():
        if name.startswith(LAYER_PREFIX):
            index, rest = _layer_index(name)
            stage = max(s for s, start in enumerate(starts) if start <= index)
            stages[stage][f"{LAYER_PREFIX}{index - starts[stage]}.{rest}"] = tensor
        elif name.startswith("embedding."):
            stages[0][name] = tensor
        else:
            stages[last][name] = tensor
    if tied_embeddings and last > 0:
        stages[last]["output_layer.weight"] = state["embedding.word_embeddings.weight"]
    return stages


def merge_pipeline(
    stages: Sequence[Mapping[str, torch.Tensor]], tied_embeddings: bool
) -> dict[str, torch.Tensor]:
    """The inverse of `split_pipeline`: global layer numbers; a tied output-layer copy is dropped.

    Example:
        >>> import torch
        >>> merge_pipeline([{"decoder.layers.0.x": torch.zeros(1)}, {"decoder.layers.0.x": torch.ones(1)}],
        ...                tied_embeddings=False)["decoder.layers.1.x"].tolist()
        [1.0]
    """
    merged: dict[str, torch.Tensor] = {}
    offset = 0
    for stage_index, stage in enumerate(stages):
        count = 0
        for name, tensor in stage.items():
            if name.startswith(LAYER_PREFIX):
                index, rest = _layer_index(name)
                merged[f"{LAYER_PREFIX}{index + offset}.{rest}"] = tensor
                count = max(count, index + 1)
            elif name == "output_layer.weight" and tied_embeddings and stage_index > 0:
                continue
            else:
                merged[name] = tensor
        offset += count
    return merged
