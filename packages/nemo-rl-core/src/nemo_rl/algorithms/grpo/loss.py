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
from typing import Any, ClassVar, Literal

import torch

from nemo_rl.algorithms.grpo.config import GRPOLossConfig
from nemo_rl.algorithms.grpo.importance import importance_weights
from nemo_rl.algorithms.loss_inputs import fetch_tensor, global_normaliser

KLType = Literal["k1", "k2", "k3"]


def kl_estimate(
    logprobs: torch.Tensor,
    reference_logprobs: torch.Tensor,
    kl_type: KLType = "k3",
    input_clamp: float | None = None,
    output_clamp: float | None = None,
    sampling_term: bool = False,
) -> torch.Tensor:
    """Per-token estimate of KL(policy || reference) from the sampled tokens' log-probs.

    With d = reference_logprobs - logprobs (clamped to +-input_clamp): k1 = -d, k2 = d^2 / 2,
    k3 = exp(d) - 1 - d (Schulman's unbiased, non-negative estimator); the result is clamped to
    +-output_clamp.

    `sampling_term` makes the gradient that of the expectation: the tokens were sampled from the
    policy itself, so grad E_pi[k] = E_pi[grad k + k grad log pi], and the second (score-function)
    term is missing from grad k alone. The estimate is multiplied by s = exp(logprobs -
    detach(logprobs)), which is 1 but has gradient 1 with respect to logprobs; each token's
    gradient becomes dk/dlogprobs + k. A token whose d the input clamp changed gets no gradient
    at all (s is detached there, as the clamp already cuts the pathwise term), and the output
    clamp, applied after the product, stops both terms too. The value does not change.

    Example:
        >>> import torch
        >>> kl_estimate(torch.tensor([0.0]), torch.tensor([-2.0]), "k2")
        tensor([2.])
        >>> lp = torch.tensor([0.0], requires_grad=True)
        >>> kl_estimate(lp, torch.tensor([-2.0]), "k2", sampling_term=True).backward()
        >>> lp.grad  # dk2/dlogp = -d = 2, plus k2 = 2
        tensor([4.])
    """
    d = reference_logprobs - logprobs
    score = torch.exp(logprobs - logprobs.detach()) if sampling_term else None
    if input_clamp is not None:
        clamped = d.clamp(min=-input_clamp, max=input_clamp)
        if score is not None:
            score = torch.where(d == clamped, score, score.detach())
        d = clamped
    if kl_type == "k1":
        kl = -d
    elif kl_type == "k2":
        kl = 0.5 * d * d
    elif kl_type == "k3":
        kl = torch.expm1(d) - d  # expm1 keeps precision when the policies are close (d ~ 0)
    else:
        raise ValueError(f"kl_type must be 'k1', 'k2' or 'k3' (got {kl_type!r})")
    if score is not None:
        kl = score * kl
    if output_clamp is not None:
        kl = kl.clamp(min=-output_clamp, max=output_clamp)
    return kl


