"""SFTTrainer: supervised fine-tuning, masked token NLL on assistant turns.

Example:
    >>> import nemo_rl
    >>> trainer = nemo_rl.SFTTrainer.from_pretrained("/models/tiny", batch_size=8)  # doctest: +SKIP
    >>> trainer.fit(dataset=[{"prompt": "2+2=", "answer": "4"}] * 64)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from typing import Any

from nemo_rl.algorithms.sft.config import SFTConfig
from nemo_rl.algorithms.sft.data import SFTDataTransform
from nemo_rl.algorithms.sft.loss import NLLLoss
from nemo_rl.trainers.base import BaseTrainer

TRAIN_KEYS = ("input_ids", "input_lengths", "token_mask", "sample_mask")
log = logging.getLogger("nemo_rl")


class SFTTrainer(BaseTrainer):
    """Supervised fine-tuning on conversations or prompt/answer pairs."""

    config_class = SFTConfig
    config: SFTConfig

    @property
    def rows_per_step(self) -> int:
        return self.config.batch_size

    def build_transform(self) -> SFTDataTransform:
        cfg = self.config
        return SFTDataTransform(
            self.tokenizer, cfg.data, cfg.policy.max_total_sequence_length,
            loss_on_prompt=cfg.loss_on_prompt,
        )

    def setup_algorithm(self) -> None:
        self.loss_fn = NLLLoss()
        self._warned_empty_rows = False

    def training_step(self, rows: list[dict[str, Any]]) -> dict[str, float]:
        full = self.transform(rows)
        # A row cut to max_total_sequence_length before any answer token trains on nothing:
        # counted every step, and said once, rather than lost without a word.
        empty = int((full["sample_mask"] == 0).sum())
        if empty and not self._warned_empty_rows:
            self._warned_empty_rows = True
            log.warning(
                f"step {self.state.step + 1}: {empty} of {len(rows)} rows have no answer token left "
                f"after truncation to policy.max_total_sequence_length="
                f"{self.config.policy.max_total_sequence_length} and do not train (counted as "
                "data/rows_without_answer); raise that length or shorten the prompts"
            )
        with self.phase("train"):
            metrics = self.policy.train_step(full.select_keys(TRAIN_KEYS), self.loss_fn)
        metrics["data/rows_without_answer"] = float(empty)
        metrics["data/truncated_rows"] = float(full["truncated"].sum())
        return metrics

    def validation_step(self, rows: list[dict[str, Any]]) -> dict[str, float]:
        """Held-out loss: the NLL per valid token of the validation rows."""
        batch = self.transform(rows).select_keys(TRAIN_KEYS)
        logprobs = self.policy.get_logprobs(batch)
        valid = batch["token_mask"] * batch["sample_mask"].unsqueeze(-1)
        loss, _ = self.loss_fn(logprobs, batch, int(valid.sum()), int(batch["sample_mask"].sum()))
        return {"loss": float(loss)}
