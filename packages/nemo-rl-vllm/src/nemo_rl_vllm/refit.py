"""Shaping the weight stream of a refit: tied embeddings, layer-aligned chunks, a deadline.

vLLM reloads checkpoint-format (HF-named) weights layer by layer and processes a layer once all of
its tensors arrived; a reload call that carries only part of a fused layer (q/k/v of one decoder
layer, gate/up of one MLP) would process it half-filled. So chunks sent as separate reload calls
never split a decoder layer (`layer_key`), and hold at most `budget` bytes unless one layer alone
is larger. Nothing here imports vLLM.

Example:
    >>> import torch
    >>> w = [("model.layers.0.q.weight", torch.zeros(4)), ("model.layers.0.k.weight", torch.zeros(4)),
    ...      ("model.layers.1.q.weight", torch.zeros(4))]
    >>> [[n for n, _ in c] for c in layer_aligned_chunks(w, budget=20)]
    [['model.layers.0.q.weight', 'model.layers.0.k.weight'], ['model.layers.1.q.weight']]
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

import torch

R = TypeVar("R")
_LAYER = re.compile(r"^(.*?\.layers\.\d+)\.")
EMBEDDING = "model.embed_tokens.weight"
LM_HEAD = "lm_head.weight"


class RefitError(RuntimeError):
    """A weight refit that failed or did not finish within `refit_timeout_s`."""


def layer_key(name: str) -> str:
    """The unit a chunk must not split: the decoder layer of `name`, else its module.

    Example:
        >>> layer_key("model.layers.12.self_attn.q_proj.weight"), layer_key("model.norm.weight")
        ('model.layers.12', 'model.norm')
    """
    match = _LAYER.match(name)
    return match.group(1) if match else name.rpartition(".")[0]


def with_tied_lm_head(
    weights: Iterable[tuple[str, torch.Tensor]], tied: bool
) -> Iterator[tuple[str, torch.Tensor]]:
    """The stream, with `lm_head.weight` sent right after the embedding when the model ties them
    and the stream lacks it (vLLM's reload otherwise keeps the old output projection and gives
    wrong outputs without any error).

    Example:
        >>> e = torch.ones(2)
        >>> [n for n, _ in with_tied_lm_head([(EMBEDDING, e), ("model.norm.weight", e)], tied=True)]
        ['model.embed_tokens.weight', 'lm_head.weight', 'model.norm.weight']
    """
    embedding = None
    sent_head = False
    for name, tensor in weights:
        if name == LM_HEAD:
            if sent_head:
                continue  # already sent as the embedding's copy
            sent_head = True
        yield name, tensor
        if tied and name == EMBEDDING and not sent_head:
            embedding = tensor
            sent_head = True
            yield LM_HEAD, embedding


def layer_aligned_chunks(
    weights: Iterable[tuple[str, torch.Tensor]], budget: int
) -> Iterator[list[tuple[str, torch.Tensor]]]:
    """Lists of (name, tensor) of at most `budget` bytes that never split a `layer_key` group
    (a single group larger than the budget is one chunk).

    Example:
        >>> len(list(layer_aligned_chunks([("a.w", torch.zeros(100))], budget=1)))
        1
    """
    chunk: list[tuple[str, torch.Tensor]] = []
    group: list[tuple[str, torch.Tensor]] = []
    used = group_bytes = 0
    key = None
    for name, tensor in weights:
        k = layer_key(name)
        if k != key and group:
            if chunk and used + group_bytes > budget:
                yield chunk
                chunk, used = [], 0
            chunk += group
            used += group_bytes
            group, group_bytes = [], 0
        key = k
        group.append((name, tensor))
        group_bytes += tensor.numel() * tensor.element_size()
    if chunk and used + group_bytes > budget:
        yield chunk
        chunk = []
    chunk += group
    if chunk:
        yield chunk


def call_with_deadline(fn: Callable[[], R], timeout_s: float, what: str) -> R:
    """`fn()`, or `RefitError` when it raises or runs past `timeout_s` seconds.

    The call runs in a daemon thread: a stalled engine cannot be interrupted from Python, but the
    caller gets a clear error instead of hanging (the engine is then in an unknown state).

    Example:
        >>> call_with_deadline(lambda: 3, 1.0, "a sum")
        3
    """
    result: list[R] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(fn())
        except BaseException as err:  # noqa: BLE001 - re-raised in the caller's thread
            error.append(err)

    thread = threading.Thread(target=target, name="nemo-rl-vllm-refit", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise RefitError(
            f"{what} did not finish within {timeout_s:g} s (generation.backend_options."
            "refit_timeout_s); the vLLM engine may be stuck: check its log above and restart the run"
        )
    if error:
        raise RefitError(f"{what} failed: {error[0]!r}") from error[0]
    return result[0]
