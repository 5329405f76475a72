"""HF <-> Megatron-core GPTModel weight conversion for Llama, Qwen2 and Qwen3 (pure torch).

Megatron-core's GPTModel (local layer spec) differs from an HF decoder in three layouts:

- attention projections are one `linear_qkv` whose rows are grouped per key/value head: for each
  query group, its `heads_per_group` query heads, then its key head, then its value head (so a
  tensor-parallel rank's contiguous slice holds whole groups); biases follow the same order;
- the gated MLP's gate and up projections are one `linear_fc1` with the gate rows first;
- the vocabulary of the embedding and the output layer is padded with zero rows so it splits
  evenly over tensor-parallel ranks; a tied model has no `output_layer.weight`.

Here "Megatron state dict" means the unsharded one (tensor-parallel size 1, all layers);
`nemo_rl_megatron.sharding` cuts it for tensor and pipeline parallelism.

Example:
    >>> import torch
    >>> from nemo_rl_megatron.layout import ModelLayout
    >>> layout = ModelLayout("llama", 1, 4, 2, 1, 2, 8, 6, True, False, False)
    >>> q, k, v = torch.ones(4, 4), 2 * torch.ones(2, 4), 3 * torch.ones(2, 4)
    >>> fuse_qkv(q, k, v, layout)[:, 0].tolist()  # one group: 2 query heads, then k, then v
    [1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0]
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

import torch

from nemo_rl_megatron.layout import ModelLayout

HF_LAYER = "model.layers.{}."
MC_LAYER = "decoder.layers.{}."

# Per-layer tensors that keep their values and only change names: (HF suffix, Megatron suffix).
RENAMED_LAYER_TENSORS = (
    ("input_layernorm.weight", "input_layernorm.weight"),
    ("post_attention_layernorm.weight", "pre_mlp_layernorm.weight"),
    ("self_attn.o_proj.weight", "self_attention.linear_proj.weight"),
    ("mlp.down_proj.weight", "mlp.linear_fc2.weight"),
)
QK_NORM_TENSORS = (
    ("self_attn.q_norm.weight", "self_attention.q_layernorm.weight"),
    ("self_attn.k_norm.weight", "self_attention.k_layernorm.weight"),
)


class ConversionError(KeyError):
    """A state dict that does not match the model layout (missing or unexpected tensors)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def fuse_qkv(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layout: ModelLayout
) -> torch.Tensor:
    """Interleave q/k/v rows (weights [rows, hidden] or biases [rows]) per query group.

    Example:
        >>> import torch
        >>> from nemo_rl_megatron.layout import ModelLayout
        >>> layout = ModelLayout("llama", 1, 4, 2, 2, 1, 8, 6, True, False, False)
        >>> fuse_qkv(torch.tensor([0., 1.]), torch.tensor([2., 3.]), torch.tensor([4., 5.]), layout).tolist()
        [0.0, 2.0, 4.0, 1.0, 3.0, 5.0]
    """
    groups, per, dim = layout.num_query_groups, layout.heads_per_group, layout.head_dim
    rest = q.shape[1:]
    q = q.reshape(groups, per * dim, *rest)
    k = k.reshape(groups, dim, *rest)
    v = v.reshape(groups, dim, *rest)
    return torch.cat([q, k, v], dim=1).reshape(groups * (per + 2) * dim, *rest)


