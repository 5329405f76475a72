"""The shape facts of an HF decoder that the HF <-> Megatron conversion needs (pure, no Megatron).

`ModelLayout.from_hf_config` reads a transformers config (or its dict) of the Llama, Qwen2 or
Qwen3 family and records what decides tensor layouts: heads and query groups (GQA), head size,
tied embeddings, attention biases (Qwen2), q/k RMSNorm (Qwen3), and the vocabulary padded so it
splits evenly over tensor-parallel ranks.

Example:
    >>> layout = ModelLayout.from_hf_config({"model_type": "qwen2", "vocab_size": 100,
    ...     "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
    ...     "num_key_value_heads": 2, "intermediate_size": 128, "tie_word_embeddings": True})
    >>> layout.head_dim, layout.qkv_bias, layout.padded_vocab_size(tp=4, divisible_by=8)
    (16, True, 128)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# model_type -> (attention q/k/v biases, q/k RMSNorm per head); Llama's `attention_bias` flag wins.
FAMILIES: dict[str, tuple[bool, bool]] = {
    "llama": (False, False),
    "qwen2": (True, False),
    "qwen3": (False, True),
}


class UnsupportedModelError(ValueError):
    """An HF model that the Megatron conversion does not handle (family or feature)."""


def _get(config: Mapping[str, Any], key: str, default: Any = None) -> Any:
    value = config.get(key, default)
    return default if value is None else value


@dataclass(frozen=True)
class ModelLayout:
    """What the weight conversion needs to know about a decoder-only model.

    Example:
        >>> ModelLayout(model_type="llama", num_layers=1, hidden_size=8, num_heads=2,
        ...             num_query_groups=1, head_dim=4, ffn_hidden_size=16, vocab_size=10,
        ...             tied_embeddings=False, qkv_bias=False, qk_norm=False).heads_per_group
        2
    """

    model_type: str
    num_layers: int
    hidden_size: int
    num_heads: int
    num_query_groups: int
    head_dim: int
    ffn_hidden_size: int
    vocab_size: int
    tied_embeddings: bool
    qkv_bias: bool
    qk_norm: bool

    @property
    def heads_per_group(self) -> int:
        """Query heads that share one key/value head."""
        return self.num_heads // self.num_query_groups

    def padded_vocab_size(self, tp: int = 1, divisible_by: int = 1) -> int:
        """The vocabulary rounded up to a multiple of `divisible_by * tp` (Megatron's embedding
        and output layer are split by rows over the tensor-parallel ranks).

        Example:
            >>> ModelLayout("llama", 1, 8, 2, 1, 4, 16, 10, False, False, False).padded_vocab_size(4)
            12
        """
        multiple = divisible_by * tp
        return -(-self.vocab_size // multiple) * multiple

    def check_tensor_parallel(self, tp: int) -> None:
        """Raise `UnsupportedModelError` unless heads, query groups and the MLP split over `tp`."""
        for what, count in (
            ("num_attention_heads", self.num_heads),
            ("num_key_value_heads", self.num_query_groups),
            ("intermediate_size", self.ffn_hidden_size),
        ):
            if count % tp != 0:
                raise UnsupportedModelError(
                    f"tensor_parallel_size={tp} does not divide the model's {what} ({count}); "
                    f"choose a tensor_parallel_size that divides {count}"
                )

    @classmethod
    def from_hf_config(cls, config: Any) -> ModelLayout:
        """Read a transformers `PretrainedConfig` (or its `to_dict()`) of a supported family."""
        cfg = config.to_dict() if hasattr(config, "to_dict") else dict(config)
        if "text_config" in cfg and "hidden_size" not in cfg:
            cfg = dict(cfg["text_config"])
        model_type = cfg.get("model_type")
        if model_type not in FAMILIES:
            raise UnsupportedModelError(
                f"the Megatron backend converts {', '.join(sorted(FAMILIES))} models; this one has "
                f"model_type {model_type!r}: train it with policy.backend=dtensor"
            )
        qkv_bias, qk_norm = FAMILIES[model_type]
        if model_type == "llama":
            qkv_bias = bool(_get(cfg, "attention_bias", False))
            if _get(cfg, "mlp_bias", False):
                raise UnsupportedModelError(
                    "this Llama config has mlp_bias=true, which the Megatron conversion does not "
                    "carry; train it with policy.backend=dtensor"
                )
        heads = int(cfg["num_attention_heads"])
        hidden = int(cfg["hidden_size"])
        groups = int(_get(cfg, "num_key_value_heads", heads))
        if heads % groups != 0:
            raise UnsupportedModelError(
                f"num_attention_heads ({heads}) is not a multiple of num_key_value_heads ({groups})"
            )
        return cls(
            model_type=model_type,
            num_layers=int(cfg["num_hidden_layers"]),
            hidden_size=hidden,
            num_heads=heads,
            num_query_groups=groups,
            head_dim=int(_get(cfg, "head_dim", hidden // heads)),
            ffn_hidden_size=int(cfg["intermediate_size"]),
            vocab_size=int(cfg["vocab_size"]),
            tied_embeddings=bool(_get(cfg, "tie_word_embeddings", False)),
            qkv_bias=qkv_bias,
            qk_norm=qk_norm,
        )
