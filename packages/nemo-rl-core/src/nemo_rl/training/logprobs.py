"""Per-token log-probabilities of a causal LM, from padded or packed inputs.

`padded_logprobs` and `packed_logprobs` call the model as an HF causal LM
(`model(input_ids=..., [position_ids=...,] use_cache=False).logits`); a backend
with another model interface computes its logits itself and calls `token_logprobs`.

All log-probabilities here are those of the UNSCALED model: temperature 1, no top-k/top-p
filtering, computed in float32 from the logits. `logprobs[:, t] = log p(token t | tokens < t)`;
column 0 (and the first token of every packed sequence) is 0, and padding is 0.

Example:
    >>> import torch
    >>> logits = torch.zeros(1, 3, 4)  # uniform over 4 tokens
    >>> token_logprobs(logits, torch.tensor([[0, 1, 2]])).tolist()  # doctest: +ELLIPSIS
    [[0.0, -1.386..., -1.386...]]
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from nemo_rl.data.packing import build_packed_batch, unpack_logprobs
from nemo_rl.training.chunked_logprobs import selected_logprobs


def token_logprobs(
    logits: torch.Tensor, input_ids: torch.Tensor, compiled: bool = False
) -> torch.Tensor:
    """`out[b, t] = log_softmax(logits[b, t - 1])[input_ids[b, t]]` for t >= 1; `out[:, 0] = 0`.

    Computed in float32 whatever the logits' dtype (bf16 log-softmax loses about 2 digits), in
    chunks, without float32 copies of the whole logits (`selected_logprobs`; `compiled` fuses
    each pass into one compiled kernel).

    Example:
        >>> import torch
        >>> logits = torch.log(torch.tensor([[[0.5, 0.5], [0.9, 0.1]]]))
        >>> token_logprobs(logits, torch.tensor([[1, 0]])).exp().tolist()
        [[1.0, 0.5]]
    """
    if logits.dim() != 3 or logits.shape[:2] != input_ids.shape:
        raise ValueError(
            f"token_logprobs: logits {tuple(logits.shape)} must be [B, T, V] with [B, T] equal to "
            f"input_ids {tuple(input_ids.shape)}"
        )
    batch, width, vocab = logits.shape
    # Every position predicts the next token; the last one's target (none) is a dummy 0 whose
    # value is dropped. Working on all positions keeps `logits` a view (no copy of [B, T-1, V]).
    targets = torch.nn.functional.pad(input_ids[:, 1:], (0, 1))
    picked = selected_logprobs(logits.reshape(batch * width, vocab), targets.reshape(-1), compiled)
    return torch.nn.functional.pad(picked.view(batch, width)[:, :-1], (1, 0))


def length_mask(lengths: torch.Tensor, seq_len: int) -> torch.Tensor:
    """Boolean [B, seq_len] mask, True on the first `lengths[b]` positions of row b.

    Example:
        >>> import torch
        >>> length_mask(torch.tensor([1, 3]), 3).int().tolist()
        [[1, 0, 0], [1, 1, 1]]
    """
    return torch.arange(seq_len, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)


def padded_logprobs(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    lengths: torch.Tensor,
    device: torch.device | None = None,
    compiled: bool = False,
) -> torch.Tensor:
    """Log-probs of a right-padded batch [B, T]; the forward runs only up to the longest length.

    `device` is where the model runs (default: `input_ids`' device). Host inputs are moved there
    without waiting for the GPU's queued work, and host `lengths` are read without a sync: keep
    them on the CPU in a loop over micro-batches. `compiled`: see `token_logprobs`.

    Example:
        >>> import torch
        >>> class Uniform(torch.nn.Module):  # any module called like an HF causal LM
        ...     def forward(self, input_ids, attention_mask=None, position_ids=None, use_cache=False):
        ...         return type("Out", (), {"logits": torch.zeros(*input_ids.shape, 4)})()
        >>> padded_logprobs(Uniform(), torch.tensor([[1, 2, 0]]), torch.tensor([2])).exp().tolist()
        [[1.0, 0.25, 1.0]]
    """
    device = device or input_ids.device
    seq_len = input_ids.shape[1]
    longest = int(lengths.max()) if lengths.numel() else 0
    if longest < 1:
        return torch.zeros(input_ids.shape, dtype=torch.float32, device=device)
    ids = input_ids[:, :longest].to(device, non_blocking=True)
    mask = length_mask(lengths, longest).to(device, non_blocking=True)
    # No attention mask: padding comes after every real token, so causal attention alone gives
    # the real tokens exactly what a padding mask would, and SDPA can take its fused causal
    # kernel instead of a masked one.
    logits = model(input_ids=ids, use_cache=False).logits
    out = token_logprobs(logits, ids, compiled) * mask
    return torch.nn.functional.pad(out, (0, seq_len - longest))


def packed_logprobs(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    lengths: Sequence[int] | torch.Tensor,
    bin_indices: Sequence[int],
    device: torch.device | None = None,
    sequence_bounds: bool = False,
    compiled: bool = False,
) -> torch.Tensor:
    """Log-probs of the samples `bin_indices` of a right-padded batch, run as one packed row.

    The sequences are concatenated without padding; `position_ids` restart at 0 for each, which
    transformers turns into a block-diagonal causal mask (no attention across sequences). With
    `sequence_bounds`, the model also gets the sequences' bounds as the varlen keywords
    (`cu_seq_lens_q/k`, `max_length_q/k`) for an attention that reads them instead of a mask.
    Returns [len(bin_indices), T] in the padded layout, rows in `bin_indices` order. `device` is
    where the model runs (default: `input_ids`' device): the row is built where `input_ids` are
    (on the host, no GPU sync) and then moved there without waiting. `compiled`: see
    `token_logprobs`.

    Example:
        >>> import torch
        >>> class Uniform(torch.nn.Module):
        ...     def forward(self, input_ids, attention_mask=None, position_ids=None, use_cache=False):
        ...         return type("Out", (), {"logits": torch.zeros(*input_ids.shape, 4)})()
        >>> ids, lengths = torch.tensor([[1, 2], [3, 0], [1, 1]]), torch.tensor([2, 1, 2])
        >>> packed_logprobs(Uniform(), ids, lengths, [0, 2]).exp().tolist()  # samples 0 and 2
        [[1.0, 0.25], [1.0, 0.25]]
    """
    device = device or input_ids.device
    packed = build_packed_batch(input_ids, lengths, bin_indices)
    ids = packed["input_ids"].to(device, non_blocking=True)
    positions = packed["position_ids"].to(device, non_blocking=True)
    bounds: dict[str, object] = {}
    if sequence_bounds:
        cu = packed["cu_seqlens"].to(device, non_blocking=True)
        longest = int(packed["max_seqlen"])
        bounds = {"cu_seq_lens_q": cu, "cu_seq_lens_k": cu, "max_length_q": longest,
                  "max_length_k": longest}
    logits = model(input_ids=ids, position_ids=positions, use_cache=False, **bounds).logits
    # A sequence's first token is not predicted from the previous sequence's last one.
    row = token_logprobs(logits, ids, compiled) * (positions != 0)
    return unpack_logprobs(row, lengths, bin_indices, input_ids.shape[1])