def split_qkv(
    qkv: torch.Tensor, layout: ModelLayout
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The inverse of `fuse_qkv`: (q, k, v) in HF's row order.

    Example:
        >>> import torch
        >>> from nemo_rl_megatron.layout import ModelLayout
        >>> layout = ModelLayout("llama", 1, 4, 2, 2, 1, 8, 6, True, False, False)
        >>> [t.tolist() for t in split_qkv(torch.tensor([0., 2., 4., 1., 3., 5.]), layout)]
        [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]
    """
    groups, per, dim = layout.num_query_groups, layout.heads_per_group, layout.head_dim
    rest = qkv.shape[1:]
    grouped = qkv.reshape(groups, (per + 2) * dim, *rest)
    q, k, v = torch.split(grouped, [per * dim, dim, dim], dim=1)
    return (
        q.reshape(groups * per * dim, *rest),
        k.reshape(groups * dim, *rest),
        v.reshape(groups * dim, *rest),
    )


def pad_vocab(weight: torch.Tensor, padded_size: int) -> torch.Tensor:
    """Append zero rows to an embedding or output weight up to `padded_size` rows.

    Example:
        >>> import torch
        >>> pad_vocab(torch.ones(2, 1), 3).tolist()
        [[1.0], [1.0], [0.0]]
    """
    extra = padded_size - weight.shape[0]
    if extra < 0:
        raise ValueError(f"cannot pad a vocabulary of {weight.shape[0]} rows down to {padded_size}")
    if extra == 0:
        return weight
    return torch.cat([weight, weight.new_zeros(extra, *weight.shape[1:])], dim=0)


def _take(state: Mapping[str, torch.Tensor], name: str, what: str) -> torch.Tensor:
    if name not in state:
        raise ConversionError(
            f"the {what} state dict has no {name!r}; is it a checkpoint of the model whose "
            "config was given (same family, layer count and attention layout)?"
        )
    return state[name]


def hf_to_megatron(
    hf_state: Mapping[str, torch.Tensor], layout: ModelLayout, padded_vocab_size: int | None = None
) -> dict[str, torch.Tensor]:
    """The unsharded Megatron GPTModel state dict of an HF state dict.

    `padded_vocab_size` (default: the model's vocabulary) is the row count of the embedding and
    output layer; extra rows are zero. A tied model's `lm_head.weight` is not read. Tensors that
    need no reshaping are the HF tensors themselves (no copy).

    Example:
        >>> # mc = hf_to_megatron(hf_model.state_dict(), ModelLayout.from_hf_config(hf_model.config))
    """
    vocab = padded_vocab_size or layout.vocab_size
    used = set()

    def take(name: str) -> torch.Tensor:
        used.add(name)
        return _take(hf_state, name, "HF")

    out = {"embedding.word_embeddings.weight": pad_vocab(take("model.embed_tokens.weight"), vocab)}
    for i in range(layout.num_layers):
        hf, mc = HF_LAYER.format(i), MC_LAYER.format(i)
        pairs = RENAMED_LAYER_TENSORS + (QK_NORM_TENSORS if layout.qk_norm else ())
        for hf_name, mc_name in pairs:
            out[mc + mc_name] = take(hf + hf_name)
        attn = hf + "self_attn."
        out[mc + "self_attention.linear_qkv.weight"] = fuse_qkv(
            take(attn + "q_proj.weight"), take(attn + "k_proj.weight"),
            take(attn + "v_proj.weight"), layout,
        )
        if layout.qkv_bias:
            out[mc + "self_attention.linear_qkv.bias"] = fuse_qkv(
                take(attn + "q_proj.bias"), take(attn + "k_proj.bias"),
                take(attn + "v_proj.bias"), layout,
            )
        out[mc + "mlp.linear_fc1.weight"] = torch.cat(
            [take(hf + "mlp.gate_proj.weight"), take(hf + "mlp.up_proj.weight")], dim=0
        )
    out["decoder.final_layernorm.weight"] = take("model.norm.weight")
    if not layout.tied_embeddings:
        out["output_layer.weight"] = pad_vocab(take("lm_head.weight"), vocab)
    ignored = {"lm_head.weight"} if layout.tied_embeddings else set()
    unexpected = sorted(set(hf_state) - used - ignored)
    if unexpected:
        raise ConversionError(
            f"the HF state dict has tensors the {layout.model_type} conversion does not map: "
            f"{unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}; the config and the weights "
            "disagree (e.g. biases on a model whose config has none)"
        )
    return out


def iter_megatron_to_hf(
    mc_state: Mapping[str, torch.Tensor],
    layout: ModelLayout,
    with_tied_lm_head: bool = True,
    parts: Iterable[int | str] | None = None,
) -> Iterator[tuple[str, torch.Tensor]]:
    """Stream (HF name, tensor) pairs of an unsharded Megatron state dict, layer by layer.

    Padded vocabulary rows are dropped. A tied model yields `lm_head.weight` (the embedding)
    unless `with_tied_lm_head` is False (HF checkpoints leave it out). `parts` limits the output
    to "embedding", layer indices and "output" (the final norm and untied output layer);
    `mc_state` then needs only their tensors.

    Example:
        >>> # for name, tensor in iter_megatron_to_hf(mc_state, layout): engine.load(name, tensor)
    """
    wanted = list(parts) if parts is not None else ["embedding", *range(layout.num_layers), "output"]

    def take(name: str) -> torch.Tensor:
        return _take(mc_state, name, "Megatron")

    for part in wanted:
        if part == "embedding":
            embedding = take("embedding.word_embeddings.weight")[: layout.vocab_size]
            yield "model.embed_tokens.weight", embedding
            if layout.tied_embeddings and with_tied_lm_head:
                yield "lm_head.weight", embedding
        elif part == "output":
            yield "model.norm.weight", take("decoder.final_layernorm.weight")
            if not layout.tied_embeddings:
                yield "lm_head.weight", take("output_layer.weight")[: layout.vocab_size]
        else:
            yield from _layer_to_hf(take, layout, int(part))


def _layer_to_hf(take, layout: ModelLayout, i: int) -> Iterator[tuple[str, torch.Tensor]]:
    hf, mc = HF_LAYER.format(i), MC_LAYER.format(i)
    pairs = RENAMED_LAYER_TENSORS + (QK_NORM_TENSORS if layout.qk_norm else ())
    for hf_name, mc_name in pairs:
        yield hf + hf_name, take(mc + mc_name)
    attn = hf + "self_attn."
    q, k, v = split_qkv(take(mc + "self_attention.linear_qkv.weight"), layout)
    yield from ((attn + "q_proj.weight", q), (attn + "k_proj.weight", k), (attn + "v_proj.weight", v))
    if layout.qkv_bias:
        q, k, v = split_qkv(take(mc + "self_attention.linear_qkv.bias"), layout)
        yield from ((attn + "q_proj.bias", q), (attn + "k_proj.bias", k), (attn + "v_proj.bias", v))
    gate, up = torch.chunk(take(mc + "mlp.linear_fc1.weight"), 2, dim=0)
    yield hf + "mlp.gate_proj.weight", gate
    yield hf + "mlp.up_proj.weight", up


def megatron_to_hf(
    mc_state: Mapping[str, torch.Tensor], layout: ModelLayout, with_tied_lm_head: bool = True
) -> dict[str, torch.Tensor]:
    """`iter_megatron_to_hf` collected into a dict (HF names, contiguous tensors).

    Example:
        >>> # hf_state = megatron_to_hf(hf_to_megatron(hf_state, layout), layout)  # round trip
    """
    return {
        name: tensor.contiguous()
        for name, tensor in iter_megatron_to_hf(mc_state, layout, with_tied_lm_head)
    }