class ClippedPGLoss:
    """GRPO's clipped policy-gradient loss over one micro-batch, normalised by global counts.

    Per token, with m = token_mask * sample_mask and A the advantage:
    r = exp(logprobs - prev_logprobs) (with `sequence_level_importance_ratios`, GSPO: one ratio
    per sequence, exp of the masked mean log-ratio); pg = max(-A r, -A clamp(r, 1 - ratio_clip_min,
    1 + ratio_clip_max)); dual clip: where A < 0, pg = min(pg, -c A); CISPO:
    pg = -A detach(clamp(r)) logprobs. The loss per token is l = w pg + kl_penalty k, where:

    - w is 1, or with `use_importance_sampling_correction` the detached weight of
      `importance_weights`: exp(prev_logprobs - generation_logprobs) per token, or for GSPO one
      weight per sequence, exp(sum over its tokens of prev_logprobs - generation_logprobs); the
      truncation ("tis", "icepop"; "seq-mask-tis" per token only) acts on that weight;
    - k is `kl_estimate(logprobs, reference_logprobs, sampling_term=True)`: its gradient holds the
      score-function term k d(logprobs) besides dk, because the tokens were sampled from the
      policy being trained (see `kl_estimate`; NeMo RL's loss does the same).

    Token-level: L = sum(m l) / global_valid_tokens; sequence-level:
    L = sum_i sample_mask_i mean_t(l_i) / global_valid_seqs.

    Batch keys: `prev_logprobs` [B, T], `advantages` [B, T] or [B], `token_mask` [B, T],
    `sample_mask` [B]; `generation_logprobs` [B, T] when the correction is on (else used for the
    mismatch metrics if present); `reference_logprobs` [B, T] when kl_penalty > 0.

    Metrics are detached 0-dim tensors, each this micro-batch's share of the optimizer batch's
    value (they sum over micro-batches): loss, pg_loss, kl_loss, clip_fraction, ratio_mean, kl,
    generation_logprob_error, importance_weight_mean (and _truncated_fraction). The backend reads
    them to the host once per update.

    A batch without `prev_logprobs` takes prev_logprobs = detach(logprobs) everywhere they are
    read (the ratio, the importance weights, the mismatch metrics). That is exact when the batch
    is trained with one optimizer update: the weights that would compute prev_logprobs are then
    those of this forward (the GRPO config's `reuse_training_logprobs`). The ratio is 1 with the
    gradient of exp(logprobs - detach(logprobs)).

    Example:
        >>> from nemo_rl.algorithms.grpo import GRPOLossConfig
        >>> ClippedPGLoss(GRPOLossConfig(ratio_clip_max=0.28)).config.ratio_clip_max
        0.28
    """

    supports_training_logprob_reuse: ClassVar[bool] = True
    """Reads a batch without `prev_logprobs` as prev_logprobs = detach(logprobs); the GRPO trainer
    omits them (`reuse_training_logprobs`) only for a loss that sets this to True."""

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
        if (
            config.sequence_level_importance_ratios
            and config.truncated_importance_sampling_type == "seq-mask-tis"
        ):
            raise ValueError(
                "loss.truncated_importance_sampling_type 'seq-mask-tis' masks sequences by their "
                "per-token weights, but loss.sequence_level_importance_ratios gives each sequence "
                "one weight already: use 'tis' or 'icepop' with GSPO"
            )
        self.config = config

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
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
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

        # masked_fill with a Python 0: a CPU 0-dim tensor in torch.where is copied to the device
        # with a blocking copy: one host sync per micro-batch (measured on an H200).
        lp = logprobs.to(compute_dtype).masked_fill(~valid, 0.0)
        if "prev_logprobs" in batch:
            prev = per_token("prev_logprobs", "log-probs of the policy that the ratio starts from")
        else:  # one update per rollout: this forward runs the weights prev_logprobs would use
            prev = lp.detach()
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
                weights, truncated = importance_weights(
                    prev - gen,
                    mask,
                    sequence_level=cfg.sequence_level_importance_ratios,
                    kind=cfg.truncated_importance_sampling_type,
                    low=cfg.truncated_importance_sampling_ratio_min,
                    high=cfg.truncated_importance_sampling_ratio,
                )
                if cfg.truncated_importance_sampling_type is not None:
                    metrics_extra["importance_weight_truncated_fraction"] = truncated.to(pg.dtype)

        kl = None
        if cfg.kl_penalty > 0 or "reference_logprobs" in batch:
            ref = per_token("reference_logprobs", "log-probs of the reference policy for the KL")
            kl = kl_estimate(
                lp, ref, cfg.kl_type, cfg.kl_input_clamp, cfg.kl_output_clamp, sampling_term=True
            )
        pg_term = torch.where(valid, weights * pg, torch.zeros_like(pg))
        kl_term = (
            torch.where(valid, cfg.kl_penalty * kl, torch.zeros_like(kl))
            if kl is not None and cfg.kl_penalty > 0
            else torch.zeros_like(pg)
        )

        # Counts stay tensors: the normaliser checks them only where they are on the host.
        tokens = global_normaliser(global_valid_tokens, mask.sum(), "global_valid_tokens")

        if cfg.token_level_loss:

            def reduce(x: torch.Tensor) -> torch.Tensor:
                return (mask * x).sum() / tokens

        else:
            seqs = global_normaliser(
                global_valid_seqs, sample_mask.to(compute_dtype).sum(), "global_valid_seqs"
            )

            def reduce(x: torch.Tensor) -> torch.Tensor:
                den = token_mask.sum(-1)
                seq_mean = (token_mask * x).sum(-1) / torch.where(den > 0, den, 1.0)
                return (seq_mean * sample_mask.to(compute_dtype)).sum() / seqs

        pg_loss = reduce(pg_term)
        kl_loss = reduce(kl_term)
        loss = pg_loss + kl_loss

        with torch.no_grad():

            def token_mean(x: torch.Tensor) -> torch.Tensor:
                return (torch.where(valid, x, torch.zeros_like(x)) * mask).sum() / tokens

            outside_clip = (ratio < 1.0 - cfg.ratio_clip_min) | (ratio > 1.0 + cfg.ratio_clip_max)
            # 0-dim tensors, read by the backend once per update: no host sync per micro-batch.
            metrics = {
                "loss": loss.detach(),
                "pg_loss": pg_loss.detach(),
                "kl_loss": kl_loss.detach(),
                "clip_fraction": token_mean(outside_clip.to(pg.dtype)),
                "ratio_mean": token_mean(ratio),
            }
            if kl is not None:
                metrics["kl"] = token_mean(kl)
            for name, value in metrics_extra.items():
                metrics[name] = token_mean(value)
        return loss, metrics
