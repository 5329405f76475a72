"""Configuration of the generation (rollout) backend and its sampling parameters.

Example:
    >>> from nemo_rl.config import GenerationConfig
    >>> g = GenerationConfig(temperature=0.7, max_new_tokens=64)
    >>> g.sampling_params().temperature
    0.7
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from nemo_rl.config.base import ConfigModel
from nemo_rl.config.types import FiniteFloat, NonNegativeFloat, NonNegativeInt, PositiveInt, Seed


def _check_min_new_tokens(min_new: int, max_new: int, prefix: str) -> None:
    """Refuse a response floor above its cap (vLLM would fail only at the first generate call)."""
    if min_new > max_new:
        raise ValueError(
            f"{prefix}min_new_tokens ({min_new}) is more than {prefix}max_new_tokens ({max_new}): "
            f"responses end at {prefix}max_new_tokens, so none could reach the minimum; lower "
            f"{prefix}min_new_tokens or raise {prefix}max_new_tokens"
        )


class SamplingParams(ConfigModel):
    """How tokens are sampled for one `generate` call.

    `temperature=0` means greedy decoding. `top_k=None` and `top_p=1.0` disable those filters.
    `min_new_tokens` keeps stop tokens and stop strings from ending a response before that many
    tokens (0: off); it may not exceed `max_new_tokens`.

    Example:
        >>> SamplingParams(temperature=0.0).is_greedy
        True
    """

    temperature: NonNegativeFloat = 1.0
    top_p: FiniteFloat = Field(1.0, gt=0.0, le=1.0)
    top_k: PositiveInt | None = None
    max_new_tokens: PositiveInt = 512
    min_new_tokens: NonNegativeInt = 0
    stop_strings: list[str] | None = None
    stop_token_ids: list[NonNegativeInt] | None = None
    seed: Seed | None = None

    @model_validator(mode="after")
    def _check_lengths(self) -> SamplingParams:
        _check_min_new_tokens(self.min_new_tokens, self.max_new_tokens, "")
        return self

    @property
    def is_greedy(self) -> bool:
        return self.temperature == 0.0


class GenerationConfig(ConfigModel):
    """The rollout engine: which backend generates and how it samples.

    `backend` names a registered generation backend (`hf` ships with nemo-rl-dtensor, `vllm` with
    nemo-rl-vllm; `backend_options` holds the backend's own settings). `colocated` shares the accelerators with training (generation sleeps
    while the policy trains); otherwise generation gets its own `num_gpus`.

    Example:
        >>> GenerationConfig(backend="vllm", colocated=False, num_gpus=2).num_gpus
        2
    """

    backend: str = Field("hf", description="Generation backend: hf, vllm (pip install nemo-rl-vllm), or a plugin's.")
    model_name: str | None = Field(
        None, description="Model to generate with; None uses policy.model_name (filled by the trainer)."
    )
    backend_options: dict[str, Any] = Field(
        default_factory=dict,
        description="Options only the chosen generation backend understands; that backend "
        "validates them.",
    )
    temperature: NonNegativeFloat = Field(1.0, description="Sampling temperature; 0: greedy.")
    top_p: FiniteFloat = Field(
        1.0, gt=0.0, le=1.0,
        description="Nucleus sampling: keep the smallest set of tokens whose probability reaches "
        "top_p; 1: off.",
    )
    top_k: PositiveInt | None = Field(
        None, description="Sample among the k most likely tokens; None: off."
    )
    max_new_tokens: PositiveInt = Field(512, description="Longest response, in tokens.")
    min_new_tokens: NonNegativeInt = Field(
        0,
        description="Shortest response, in tokens: stop tokens and stop strings cannot end a "
        "response before it; 0: off.",
    )
    stop_strings: list[str] | None = Field(
        None, description="Stop a response when it ends with one of these strings; None: none."
    )
    stop_token_ids: list[NonNegativeInt] | None = Field(
        None,
        description="Token ids that end a response, besides the tokenizer's end-of-sequence "
        "tokens.",
    )
    batch_size: PositiveInt | None = Field(
        None, description="Prompts per generate call; None sends the whole step at once."
    )
    colocated: bool = Field(
        True,
        description="Generation shares the training GPUs (and sleeps while the policy trains); "
        "false: it gets num_gpus of its own.",
    )
    num_gpus: NonNegativeInt = Field(0, description="GPUs for generation when not colocated.")

    @model_validator(mode="after")
    def _check_lengths(self) -> GenerationConfig:
        _check_min_new_tokens(self.min_new_tokens, self.max_new_tokens, "generation.")
        return self

    def sampling_params(self, **overrides: Any) -> SamplingParams:
        """The sampling parameters of this config, with optional overrides (e.g. greedy for validation)."""
        fields = {name: getattr(self, name) for name in SamplingParams.model_fields if name != "seed"}
        fields.update(overrides)
        return SamplingParams(**fields)
