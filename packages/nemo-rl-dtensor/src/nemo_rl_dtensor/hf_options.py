"""`generation.backend_options` of the hf backend, checked when the backend is set up.

- `dtype` (float32 | bfloat16): weights of a model the backend loads itself, and the decoding
  dtype of a shared float32 training module on the GPU. Default: bfloat16 on a GPU, float32 on
  the CPU.
- `decoder` (auto | generate): `auto` decodes with the static-cache decoder where the model
  supports it (Llama and Qwen families with SDPA attention) and with transformers' `generate`
  otherwise; `generate` always uses `generate`. Both sample the same tokens for the same seed;
  `generate` also applies what the model's own generation config adds (a repetition penalty, for
  instance), which the static decoder does not: it samples with `SamplingParams` only.
- `cuda_graphs` (bool, default true): capture the static decoder's step as a CUDA graph.
- `decode_copy` (bool, default true): decode a shared float32 training module on a bf16 copy of
  its weights made for each call, instead of on the float32 weights under autocast.

Example:
    >>> parse_backend_options({"decoder": "generate"}).decoder
    'generate'
    >>> parse_backend_options({"cuda_graph": True})
    Traceback (most recent call last):
    ...
    ValueError: generation.backend_options.cuda_graph: not an option of the hf backend; it accepts cuda_graphs, decode_copy, decoder, dtype
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError


class HFBackendOptions(BaseModel):
    """The hf backend's options (see the module docstring).

    Example:
        >>> HFBackendOptions().cuda_graphs
        True
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    dtype: Literal["float32", "bfloat16"] | None = None
    decoder: Literal["auto", "generate"] = "auto"
    cuda_graphs: bool = True
    decode_copy: bool = True


def parse_backend_options(options: dict[str, Any]) -> HFBackendOptions:
    """`HFBackendOptions` from `generation.backend_options`, or one ValueError naming the option,
    what is wrong with it and what is accepted.

    Example:
        >>> parse_backend_options({}).decoder
        'auto'
    """
    accepted = ", ".join(sorted(HFBackendOptions.model_fields))
    try:
        return HFBackendOptions(**options)
    except ValidationError as err:
        first = err.errors()[0]
        name = ".".join(str(part) for part in first["loc"])
        if first["type"] == "extra_forbidden":
            raise ValueError(
                f"generation.backend_options.{name}: not an option of the hf backend; it "
                f"accepts {accepted}"
            ) from None
        raise ValueError(
            f"generation.backend_options.{name} = {first.get('input')!r}: {first['msg']}"
        ) from None
