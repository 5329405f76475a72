"""DPOTrainer: direct preference optimisation on (prompt, chosen, rejected) rows.

Reference log-probabilities are computed once per batch, before any update of that batch, with
the reference weights (the initial policy).

Example:
    >>> import nemo_rl
    >>> trainer = nemo_rl.DPOTrainer.from_pretrained("/models/tiny", beta=0.1)  # doctest: +SKIP
    >>> trainer.fit(dataset="prefs.jsonl")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from nemo_rl.algorithms.dpo.config import DPOConfig
from nemo_rl.algorithms.dpo.data import DPODataTransform
from nemo_rl.algorithms.dpo.loss import DPOLoss
from nemo_rl.data import BatchedDataDict
from nemo_rl.trainers.base import BaseTrainer

TRAIN_KEYS = ("input_ids", "input_lengths", "token_mask", "sample_mask")


class DPOTrainer(BaseTrainer):
    """Preference optimisation; batches interleave pairs (row 2i chosen, 2i+1 rejected)."""

    config_class = DPOConfig
    config: DPOConfig

    @property
    def rows_per_step(self) -> int:
        return self.config.batch_size

    def required_data_columns(self) -> list[str]:
        # Whether a prompt column is needed depends on the rows' shape (strings or conversations).
        return self.build_transform().required_columns(self.data.train_rows[0])

    @property
    def sequences_per_step(self) -> int:
        return 2 * self.config.batch_size

    def describe_batches(self) -> list[str]:
        return [
            f"{self.config.batch_size} preference pairs/step = {2 * self.config.batch_size} sequences",
            *super().describe_batches(),
        ]

    def build_transform(self) -> DPODataTransform:
        cfg = self.config
        return DPODataTransform(self.tokenizer, cfg.data, cfg.policy.max_total_sequence_length)

    def setup_algorithm(self) -> None:
        cfg = self.config
        self.loss_fn = DPOLoss(
            beta=cfg.beta,
            preference_average_log_probs=cfg.preference_average_log_probs,
            preference_loss_weight=cfg.preference_loss_weight,
            sft_loss_weight=cfg.sft_loss_weight,
            sft_average_log_probs=cfg.sft_average_log_probs,
        )

    def _pairs(self, rows: list[dict[str, Any]]) -> BatchedDataDict:
        batch = self.transform(rows).select_keys(TRAIN_KEYS)
        with self.phase("reference logprobs"):
            batch["reference_logprobs"] = self.policy.get_logprobs(batch, reference=True)
        return batch

    def training_step(self, rows: list[dict[str, Any]]) -> dict[str, float]:
        batch = self._pairs(rows)
        with self.phase("train"):
            return self.policy.train_step(batch, self.loss_fn)

    def validation_step(self, rows: list[dict[str, Any]]) -> dict[str, float]:
        """Loss and preference accuracy (chosen implicit reward above rejected) on held-out pairs."""
        batch = self._pairs(rows)
        logprobs = self.policy.get_logprobs(batch)
        valid = batch["token_mask"] * batch["sample_mask"].unsqueeze(-1)
        _, metrics = self.loss_fn(logprobs, batch, int(valid.sum()), int(batch["sample_mask"].sum()))
        return {k: float(v) for k, v in metrics.items()}  # 0-dim CPU tensors: no device wait
