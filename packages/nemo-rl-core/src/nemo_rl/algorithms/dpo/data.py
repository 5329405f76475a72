"""DPO's data transform: preference rows -> interleaved chosen/rejected token batch.

A row holds a prompt and two responses, in one of two shapes:

- strings: `chosen` and `rejected` are the response texts; the prompt comes from the row like any
  prompt (`data.prompt_key` + template + system prompt, or `data.messages_key`);
- conversations: `chosen` and `rejected` are message lists whose last message is the assistant's
  response. Their earlier messages are the prompt and must be the same in both; lists holding
  only the response take the prompt from `data.prompt_key` (a string or a message list).

Row `i` becomes sequences `2i` (chosen) and `2i + 1` (rejected); only the response tokens (the
final assistant turn, end-of-turn token included) have `token_mask` 1.

Example (`tokenizer` is any HF tokenizer with a chat template)::

    from nemo_rl.algorithms.dpo.data import DPODataTransform

    transform = DPODataTransform(tokenizer, None, max_seq_len=1024)
    batch = transform([{"prompt": "2+2?", "chosen": "4", "rejected": "5"}])
    batch["input_ids"].shape[0]  # 2: chosen, then rejected
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from nemo_rl.config.infra import DataConfig
from nemo_rl.data.batched_data_dict import BatchedDataDict
from nemo_rl.data.chat import (
    ChatFormatError,
    check_messages,
    padding_id,
    prompt_settings,
    render_prompt_messages,
    right_pad_batch,
    tokenize_conversation,
)
from nemo_rl.data.datamodule import as_data_config
from nemo_rl.protocols import Message


class DPODataTransform:
    """Turn preference rows into a DPO batch (a picklable callable: `transform(rows)`).

    Output keys (2B sequences): `input_ids` [2B, T] long (right-padded), `input_lengths` [2B]
    long, `token_mask` [2B, T] float (1 on response tokens), `sample_mask` [2B] float (0 for
    both sequences of a pair when truncation left either without response tokens) and
    `truncated` [2B] bool (longer than `max_seq_len`, cut at the end).

    Example::

        t = DPODataTransform(tokenizer, DataConfig(chosen_key="good", rejected_key="bad"), 512)
        t([{"prompt": "hi", "good": "hello!", "bad": "go away"}])["token_mask"].shape[0]  # 2
    """

    def __init__(
        self,
        tokenizer: Any,
        data_config: DataConfig | Mapping[str, Any] | None = None,
        max_seq_len: int | None = None,
    ) -> None:
        if max_seq_len is not None and max_seq_len <= 0:
            raise ValueError(f"DPODataTransform: max_seq_len={max_seq_len}; use a positive length or None")
        self.tokenizer = tokenizer
        self.config = as_data_config(data_config)
        self.max_seq_len = max_seq_len

    def required_columns(self, row: Mapping[str, Any] | None = None) -> list[str]:
        """The columns every row needs; the prompt column is needed unless `row` (an example
        row) holds full conversations in its chosen/rejected columns."""
        c = self.config
        columns = [c.chosen_key, c.rejected_key]
        chosen = row.get(c.chosen_key) if row is not None else None
        if isinstance(chosen, list) and len(chosen) > 1:
            return columns
        return [c.messages_key or c.prompt_key, *columns]

    def pair(self, row: Mapping[str, Any]) -> tuple[list[Message], Message, Message]:
        """The prompt conversation and the chosen and rejected assistant messages of one row."""
        c = self.config
        for key, option in ((c.chosen_key, "chosen_key"), (c.rejected_key, "rejected_key")):
            if key not in row:
                raise ChatFormatError(
                    f"row has no column {key!r} (data.{option}); columns present: {', '.join(row)}"
                )
        chosen, rejected = row[c.chosen_key], row[c.rejected_key]
        if isinstance(chosen, str) and isinstance(rejected, str):
            prompt = render_prompt_messages(row, **prompt_settings(c))
            return prompt, _assistant(chosen), _assistant(rejected)
        if isinstance(chosen, str) or isinstance(rejected, str):
            raise ChatFormatError(
                f"columns {c.chosen_key!r} and {c.rejected_key!r} must both be strings or both "
                f"message lists; got {type(chosen).__name__} and {type(rejected).__name__}"
            )
        chosen = check_messages(chosen, f"column {c.chosen_key!r}")
        rejected = check_messages(rejected, f"column {c.rejected_key!r}")
        for key, messages in ((c.chosen_key, chosen), (c.rejected_key, rejected)):
            if messages[-1]["role"] != "assistant":
                raise ChatFormatError(
                    f"column {key!r}: the last message is from {messages[-1]['role']!r}; it must "
                    f"be the assistant's response"
                )
        if len(chosen) == 1 and len(rejected) == 1:
            prompt = render_prompt_messages(row, **prompt_settings(c))
        elif chosen[:-1] == rejected[:-1]:
            prompt = chosen[:-1]
            if c.system_prompt is not None and prompt[0]["role"] != "system":
                prompt.insert(0, {"role": "system", "content": c.system_prompt})
        else:
            raise ChatFormatError(
                f"columns {c.chosen_key!r} and {c.rejected_key!r} hold conversations whose "
                f"messages before the final response differ; a preference pair must share its "
                f"prompt (only the last assistant message may differ)"
            )
        return prompt, chosen[-1], rejected[-1]

    def __call__(self, rows: Sequence[Mapping[str, Any]]) -> BatchedDataDict:
        if not rows:
            raise ValueError("DPODataTransform: got no rows; a batch needs at least one row")
        sequences, masks = [], []
        for index, row in enumerate(rows):
            try:
                prompt, chosen, rejected = self.pair(row)
                for response in (chosen, rejected):
                    ids, mask = tokenize_conversation(
                        self.tokenizer,
                        [*prompt, response],
                        train_on="last_assistant",
                        apply_chat_template=self.config.apply_chat_template,
                    )
                    sequences.append(ids)
                    masks.append(mask)
            except ChatFormatError as err:
                raise ChatFormatError(f"DPO row {index} of the batch: {err}") from err
        batch = right_pad_batch(sequences, masks, padding_id(self.tokenizer), self.max_seq_len)
        has_response = batch["token_mask"].sum(dim=1) > 0
        # A pair is only comparable when both of its responses kept some tokens.
        pair_ok = has_response.view(-1, 2).all(dim=1)
        batch["sample_mask"] = pair_ok.repeat_interleave(2).to(torch.float32)
        return BatchedDataDict(batch)


def _assistant(text: str) -> Message:
    return {"role": "assistant", "content": text}
