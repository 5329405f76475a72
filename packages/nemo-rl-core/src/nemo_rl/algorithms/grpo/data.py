"""GRPO's data transform: rows -> prompt conversations -> right-padded prompt ids for generation.

Each row's prompt is rendered with `render_prompt_messages` (prompt column + template + system
prompt, or a messages column whose trailing assistant turns are dropped) and tokenized with the
generation prompt appended. The original rows travel with the batch so reward functions can read
any column (`answer`, test cases, ...).

Prompts longer than `max_prompt_len` are not cut from the left (that would drop the task
statement) nor from the right (that would drop the generation prompt): they keep their first
`max_prompt_len` tokens only so the batch keeps its shape, and get `sample_mask` 0 and
`truncated` True, so whatever is generated from them contributes nothing to the loss. A warning
says how many there were; raise `max_prompt_len` or filter the data to avoid them.

Example (`tokenizer` is any HF tokenizer with a chat template)::

    from nemo_rl.algorithms.grpo.data import GRPOPromptTransform
    from nemo_rl.config import DataConfig

    transform = GRPOPromptTransform(tokenizer, DataConfig(system_prompt="Think step by step."))
    prompts = transform([{"prompt": "1+1=", "answer": "2"}])
    prompts["messages"][0][-1]  # {'role': 'user', 'content': '1+1='}
    prompts["rows"][0]["answer"]  # '2'
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from nemo_rl.config.infra import DataConfig
from nemo_rl.data.batched_data_dict import BatchedDataDict
from nemo_rl.data.chat import (
    ChatFormatError,
    padding_id,
    prompt_settings,
    render_prompt_messages,
    right_pad_batch,
    tokenize_prompt,
)
from nemo_rl.data.datamodule import as_data_config

log = logging.getLogger(__name__)


class GRPOPromptTransform:
    """Turn GRPO rows into a prompt batch (a picklable callable: `transform(rows)`).

    Output keys: `input_ids` [B, T] long (right-padded), `input_lengths` [B] long, `token_mask`
    [B, T] float (all 0: prompt tokens are never trained on; generated tokens get 1 when the
    rollout appends them), `sample_mask` [B] float (0 for over-long prompts), `truncated` [B]
    bool, and the list keys `messages` (each row's prompt conversation) and `rows` (the original
    row dicts).

    Example::

        t = GRPOPromptTransform(tokenizer, DataConfig(prompt_key="question"), max_prompt_len=256)
        batch = t(rows)
        int(batch["truncated"].sum())  # prompts that were too long (sample_mask 0)
    """

    def __init__(
        self,
        tokenizer: Any,
        data_config: DataConfig | Mapping[str, Any] | None = None,
        max_prompt_len: int | None = None,
    ) -> None:
        if max_prompt_len is not None and max_prompt_len <= 0:
            raise ValueError(
                f"GRPOPromptTransform: max_prompt_len={max_prompt_len}; use a positive length or None"
            )
        self.tokenizer = tokenizer
        self.config = as_data_config(data_config)
        self.max_prompt_len = max_prompt_len

    def required_columns(self) -> list[str]:
        """The column every row needs: the messages column, or the prompt column."""
        c = self.config
        return [c.messages_key] if c.messages_key else [c.prompt_key]

    def __call__(self, rows: Sequence[Mapping[str, Any]]) -> BatchedDataDict:
        if not rows:
            raise ValueError("GRPOPromptTransform: got no rows; a batch needs at least one row")
        settings = prompt_settings(self.config)
        conversations, sequences = [], []
        for index, row in enumerate(rows):
            try:
                messages = render_prompt_messages(row, **settings)
                ids = tokenize_prompt(
                    self.tokenizer, messages, apply_chat_template=self.config.apply_chat_template
                )
            except ChatFormatError as err:
                raise ChatFormatError(f"GRPO row {index} of the batch: {err}") from err
            conversations.append(messages)
            sequences.append(ids)
        masks = [[0] * len(ids) for ids in sequences]
        batch = right_pad_batch(sequences, masks, padding_id(self.tokenizer), self.max_prompt_len)
        batch["sample_mask"] = (~batch["truncated"]).to(torch.float32)
        too_long = int(batch["truncated"].sum())
        if too_long:
            longest = max(len(ids) for ids in sequences)
            log.warning(
                "%d of %d prompts are longer than max_prompt_len=%d tokens (longest %d); they get "
                "sample_mask 0 and are not trained on: raise the limit or filter the data",
                too_long, len(rows), self.max_prompt_len, longest,
            )
        result = BatchedDataDict(batch)
        result["messages"] = conversations
        result["rows"] = [dict(row) for row in rows]
        return result
