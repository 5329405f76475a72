"""Token log-probabilities from vocabulary-sharded logits, without gathering the vocabulary.

Each tensor-parallel rank holds the logits of a contiguous slice of the (padded) vocabulary.
`log p(y) = x_y - M - log sum_j exp(x_j - M)` needs only three all-reduces of [B, T] tensors:
the max M, the sum of exponentials, and the target's logit (non-zero on the rank that owns it).
Columns past the real vocabulary (padding rows of the output layer) are excluded. The gradient
with respect to a rank's logits, `onehot(y) - softmax(x)` restricted to its slice, needs no
communication. Computed in float32.

Example:
    >>> import torch
    >>> logits = torch.log(torch.tensor([[[0.25, 0.75]]]))
    >>> vocab_parallel_logprobs(logits, torch.tensor([[1]]), vocab_start=0, vocab_size=2).exp()
    tensor([[0.7500]])
"""

from __future__ import annotations

from typing import Any

import torch


def _all_reduce(tensor: torch.Tensor, op: str, group: Any) -> torch.Tensor:
    import torch.distributed as dist

    if group is not None and dist.get_world_size(group) > 1:
        dist.all_reduce(tensor, op=getattr(dist.ReduceOp, op), group=group)
    return tensor


class _VocabParallelLogprobs(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits, targets, vocab_start, vocab_size, group):  # type: ignore[override]
        logits = logits.float()
        local = logits.shape[-1]
        columns = torch.arange(vocab_start, vocab_start + local, device=logits.device)
        real = columns < vocab_size
        masked = logits.masked_fill(~real, float("-inf"))
        # A rank whose slice is all padding contributes -inf to the max and 0 to the sums.
        peak = _all_reduce(masked.amax(dim=-1), "MAX", group)
        exp = torch.exp(masked - peak.unsqueeze(-1))
        total = _all_reduce(exp.sum(dim=-1), "SUM", group)
        local_index = targets - vocab_start
        owned = (local_index >= 0) & (local_index < local)
        picked = logits.gather(-1, local_index.clamp(0, local - 1).unsqueeze(-1)).squeeze(-1)
        target_logit = _all_reduce(torch.where(owned, picked, torch.zeros_like(picked)), "SUM", group)
        ctx.save_for_backward(exp, total, local_index, owned)
        return target_logit - peak - torch.log(total)

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        exp, total, local_index, owned = ctx.saved_tensors
        grad = -exp / total.unsqueeze(-1)
        hit = torch.zeros_like(grad).scatter_(
            -1, local_index.clamp(0, grad.shape[-1] - 1).unsqueeze(-1), owned.unsqueeze(-1).to(grad.dtype)
        )
        return (grad + hit) * grad_out.unsqueeze(-1), None, None, None, None


def vocab_parallel_logprobs(
    local_logits: torch.Tensor,
    targets: torch.Tensor,
    vocab_start: int,
    vocab_size: int,
    group: Any = None,
) -> torch.Tensor:
    """log_softmax(full logits)[target] for each position, from this rank's vocabulary slice.

    `local_logits` [..., V_local] are the logits of vocabulary ids `vocab_start ..
    vocab_start + V_local - 1`; `targets` [...] are global ids; ids >= `vocab_size` are padding
    and never receive probability. `group` is the tensor-parallel process group (None: one rank
    holds the whole vocabulary). Differentiable in `local_logits`; returns float32.

    Example:
        >>> import torch
        >>> lp = vocab_parallel_logprobs(torch.zeros(1, 4), torch.tensor([0]), 0, vocab_size=2)
        >>> round(lp.exp().item(), 6)  # two real tokens; the 2 padding columns get nothing
        0.5
    """
    if local_logits.shape[:-1] != targets.shape:
        raise ValueError(
            f"vocab_parallel_logprobs: logits {tuple(local_logits.shape)} must be [..., V_local] "
            f"with leading dims equal to targets {tuple(targets.shape)}"
        )
    if vocab_start >= vocab_size and (group is None or _world(group) == 1):
        raise ValueError(f"vocab_start {vocab_start} lies past the vocabulary ({vocab_size} ids)")
    return _VocabParallelLogprobs.apply(local_logits, targets, vocab_start, vocab_size, group)


def _world(group: Any) -> int:
    import torch.distributed as dist

    return dist.get_world_size(group)


def shifted_token_logprobs(
    local_logits: torch.Tensor,
    input_ids: torch.Tensor,
    vocab_start: int,
    vocab_size: int,
    group: Any = None,
) -> torch.Tensor:
    """`out[b, t] = log p(input_ids[b, t] | ids < t)` for t >= 1 and 0 at t = 0, from [B, T, V_local].

    The same convention as the dtensor backend's `token_logprobs`, so both backends feed the loss
    functions the same tensor.

    Example:
        >>> import torch
        >>> shifted_token_logprobs(torch.zeros(1, 2, 4), torch.tensor([[3, 1]]), 0, 4).tolist()
        [[0.0, -1.3862943649291992]]
    """
    picked = vocab_parallel_logprobs(
        local_logits[:, :-1], input_ids[:, 1:], vocab_start, vocab_size, group
    )
    return torch.nn.functional.pad(picked, (1, 0))
