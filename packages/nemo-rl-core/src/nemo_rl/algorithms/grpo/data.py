"""GRPO's data transform: rows -> prompt conversations -> right-padded prompt ids for generation.

Each row's prompt is rendered with `render_prompt_messages` (prompt column + template + system
prompt, or a messages column whose trailing assistant turns are dropped) and tokenized with the
generation prompt appended. The original rows travel with the batch so reward functions can read
any column (`answer`, test cases, ...).

Prompts longer than `max_prompt_len` tokens are handled one by one, by `overlong_prompts`
(`nemo_rl.algorithms.grpo.prompt_limits`): `filter` keeps only their first token and flags them
`filtered` (sample_mask 0: the rollout skips them, nothing trains on them); `truncate` keeps their
last `max_prompt_len` tokens and flags them `truncated`. The other prompts are untouched. The first
batch with such prompts logs one warning with their length, the limit and the fix.

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

from nemo_rl.algorithms.grpo.prompt_limits import MODES, OverlongPrompts, limit_prompt_lengths
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
    rollout appends them), `sample_mask` [B] float (0 for filtered prompts), `filtered` and
    `truncated` [B] bool (over-long prompts, by `overlong_prompts`), and the list keys `messages`
    (each row's prompt conversation) and `rows` (the original row dicts).

    Example::

        t = GRPOPromptTransform(tokenizer, DataConfig(prompt_key="question"), max_prompt_len=256)
        batch = t(rows)
        int(batch["filtered"].sum())  # prompts over 256 tokens (sample_mask 0, not rolled out)
    """

    def __init__(
        self,
        tokenizer: Any,
        data_config: DataConfig | Mapping[str, Any] | None = None,
        max_prompt_len: int | None = None,
        overlong_prompts: OverlongPrompts = "filter",
    ) -> None:
        if max_prompt_len is not None and max_prompt_len <= 0:
            raise ValueError(
                f"GRPOPromptTransform: max_prompt_len={max_prompt_len}; use a positive length or None"
            )
        if overlong_prompts not in MODES:
            raise ValueError(
                f"GRPOPromptTransform: overlong_prompts={overlong_prompts!r}; use one of {', '.join(MODES)}"
            )
        self.tokenizer = tokenizer
        self.config = as_data_config(data_config)
        self.max_prompt_len = max_prompt_len
        self.overlong_prompts = overlong_prompts
        self.warned = False  # one warning per run, not one per step

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
        limit = self.max_prompt_len if self.max_prompt_len is not None else max(map(len, sequences))
        limited = limit_prompt_lengths(sequences, limit, self.overlong_prompts)
        masks = [[0] * len(ids) for ids in limited.sequences]
        batch = right_pad_batch(limited.sequences, masks, padding_id(self.tokenizer))
        batch["filtered"] = torch.tensor(limited.filtered, dtype=torch.bool)
        batch["truncated"] = torch.tensor(limited.truncated, dtype=torch.bool)
        batch["sample_mask"] = (~batch["filtered"]).to(torch.float32)
        too_long = limited.num_filtered + limited.num_truncated
        if too_long and not self.warned:
            self.warned = True
            log.warning(self._warning(too_long, len(rows), limited.longest, limit))
        result = BatchedDataDict(batch)
        result["messages"] = conversations
        result["rows"] = [dict(row) for row in rows]
        return result

    def _warning(self, too_long: int, total: int, longest: int, limit: int) -> str:
        head = (
            f"{too_long} of {total} prompts are longer than the prompt limit of {limit} tokens "
            f"(longest {longest} tokens; the limit is policy.max_total_sequence_length - 1, or "
            "data.max_input_seq_length if lower)"
        )
        if self.overlong_prompts == "filter":
            return (
                f"{head}: they are filtered (not generated from, not trained on; counted as "
                "data/prompts_filtered). Raise policy.max_total_sequence_length, set "
                f"overlong_prompts: truncate to keep each one's last {limit} tokens, or remove "
                "them from the dataset. Said once per run"
            )
        return (
            f"{head}: they keep their last {limit} tokens (counted as data/prompts_truncated). "
            "Raise policy.max_total_sequence_length, or set overlong_prompts: filter to skip "
            "them. Said once per run"
        )
