"""Configuration of the dtensor training backend (`policy.dtensor`).

Read only when `policy.backend` is `dtensor` (the `nemo-rl-dtensor` package); setting it for
another backend is an error, since nothing would read it. Settings every backend understands
(precision, batching, activation checkpointing, the optimizer) stay in `policy` itself.

Example:
    >>> from nemo_rl.config import PolicyConfig
    >>> PolicyConfig(dtensor={"offload_reference_to_cpu": False}).dtensor.offload_reference_to_cpu
    False
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from nemo_rl.config.base import ConfigModel

# Fields that lived in `policy` before they moved to `policy.dtensor`: an old spelling is an error
# that names the new place (nothing the user wrote is dropped without a word).
MOVED_TO_DTENSOR = ("offload_reference_to_cpu",)


class DTensorConfig(ConfigModel):
    """Settings only the dtensor backend reads (see the module docstring).

    Example:
        >>> DTensorConfig().offload_reference_to_cpu
        True
    """

    offload_reference_to_cpu: bool = Field(
        True,
        description="Keep the reference weights on CPU and swap them in for reference log-probs "
        "(with LoRA there is no copy: the reference is the model with its adapters off).",
    )
    attention: Literal["auto", "varlen", "sdpa", "eager"] = Field(
        "auto",
        description="Attention implementation of training and log-prob passes. varlen: packed "
        "sequences attend only within themselves (flash-attention varlen kernel on CUDA in bf16; "
        "one SDPA call per sequence elsewhere), so packing spends no FLOPs across sequences; "
        "auto: varlen where its kernel runs, else transformers' default; sdpa or eager: "
        "transformers' own.",
    )
    compile: bool = Field(
        False,
        description="torch.compile each decoder layer for training and log-prob passes (fuses "
        "norms, rotary embeddings, activations and dtype casts into few kernels) and the "
        "log-softmax over the vocabulary (one kernel per pass instead of a chunked loop); the first "
        "steps of each new shape compile, tens of seconds. Generation on the shared module runs "
        "eagerly.",
    )


def moved_key_hint(path: str) -> str | None:
    """Where a key that moved to `policy.dtensor` lives now, or None for any other key.

    Example:
        >>> moved_key_hint("policy.offload_reference_to_cpu")
        'moved to policy.dtensor.offload_reference_to_cpu (an option of the dtensor backend)'
    """
    parent, _, name = path.rpartition(".")
    if parent.rpartition(".")[2] != "policy" or name not in MOVED_TO_DTENSOR:
        return None
    return f"moved to policy.dtensor.{name} (an option of the dtensor backend)"


def moved_field_problem(data: Any) -> str | None:
    """The error for a `policy` mapping that still spells a field moved to `policy.dtensor`.

    Example:
        >>> print(moved_field_problem({"offload_reference_to_cpu": False}))
        policy.offload_reference_to_cpu moved to policy.dtensor.offload_reference_to_cpu (an option of the dtensor backend); write policy: {dtensor: {offload_reference_to_cpu: False}}
    """
    if not isinstance(data, dict):
        return None
    for name in MOVED_TO_DTENSOR:
        if name in data:
            hint = moved_key_hint(f"policy.{name}")
            return f"policy.{name} {hint}; write policy: {{dtensor: {{{name}: {data[name]!r}}}}}"
    return None
