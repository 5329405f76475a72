"""The log-probability of one chosen token per row of logits, in chunks, with its own backward.

`log_softmax(logits)[target]` written with autograd keeps float32 copies of the whole logits
tensor for the backward pass (the upcast, the softmax, a scattered one-hot): at 16,384 tokens and
Qwen's 151,936-token vocabulary that is 10 GB per copy, and every copy is another pass over
memory. This function computes the same value chunk by chunk in float32 and keeps only the logits
themselves and one log-sum-exp per row; its backward writes `g * (onehot - softmax)` straight
into a gradient of the logits' own dtype, again chunk by chunk.

With `compiled=True` (the dtensor backend's `policy.dtensor.compile`) both passes are instead
one `torch.compile`d kernel each over all rows: the forward reads the logits once (upcast,
log-sum-exp and the chosen logit in one reduction), the backward reads them once and writes the
gradient once, with no float32 intermediate in memory at all. Eagerly every chunk still takes
about eight passes over memory, which at Qwen's vocabulary cost a training step more time than
the attention does.

Example:
    >>> import torch
    >>> logits = torch.log(torch.tensor([[0.25, 0.75], [0.5, 0.5]]))
    >>> [round(p, 6) for p in selected_logprobs(logits, torch.tensor([1, 0])).exp().tolist()]
    [0.75, 0.5]
"""

from __future__ import annotations

import functools
from typing import Any

import torch

# Elements of one float32 chunk (512 MiB): the working set of each step, whatever the vocabulary.
CHUNK_ELEMENTS = 1 << 27

# torch.compile backend of the compiled kernels (tests on the CPU swap in "aot_eager").
COMPILE_BACKEND = "inductor"


def _chunks(rows: int, vocab: int) -> list[tuple[int, int]]:
    step = max(1, CHUNK_ELEMENTS // max(vocab, 1))
    return [(s, min(s + step, rows)) for s in range(0, rows, step)]


class _SelectedLogprobs(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        rows, vocab = logits.shape
        out = torch.empty(rows, dtype=torch.float32, device=logits.device)
        lse = torch.empty(rows, dtype=torch.float32, device=logits.device)
        for s, e in _chunks(rows, vocab):
            chunk = logits[s:e].float()
            lse[s:e] = torch.logsumexp(chunk, dim=-1)
            out[s:e] = chunk.gather(-1, targets[s:e, None]).squeeze(-1) - lse[s:e]
        ctx.save_for_backward(logits, targets, lse)
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor, None]:
        logits, targets, lse = ctx.saved_tensors
        grad = torch.empty_like(logits)
        grad_out = grad_out.float()
        for s, e in _chunks(*logits.shape):
            g = grad_out[s:e, None]
            # d/dlogits of (logit[target] - logsumexp) = onehot(target) - softmax
            chunk = torch.exp(logits[s:e].float() - lse[s:e, None]).mul_(-g)
            chunk.scatter_add_(-1, targets[s:e, None], g)
            grad[s:e] = chunk.to(grad.dtype)
        return grad, None


def _fused_forward(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(chosen log-prob, log-sum-exp) per row, in float32; one reduction kernel once compiled."""
    upcast = logits.float()
    lse = torch.logsumexp(upcast, dim=-1)
    return upcast.gather(-1, targets[:, None]).squeeze(-1) - lse, lse


def _fused_backward(
    logits: torch.Tensor, targets: torch.Tensor, lse: torch.Tensor, grad_out: torch.Tensor
) -> torch.Tensor:
    """`g * (onehot(target) - softmax)` in the logits' dtype; one element-wise kernel once
    compiled (the one-hot is a comparison with the column index, not a scattered tensor)."""
    softmax = torch.exp(logits.float() - lse[:, None])
    columns = torch.arange(logits.shape[-1], device=logits.device)
    onehot = (columns[None, :] == targets[:, None]).float()
    return ((onehot - softmax) * grad_out.float()[:, None]).to(logits.dtype)


@functools.cache
def _compiled(fn: Any, backend: str) -> Any:
    # dynamic=None: static for the first row count, symbolic after a second one, so packed
    # micro-batches of changing length compile about twice in a run, not once per length.
    return torch.compile(fn, backend=backend, dynamic=None)


class _FusedSelectedLogprobs(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        out, lse = _compiled(_fused_forward, COMPILE_BACKEND)(logits, targets)
        ctx.save_for_backward(logits, targets, lse)
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor, None]:
        logits, targets, lse = ctx.saved_tensors
        return _compiled(_fused_backward, COMPILE_BACKEND)(logits, targets, lse, grad_out), None


def selected_logprobs(
    logits: torch.Tensor, targets: torch.Tensor, compiled: bool = False
) -> torch.Tensor:
    """`log_softmax(logits.float(), -1)[i, targets[i]]` for [N, V] logits and [N] targets, as
    float32 [N]; differentiable in `logits` (see the module docstring for why it is chunked,
    and for `compiled`).

    Example:
        >>> import torch
        >>> selected_logprobs(torch.zeros(3, 4), torch.tensor([0, 1, 3])).exp().tolist()
        [0.25, 0.25, 0.25]
    """
    if logits.dim() != 2 or targets.shape != logits.shape[:1]:
        raise ValueError(
            f"selected_logprobs: logits {tuple(logits.shape)} must be [N, V] and targets "
            f"{tuple(targets.shape)} must be [N]"
        )
    if compiled:
        return _FusedSelectedLogprobs.apply(logits, targets.long())
    return _SelectedLogprobs.apply(logits, targets.long())
