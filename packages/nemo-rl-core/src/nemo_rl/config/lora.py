"""Configuration of LoRA adapters (`policy.lora`): train low-rank adapters instead of all weights.

With `enabled: true` the training backend freezes the model and adds, to each targeted linear
layer W, two trainable matrices A (rank x in) and B (out x rank, zero at the start), so the layer
computes `W x + (alpha / rank) B A x`. Only A and B are trained and held by the optimizer;
reference log-probs (the KL term of GRPO, DPO's reference) come from the same model with the
adapters switched off, so no second copy of the model is kept.

Example:
    >>> from nemo_rl.config.lora import LoRAConfig
    >>> cfg = LoRAConfig(enabled=True, rank=16, alpha=32)
    >>> cfg.scaling, cfg.target_modules is None
    (2.0, True)
"""

from __future__ import annotations

from typing import Annotated, Literal

from annotated_types import Ge, Lt
from pydantic import AllowInfNan, Field, Strict, model_validator

from nemo_rl.config.base import ConfigModel
from nemo_rl.config.types import NonNegativeInt, PositiveFloat, PositiveInt

DropoutProbability = Annotated[float, Strict(), AllowInfNan(False), Ge(0), Lt(1)]


class LoRAConfig(ConfigModel):
    """LoRA: train low-rank adapters (`W x + (alpha / rank) B A x`, W frozen) instead of all weights.

    Setting any other field while `enabled` is false is an error: the setting would otherwise be
    ignored without a word.

    Example:
        >>> LoRAConfig(enabled=True, target_modules=["q_proj", "v_proj"]).rank
        8
    """

    enabled: bool = Field(
        False, description="Train LoRA adapters instead of the full model (dtensor backend; "
        "needs `pip install 'nemo-rl-dtensor[lora]'`)."
    )
    rank: PositiveInt = Field(8, description="Rank r of each adapter (A is r x in, B is out x r).")
    alpha: PositiveFloat = Field(
        16.0, description="Scale of the adapter's output: the update is (alpha / rank) * B A x."
    )
    dropout: DropoutProbability = Field(
        0.0, description="Dropout on the adapter's input during training; 0 turns it off."
    )
    target_modules: list[str] | Literal["all-linear"] | None = Field(
        None,
        description="Names (or name suffixes, e.g. q_proj) of the linear layers that get adapters; "
        "'all-linear' takes every linear layer but the output head; None uses the model family's "
        "attention and MLP projections (llama, mistral, qwen2, qwen3).",
    )
    exclude_modules: list[str] = Field(
        default_factory=list,
        description="Names or name suffixes of layers that get no adapter even if targeted "
        "(e.g. model.layers.0.self_attn.q_proj).",
    )
    layers: list[NonNegativeInt] | None = Field(
        None, description="Indices of the decoder layers that get adapters; None means all."
    )
    save_merged: bool = Field(
        False,
        description="Checkpoints also hold the merged model (base + adapters) under merged/, "
        "loadable by transformers without peft.",
    )

    @property
    def scaling(self) -> float:
        """The factor `alpha / rank` applied to the adapter's output."""
        return self.alpha / self.rank

    @model_validator(mode="after")
    def _check(self) -> LoRAConfig:
        if not self.enabled:
            changed = [
                name for name in self.model_fields_set
                if name != "enabled" and getattr(self, name) != _DEFAULTS[name]
            ]
            if changed:
                raise ValueError(
                    f"policy.lora.{sorted(changed)[0]} is set but policy.lora.enabled is false, so "
                    "it would have no effect; set policy.lora.enabled=true to train LoRA adapters, "
                    "or remove the setting"
                )
        for field in ("target_modules", "exclude_modules"):
            names = getattr(self, field)
            if isinstance(names, list):
                _check_names(field, names)
        if isinstance(self.target_modules, list) and not self.target_modules:
            raise ValueError(
                "policy.lora.target_modules is an empty list, so no layer would get an adapter; "
                "name the layers (e.g. [q_proj, v_proj]), write 'all-linear', or leave it null for "
                "the model family's default"
            )
        if self.layers is not None:
            if not self.layers:
                raise ValueError(
                    "policy.lora.layers is an empty list, so no layer would get an adapter; list "
                    "decoder layer indices (e.g. [0, 1]) or leave it null for all layers"
                )
            if len(set(self.layers)) != len(self.layers):
                raise ValueError(f"policy.lora.layers {self.layers} repeats an index; list each once")
        return self


def _check_names(field: str, names: list[str]) -> None:
    for name in names:
        if not name.strip() or name != name.strip():
            raise ValueError(
                f"policy.lora.{field} holds {name!r}: a module name must be non-empty without "
                "surrounding spaces (e.g. 'q_proj')"
            )
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"policy.lora.{field} repeats {repeated}; list each name once")


_DEFAULTS = {
    name: field.get_default(call_default_factory=True)
    for name, field in LoRAConfig.model_fields.items()
}
