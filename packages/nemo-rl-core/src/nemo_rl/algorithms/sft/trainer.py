"""SFTTrainer: supervised fine-tuning, masked token NLL on assistant turns.

Example:
    >>> import nemo_rl
    >>> trainer = nemo_rl.SFTTrainer.from_pretrained("/models/tiny", batch_size=8)  # doctest: +SKIP
    >>> trainer.fit(dataset=[{"prompt": "2+2=", "answer": "4"}] * 64)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from nemo_rl.algorithms.sft.config import SFTConfig
from nemo_rl.algorithms.sft.data import SFTDataTransform
from nemo_rl.algorithms.sft.loss import NLLLoss
from nemo_rl.trainers.base import BaseTrainer

TRAIN_KEYS = ("input_ids", "input_lengths", "token_mask", "sample_mask")


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

    def training_step(self, rows: list[dict[str, Any]]) -> dict[str, float]:
        batch = self.transform(rows).select_keys(TRAIN_KEYS)
        with self.phase("train"):
            return self.policy.train_step(batch, self.loss_fn)

    def validation_step(self, rows: list[dict[str, Any]]) -> dict[str, float]:
        """Held-out loss: the NLL per valid token of the validation rows."""
        batch = self.transform(rows).select_keys(TRAIN_KEYS)
        logprobs = self.policy.get_logprobs(batch)
        valid = batch["token_mask"] * batch["sample_mask"].unsqueeze(-1)
        loss, _ = self.loss_fn(logprobs, batch, int(valid.sum()), int(batch["sample_mask"].sum()))
        return {"loss": float(loss)}
