"""Next-token choice for the static-cache decoder: temperature, top-k, top-p, greedy.

`filtered_scores` turns one decoding step's logits into the scores a token is drawn from, with
the semantics of transformers' sampling warpers, applied in their order (temperature, then top-k,
then top-p), so a `SamplingParams` means the same thing whichever decoder runs it:

- temperature t > 0 divides the logits by t;
- top-k keeps every token whose score is at least the k-th largest (ties at the k-th score are
  all kept);
- top-p sorts the remaining tokens by probability and removes those whose cumulative probability,
  counted from the least likely, stays at or below 1 - top_p; the most likely token always stays.

Removed tokens get -inf. `banned` token ids (stop tokens before `min_new_tokens`) get -inf before
any of it, as a logits processor would.

Example:
    >>> import torch
    >>> logits = torch.tensor([[2.0, 1.0, 0.0, -1.0]])
    >>> filtered_scores(logits, temperature=1.0, top_k=2, top_p=1.0).isinf().tolist()
    [[False, False, True, True]]
    >>> next_tokens(logits, temperature=0.0, top_k=None, top_p=1.0).tolist()
    [0]
"""

from __future__ import annotations

import torch


def filtered_scores(
    logits: torch.Tensor,
    temperature: float,
    top_k: int | None,
    top_p: float,
    banned: torch.Tensor | None = None,
) -> torch.Tensor:
    """float32 scores [B, V] to sample from (see the module docstring); `temperature` > 0.

    Example:
        >>> filtered_scores(torch.tensor([[0.0, 2.0]]), 2.0, None, 1.0).tolist()
        [[0.0, 1.0]]
    """
    scores = logits.float()
    if banned is not None and banned.numel():
        scores = scores.index_fill(-1, banned, float("-inf"))
    if temperature != 1.0:
        scores = scores / temperature
    if top_k is not None and top_k < scores.shape[-1]:
        kth = torch.topk(scores, top_k, dim=-1).values[..., -1:]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    if top_p < 1.0:
        ascending, order = torch.sort(scores, dim=-1)
        cumulative = ascending.softmax(dim=-1).cumsum(dim=-1)
        drop = cumulative <= 1.0 - top_p
        drop[..., -1] = False  # the most likely token always stays
        scores = scores.masked_fill(drop.scatter(-1, order, drop), float("-inf"))
    return scores


def next_tokens(
    logits: torch.Tensor,
    temperature: float,
    top_k: int | None,
    top_p: float,
    banned: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One token per row of `logits` [B, V]: the argmax at temperature 0, else a draw from
    `softmax(filtered_scores(...))` (one `torch.multinomial` call, as transformers draws).

    Example:
        >>> next_tokens(torch.tensor([[0.0, 9.0, 1.0]]), 0.0, None, 1.0).tolist()
        [1]
    """
    if temperature == 0.0:
        scores = logits if banned is None else filtered_scores(logits, 1.0, None, 1.0, banned)
        return scores.argmax(dim=-1)
    probs = filtered_scores(logits, temperature, top_k, top_p, banned).softmax(dim=-1)
    return torch.multinomial(probs, num_samples=1, generator=generator).squeeze(1)
