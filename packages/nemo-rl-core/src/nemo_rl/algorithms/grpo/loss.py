"""The GRPO policy loss: PPO-style clipped policy gradient with its DAPO, Dr.GRPO, GSPO and CISPO
variants, an optional KL penalty to the reference policy, and off-policy importance correction.

Shapes: `logprobs` and every per-token batch tensor are [B, T] and aligned, so column t holds
log p(token t | tokens < t); `token_mask` selects the response tokens and `sample_mask` [B] the
sequences to train on. Positions outside the mask may hold anything (padding, -inf).

Example:
    >>> import torch
    >>> from nemo_rl.algorithms.grpo import ClippedPGLoss, GRPOLossConfig
    >>> loss_fn = ClippedPGLoss(GRPOLossConfig(kl_penalty=0.0))
    >>> zeros = torch.zeros(1, 3)
    >>> batch = {"prev_logprobs": zeros, "generation_logprobs": zeros,
    ...          "advantages": torch.tensor([2.0]), "token_mask": torch.tensor([[0, 1, 1]]),
    ...          "sample_mask": torch.tensor([1.0])}
    >>> loss, metrics = loss_fn(zeros, batch, global_valid_tokens=2, global_valid_seqs=1)
    >>> loss.item()  # ratio 1 on both tokens: -A * 1, averaged over 2 tokens
    -2.0
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import torch

from nemo_rl.algorithms.grpo.config import GRPOLossConfig
from nemo_rl.algorithms.loss_inputs import fetch_tensor, global_normaliser

KLType = Literal["k1", "k2", "k3"]


def kl_estimate(
    logprobs: torch.Tensor,
    reference_logprobs: torch.Tensor,
    kl_type: KLType = "k3",
    input_clamp: float | None = None,
    output_clamp: float | None = None,
) -> torch.Tensor:
    """Per-token estimate of KL(policy || reference) from the sampled tokens' log-probs.

    With d = reference_logprobs - logprobs (clamped to +-input_clamp): k1 = -d, k2 = d^2 / 2,
    k3 = exp(d) - 1 - d (Schulman's unbiased, non-negative estimator); the result is clamped to
    +-output_clamp.

    Example:
        >>> import torch
        >>> kl_estimate(torch.tensor([0.0]), torch.tensor([-2.0]), "k2")
        tensor([2.])
    """
    d = reference_logprobs - logprobs
    if input_clamp is not None:
        d = d.clamp(min=-input_clamp, max=input_clamp)
    if kl_type == "k1":
        kl = -d
    elif kl_type == "k2":
        kl = 0.5 * d * d
    elif kl_type == "k3":
        kl = torch.expm1(d) - d  # expm1 keeps precision when the policies are close (d ~ 0)
    else:
        raise ValueError(f"kl_type must be 'k1', 'k2' or 'k3' (got {kl_type!r})")
    if output_clamp is not None:
        kl = kl.clamp(min=-output_clamp, max=output_clamp)
    return kl


class ClippedPGLoss:
    """GRPO's clipped policy-gradient loss over one micro-batch, normalised by global counts.

    Per token, with m = token_mask * sample_mask and A the advantage:
    r = exp(logprobs - prev_logprobs) (with `sequence_level_importance_ratios`, GSPO: one ratio
    per sequence, exp of the masked mean log-ratio); pg = max(-A r, -A clamp(r, 1 - ratio_clip_min,
    1 + ratio_clip_max)); dual clip: where A < 0, pg = min(pg, -c A); CISPO:
    pg = -A detach(clamp(r)) logprobs. The loss per token is l = w pg + kl_penalty k, with w the
    detached importance weight exp(prev_logprobs - generation_logprobs) when
    `use_importance_sampling_correction` (truncated as "tis", "icepop" or "seq-mask-tis"), else 1,
    and k the `kl_estimate` to `reference_logprobs`. Token-level: L = sum(m l) / global_valid_tokens;
    sequence-level: L = sum_i sample_mask_i mean_t(l_i) / global_valid_seqs.

    Batch keys: `prev_logprobs` [B, T], `advantages` [B, T] or [B], `token_mask` [B, T],
    `sample_mask` [B]; `generation_logprobs` [B, T] when the correction is on (else used for the
    mismatch metrics if present); `reference_logprobs` [B, T] when kl_penalty > 0.

    Example:
        >>> from nemo_rl.algorithms.grpo import GRPOLossConfig
        >>> ClippedPGLoss(GRPOLossConfig(ratio_clip_max=0.28)).config.ratio_clip_max
        0.28
    """

    def __init__(self, config: GRPOLossConfig | None = None) -> None:
        config = GRPOLossConfig() if config is None else config
        if config.use_cispo and config.ratio_clip_c is not None:
            raise ValueError(
                "loss.use_cispo and loss.ratio_clip_c are both set: CISPO already bounds each "
                "token's weight, and the dual clip would overwrite its surrogate; set "
                "loss.ratio_clip_c to null or loss.use_cispo to false"
            )
        if config.use_cispo and config.sequence_level_importance_ratios:
            raise ValueError(
                "loss.use_cispo and loss.sequence_level_importance_ratios are both set: CISPO "
                "clips per-token weights; choose one of CISPO or GSPO"
            )
        low = config.truncated_importance_sampling_ratio_min
        high = config.truncated_importance_sampling_ratio
        if low is not None and high is not None and low > high:
            raise ValueError(
                f"loss.truncated_importance_sampling_ratio_min ({low}) is above "
                f"loss.truncated_importance_sampling_ratio ({high}); the kept range would be "
                "empty. Use for example 0.5 and 2.0"
            )
        self.config = config

    def _importance_weights(
        self, log_weights: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Detached weights w [B, T] and the bool tensor of tokens whose weight was truncated."""
        cfg = self.config
        raw = torch.exp(log_weights).detach()
        kind = cfg.truncated_importance_sampling_type
        if kind is None:
            # An overflowed weight carries no usable signal; drop the token instead of poisoning
            # the whole loss with inf.
            return torch.nan_to_num(raw, nan=0.0, posinf=0.0), torch.zeros_like(
                raw, dtype=torch.bool
            )
        low = cfg.truncated_importance_sampling_ratio_min or 0.0
        high = float(cfg.truncated_importance_sampling_ratio)  # the config requires it with a type
        if kind == "seq-mask-tis":
            num = (mask * log_weights).sum(-1)
            den = mask.sum(-1)
            seq_weight = torch.exp(num / torch.where(den > 0, den, 1.0)).detach()
            outside = ((seq_weight < low) | (seq_weight > high)).unsqueeze(-1).expand_as(raw)
        else:
            outside = (raw < low) | (raw > high)
        if kind == "tis":
            return raw.clamp(min=low, max=high), outside
        return torch.where(outside, torch.zeros_like(raw), raw), outside

    def _policy_gradient(
        self, lp: torch.Tensor, prev: torch.Tensor, adv: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-token surrogate pg [B, T] (clipped, dual-clipped or CISPO) and the ratio used."""
        cfg = self.config
        log_ratio = lp - prev
        if cfg.sequence_level_importance_ratios:  # GSPO: one ratio per sequence
            den = mask.sum(-1, keepdim=True)
            seq_log_ratio = (mask * log_ratio).sum(-1, keepdim=True) / torch.where(
                den > 0, den, 1.0
            )
            ratio = torch.exp(seq_log_ratio).expand_as(lp)
        else:
            ratio = torch.exp(log_ratio)
        clipped_ratio = ratio.clamp(min=1.0 - cfg.ratio_clip_min, max=1.0 + cfg.ratio_clip_max)
        if cfg.use_cispo:
            pg = -adv * clipped_ratio.detach() * lp
        else:
            pg = torch.maximum(-adv * ratio, -adv * clipped_ratio)
        if cfg.ratio_clip_c is not None:
            pg = torch.where(adv < 0, torch.minimum(pg, -cfg.ratio_clip_c * adv), pg)
        return pg, ratio

    def __call__(
        self,
        logprobs: torch.Tensor,
        batch: Mapping[str, Any],
        global_valid_tokens: int | torch.Tensor,
        global_valid_seqs: int | torch.Tensor,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        cfg = self.config
        if logprobs.dim() != 2:
            raise ValueError(
                f"ClippedPGLoss: logprobs must be [B, T] (got shape {tuple(logprobs.shape)}); "
                "pass the per-token log-probs of the micro-batch"
            )
        shape = tuple(logprobs.shape)
        compute_dtype = torch.promote_types(logprobs.dtype, torch.float32)
        token_mask = fetch_tensor(
            batch, "token_mask", shape, "ClippedPGLoss", "1 on response tokens"
        ).to(compute_dtype)
        sample_mask = fetch_tensor(
            batch, "sample_mask", shape[:1], "ClippedPGLoss", "1 on sequences to train on"
        )
        mask = token_mask * sample_mask.to(compute_dtype).unsqueeze(-1)
        valid = mask > 0

        def per_token(key: str, why: str) -> torch.Tensor:
            # Zero the padding first: where() after exp(-inf - x) would still send NaN gradients.
            value = fetch_tensor(batch, key, shape, "ClippedPGLoss", why).to(compute_dtype)
            return torch.where(valid, value, torch.zeros_like(value))

        lp = torch.where(valid, logprobs.to(compute_dtype), torch.zeros((), dtype=compute_dtype))
        prev = per_token("prev_logprobs", "log-probs of the policy that the ratio starts from")
        raw_adv = batch.get("advantages")
        if isinstance(raw_adv, torch.Tensor) and raw_adv.dim() == 1:  # one value per sequence
            adv = fetch_tensor(
                batch, "advantages", shape[:1], "ClippedPGLoss", "one advantage per sequence"
            )
            adv = adv.to(compute_dtype).unsqueeze(-1).expand(shape)
        else:
            adv = per_token("advantages", "[B, T] per token or [B] per sequence")

        pg, ratio = self._policy_gradient(lp, prev, adv, mask)

        metrics_extra: dict[str, torch.Tensor] = {}
        weights = torch.ones_like(pg)
        if cfg.use_importance_sampling_correction or "generation_logprobs" in batch:
            gen = per_token("generation_logprobs", "log-probs reported by the generation backend")
            metrics_extra["generation_logprob_error"] = (prev - gen).abs()
            metrics_extra["importance_weight_mean"] = torch.exp(prev - gen)
            if cfg.use_importance_sampling_correction:
                weights, truncated = self._importance_weights(prev - gen, mask)
                if cfg.truncated_importance_sampling_type is not None:
                    metrics_extra["importance_weight_truncated_fraction"] = truncated.to(pg.dtype)

        kl = None
        if cfg.kl_penalty > 0 or "reference_logprobs" in batch:
            ref = per_token("reference_logprobs", "log-probs of the reference policy for the KL")
            kl = kl_estimate(lp, ref, cfg.kl_type, cfg.kl_input_clamp, cfg.kl_output_clamp)
        pg_term = torch.where(valid, weights * pg, torch.zeros_like(pg))
        kl_term = (
            torch.where(valid, cfg.kl_penalty * kl, torch.zeros_like(kl))
            if kl is not None and cfg.kl_penalty > 0
            else torch.zeros_like(pg)
        )

        local_tokens = mask.sum().item()
        tokens = global_normaliser(global_valid_tokens, local_tokens, "global_valid_tokens")

        if cfg.token_level_loss:

            def reduce(x: torch.Tensor) -> torch.Tensor:
                return (mask * x).sum() / tokens

        else:
            seqs = global_normaliser(
                global_valid_seqs, sample_mask.to(compute_dtype).sum().item(), "global_valid_seqs"
            )

            def reduce(x: torch.Tensor) -> torch.Tensor:
                den = token_mask.sum(-1)
                seq_mean = (token_mask * x).sum(-1) / torch.where(den > 0, den, 1.0)
                return (seq_mean * sample_mask.to(compute_dtype)).sum() / seqs

        pg_loss = reduce(pg_term)
        kl_loss = reduce(kl_term)
        loss = pg_loss + kl_loss

        with torch.no_grad():

            def token_mean(x: torch.Tensor) -> float:
                return (torch.where(valid, x, torch.zeros_like(x)) * mask).sum().item() / tokens

            outside_clip = (ratio < 1.0 - cfg.ratio_clip_min) | (ratio > 1.0 + cfg.ratio_clip_max)
            metrics = {
                "loss": loss.item(),
                "pg_loss": pg_loss.item(),
                "kl_loss": kl_loss.item(),
                "clip_fraction": token_mean(outside_clip.to(pg.dtype)),
                "ratio_mean": token_mean(ratio),
            }
            if kl is not None:
                metrics["kl"] = token_mean(kl)
            for name, value in metrics_extra.items():
                metrics[name] = token_mean(value)
        return loss, metrics
