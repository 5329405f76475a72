"""Off-policy importance weights of the GRPO loss: the correction for the gap between the policy
that computed `prev_logprobs` and the generation backend that sampled the tokens.

The log-weight of a token is prev_logprobs - generation_logprobs. Per token (GRPO), each token gets
w = exp(log-weight). Per sequence (GSPO, `sequence_level_importance_ratios`), every token of a
sequence gets the one weight w_i = exp(sum of its tokens' log-weights): the probability ratio of
the whole sampled response, as NeMo RL applies it. Truncation then acts on those weights, so for
GSPO it keeps, clamps or drops whole sequences.

Example:
    >>> import torch
    >>> from nemo_rl.algorithms.grpo.importance import importance_weights
    >>> log_w = torch.log(torch.tensor([[2.0, 3.0]]))
    >>> mask = torch.ones(1, 2)
    >>> importance_weights(log_w, mask, sequence_level=False)[0]
    tensor([[2., 3.]])
    >>> importance_weights(log_w, mask, sequence_level=True)[0]  # 2 x 3 on every token
    tensor([[6., 6.]])
    >>> importance_weights(log_w, mask, sequence_level=True, kind="tis", high=4.0)[0]
    tensor([[4., 4.]])
"""

from __future__ import annotations

from typing import Literal

import torch

TruncationType = Literal["tis", "icepop", "seq-mask-tis"]


def _masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    den = mask.sum(-1, keepdim=True)
    return (mask * x).sum(-1, keepdim=True) / torch.where(den > 0, den, 1.0)


def importance_weights(
    log_weights: torch.Tensor,
    mask: torch.Tensor,
    *,
    sequence_level: bool,
    kind: TruncationType | None = None,
    low: float | None = None,
    high: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Detached importance weights [B, T] and the bool [B, T] of tokens whose weight was truncated.

    `log_weights` [B, T] holds prev - generation log-probs (finite; padding may hold anything the
    mask zeroes). `kind` truncates to [low, high] (low defaults to 0): "tis" clamps the weight,
    "icepop" sets it to 0 outside the range, "seq-mask-tis" keeps the per-token weights untouched
    but zeroes every token of a sequence whose geometric-mean weight exp(mean log-weight) falls
    outside (per-token weights only: it has no meaning for a sequence-level weight). With
    `sequence_level`, "tis" and "icepop" act on the sequence's one weight.

    A weight that overflows to inf without truncation becomes 0: it carries no usable signal, and
    dropping the token (or sequence) beats an inf loss.
    """
    log_weights = torch.where(mask > 0, log_weights, torch.zeros_like(log_weights)).detach()
    if sequence_level:
        if kind == "seq-mask-tis":
            raise ValueError(
                "seq-mask-tis masks sequences by their per-token weights; with "
                "sequence_level_importance_ratios each sequence already has one weight: use "
                "'tis' or 'icepop' instead"
            )
        raw = torch.exp(log_weights.sum(-1, keepdim=True))  # [B, 1]
    else:
        raw = torch.exp(log_weights)
    if kind is None:
        weights = torch.nan_to_num(raw, nan=0.0, posinf=0.0)
        return weights.expand_as(log_weights), torch.zeros_like(log_weights, dtype=torch.bool)
    if high is None:
        raise ValueError(f"importance_weights: truncation {kind!r} needs an upper bound `high`")
    low = 0.0 if low is None else low
    if kind == "seq-mask-tis":
        geo_mean = torch.exp(_masked_mean(log_weights, mask))
        outside = ((geo_mean < low) | (geo_mean > high)).expand_as(raw)
        return torch.where(outside, torch.zeros_like(raw), raw), outside
    outside = (raw < low) | (raw > high)
    if kind == "tis":
        weights = raw.clamp(min=low, max=high)
    elif kind == "icepop":
        weights = torch.where(outside, torch.zeros_like(raw), raw)
    else:
        raise ValueError(
            f"truncated_importance_sampling_type must be 'tis', 'icepop' or 'seq-mask-tis' "
            f"(got {kind!r})"
        )
    return weights.expand_as(log_weights), outside.expand_as(log_weights)
