"""The DPO loss (Rafailov et al., 2023), with an optional SFT term on the chosen response.

A DPO micro-batch interleaves preference pairs: row 2i is the chosen response of pair i and row
2i + 1 the rejected one; a micro-batch never splits a pair. The reference policy's log-probs are
precomputed into `batch["reference_logprobs"]`.

Example:
    >>> import torch
    >>> from nemo_rl.algorithms.dpo import dpo_loss
    >>> round(dpo_loss(torch.tensor([0.0]), torch.tensor([0.0]), torch.tensor([0.0]),
    ...                torch.tensor([0.0]), beta=0.1).item(), 4)  # -log sigmoid(0) = log 2
    0.6931
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F

from nemo_rl.algorithms.loss_inputs import fetch_tensor, host_number

_DPO_HINT = "DPO batches carry reference_logprobs [B, T], computed before training"


def summed_response_logprobs(
    logprobs: torch.Tensor, token_mask: torch.Tensor, average: bool = False
) -> torch.Tensor:
    """Per-sequence log-prob of the masked tokens [B]: their sum, or their mean if `average`.

    A sequence without masked tokens gets 0. Masked-out positions may hold anything (even -inf).

    Example:
        >>> import torch
        >>> lp = torch.tensor([[0.0, -1.0, -2.0], [0.0, -4.0, float("-inf")]])
        >>> mask = torch.tensor([[0, 1, 1], [0, 1, 0]])
        >>> summed_response_logprobs(lp, mask), summed_response_logprobs(lp, mask, average=True)
        (tensor([-3., -4.]), tensor([-1.5000, -4.0000]))
    """
    if logprobs.dim() != 2 or token_mask.shape != logprobs.shape:
        raise ValueError(
            f"summed_response_logprobs: logprobs and token_mask must both be [B, T] of the same "
            f"shape (got {tuple(logprobs.shape)} and {tuple(token_mask.shape)}); pass one mask "
            "value per token"
        )
    mask = token_mask.to(logprobs.dtype)
    selected = torch.where(mask > 0, logprobs, torch.zeros((), dtype=logprobs.dtype))
    total = (mask * selected).sum(-1)
    if not average:
        return total
    count = mask.sum(-1)
    return total / torch.where(count > 0, count, torch.ones_like(count))


def dpo_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
    beta: float,
) -> torch.Tensor:
    """Mean over pairs of -log sigmoid(beta * ((pc - rc) - (pr - rr))), inputs of shape [P].

    Example:
        >>> import torch
        >>> one = torch.tensor([1.0])
        >>> round(dpo_loss(one, -one, 0 * one, 0 * one, beta=0.5).item(), 4)  # -log sigmoid(1)
        0.3133
    """
    margin = (policy_chosen_logps - ref_chosen_logps) - (policy_rejected_logps - ref_rejected_logps)
    return -F.logsigmoid(beta * margin).mean()


class DPOLoss:
    """DPO over a micro-batch of interleaved pairs, normalised per pair of the optimizer batch.

    With s(x) the per-sequence response log-prob (`summed_response_logprobs`, averaged if
    `preference_average_log_probs`), the implicit rewards of pair i are
    chosen_i = beta (s(policy, 2i) - s(ref, 2i)) and rejected_i = beta (s(policy, 2i+1) -
    s(ref, 2i+1)); its preference loss is -log sigmoid(chosen_i - rejected_i) and its SFT loss
    the NLL of the chosen response (summed, or averaged if `sft_average_log_probs`). Each term is
    summed over the micro-batch's valid pairs and divided by the global pair count
    global_valid_seqs / 2; loss = preference_loss_weight * preference + sft_loss_weight * sft.

    Batch keys: `reference_logprobs` [B, T], `token_mask` [B, T], `sample_mask` [B] (equal for
    both rows of a pair). Metrics, all additive and detached 0-dim tensors (the backend reads them
    once per update): loss, preference_loss, sft_loss, accuracy (chosen reward above rejected),
    reward_margin, chosen_reward, rejected_reward. The checks of the pair masks against each
    other and against global_valid_seqs run where the masks are on the host (CPU): on a device,
    reading them would make every micro-batch wait.

    Example:
        >>> import torch
        >>> lp = torch.tensor([[0.0, -1.0], [0.0, -1.0]])  # policy == reference: reward 0
        >>> batch = {"reference_logprobs": lp, "token_mask": torch.tensor([[0, 1], [0, 1]]),
        ...          "sample_mask": torch.ones(2)}
        >>> loss, m = DPOLoss(beta=0.1)(lp, batch, global_valid_tokens=2, global_valid_seqs=2)
        >>> round(loss.item(), 4), float(m["accuracy"])
        (0.6931, 0.0)
    """

    def __init__(
        self,
        beta: float,
        preference_average_log_probs: bool = False,
        preference_loss_weight: float = 1.0,
        sft_loss_weight: float = 0.0,
        sft_average_log_probs: bool = False,
    ) -> None:
        if beta <= 0:
            raise ValueError(f"DPOLoss: beta must be positive (got {beta}); 0.1 is the usual value")
        if preference_loss_weight < 0 or sft_loss_weight < 0:
            raise ValueError(
                f"DPOLoss: loss weights must be >= 0 (got preference_loss_weight="
                f"{preference_loss_weight}, sft_loss_weight={sft_loss_weight}); use 0 to disable "
                "a term"
            )
        self.beta = beta
        self.preference_average_log_probs = preference_average_log_probs
        self.preference_loss_weight = preference_loss_weight
        self.sft_loss_weight = sft_loss_weight
        self.sft_average_log_probs = sft_average_log_probs

    def __call__(
        self,
        logprobs: torch.Tensor,
        batch: Mapping[str, Any],
        global_valid_tokens: int | torch.Tensor,
        global_valid_seqs: int | torch.Tensor,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if logprobs.dim() != 2 or logprobs.shape[0] % 2 != 0:
            raise ValueError(
                f"DPOLoss: logprobs must be [B, T] with B even, rows 2i chosen and 2i+1 rejected "
                f"(got shape {tuple(logprobs.shape)}); keep both responses of a pair in the same "
                "micro-batch"
            )
        shape = tuple(logprobs.shape)
        dtype = torch.promote_types(logprobs.dtype, torch.float32)
        sample_mask = fetch_tensor(batch, "sample_mask", shape[:1], "DPOLoss", _DPO_HINT).to(dtype)
        reference = fetch_tensor(batch, "reference_logprobs", shape, "DPOLoss", _DPO_HINT).to(dtype)
        pair_mask = sample_mask[0::2]
        on_host = sample_mask.device.type == "cpu"
        if on_host and not torch.equal(pair_mask, sample_mask[1::2]):
            bad = int((pair_mask != sample_mask[1::2]).nonzero()[0, 0])
            raise ValueError(
                f"DPOLoss: pair {bad} has sample_mask {pair_mask[bad].item():g} on its chosen row "
                f"and {sample_mask[2 * bad + 1].item():g} on its rejected row; mask or keep both "
                "rows of a pair together"
            )
        # Rows of masked pairs may hold anything; dropping their tokens keeps every sum finite.
        token_mask = fetch_tensor(batch, "token_mask", shape, "DPOLoss", _DPO_HINT) * (
            sample_mask > 0
        ).unsqueeze(-1)
        total_seqs = float(global_valid_seqs)  # a Python number from the backend
        if total_seqs % 2 != 0:
            raise ValueError(
                f"DPOLoss: global_valid_seqs ({total_seqs:g}) must be even, two sequences per pair; "
                "count both the chosen and the rejected rows"
            )
        local_pairs = host_number(pair_mask.sum()) if on_host else None
        if local_pairs is not None and local_pairs > total_seqs / 2 + 1e-6:
            raise ValueError(
                f"DPOLoss: global_valid_seqs ({total_seqs:g}) counts fewer pairs than this "
                f"micro-batch's {local_pairs:g}; pass the count over the whole optimizer batch"
            )
        pairs = total_seqs / 2 if total_seqs > 0 else 1.0

        policy = logprobs.to(dtype)
        avg = self.preference_average_log_probs
        policy_seq = summed_response_logprobs(policy, token_mask, average=avg)
        ref_seq = summed_response_logprobs(reference, token_mask, average=avg)
        rewards = self.beta * (policy_seq - ref_seq)
        chosen, rejected = rewards[0::2], rewards[1::2]
        preference = -(F.logsigmoid(chosen - rejected) * pair_mask).sum() / pairs

        chosen_nll = -summed_response_logprobs(
            policy[0::2], token_mask[0::2], average=self.sft_average_log_probs
        )
        sft = (chosen_nll * pair_mask).sum() / pairs
        loss = self.preference_loss_weight * preference + self.sft_loss_weight * sft

        with torch.no_grad():
            metrics = {
                "loss": loss.detach(),
                "preference_loss": preference.detach(),
                "sft_loss": sft.detach(),
                "accuracy": ((chosen > rejected).to(dtype) * pair_mask).sum() / pairs,
                "reward_margin": ((chosen - rejected) * pair_mask).sum() / pairs,
                "chosen_reward": (chosen * pair_mask).sum() / pairs,
                "rejected_reward": (rejected * pair_mask).sum() / pairs,
            }
        return loss, metrics
