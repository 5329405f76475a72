"""The SFT loss: negative log-likelihood of the masked (response) tokens.

Example:
    >>> import torch
    >>> from nemo_rl.algorithms.sft import NLLLoss
    >>> logprobs = torch.tensor([[0.0, -1.0, -3.0]])
    >>> batch = {"token_mask": torch.tensor([[0, 1, 1]]), "sample_mask": torch.tensor([1])}
    >>> loss, metrics = NLLLoss()(logprobs, batch, global_valid_tokens=2, global_valid_seqs=1)
    >>> loss.item(), float(metrics["num_valid_tokens"])
    (2.0, 2.0)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from nemo_rl.algorithms.loss_inputs import fetch_tensor, global_normaliser


class NLLLoss:
    """Masked token NLL, L = -sum(m * logprobs) / global_valid_tokens, m = token_mask * sample_mask.

    Dividing by the global token count (whole optimizer batch) makes the micro-batch losses sum
    to the full-batch mean NLL however the batch is split. Metrics, detached 0-dim tensors that
    the backend reads once per update: `loss` and `num_valid_tokens` (this micro-batch's count,
    so that summing gives the batch's count).

    Example:
        >>> import torch
        >>> batch = {"token_mask": torch.ones(1, 2), "sample_mask": torch.ones(1)}
        >>> NLLLoss()(torch.tensor([[-1.0, -2.0]]), batch, 4, 2)[0].item()  # (1 + 2) / 4
        0.75
    """

    def __call__(
        self,
        logprobs: torch.Tensor,
        batch: Mapping[str, Any],
        global_valid_tokens: int | torch.Tensor,
        global_valid_seqs: int | torch.Tensor,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if logprobs.dim() != 2:
            raise ValueError(
                f"NLLLoss: logprobs must be [B, T] (got shape {tuple(logprobs.shape)}); pass the "
                "per-token log-probs of the micro-batch"
            )
        shape = tuple(logprobs.shape)
        dtype = torch.promote_types(logprobs.dtype, torch.float32)
        token_mask = fetch_tensor(batch, "token_mask", shape, "NLLLoss").to(dtype)
        sample_mask = fetch_tensor(batch, "sample_mask", shape[:1], "NLLLoss").to(dtype)
        mask = token_mask * sample_mask.unsqueeze(-1)
        # Padding may hold -inf; select rather than multiply so 0 * -inf never makes NaN.
        # masked_fill with a Python 0: a CPU 0-dim tensor in torch.where is copied to the device
        # with a blocking copy: one host sync per micro-batch (measured on an H200).
        lp = logprobs.to(dtype).masked_fill(mask <= 0, 0.0)
        local_tokens = mask.sum()
        # Checked only where both counts are on the host: reading a device tensor would stall.
        tokens = global_normaliser(global_valid_tokens, local_tokens, "global_valid_tokens")
        loss = -(mask * lp).sum() / tokens
        return loss, {"loss": loss.detach(), "num_valid_tokens": local_tokens}
