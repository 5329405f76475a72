"""SFT's data transform: rows -> conversations -> right-padded token batch with a loss mask.

A row is either a conversation (`data.messages_key`, a list of `{"role", "content"}` messages
with at least one assistant turn) or a prompt/answer pair (`data.prompt_key` and
`data.answer_key`), which becomes `[system?, user: prompt, assistant: answer]`; the prompt may be
a message list and the answer a list of assistant messages (TRL's conversational
prompt/completion). `messages` and TRL's `prompt`/`completion` columns are found without
configuration (`nemo_rl.data.formats`). By default only
the assistant turns are trained on (`loss_on_prompt=True` trains on every token).

Example (`tokenizer` is any HF tokenizer with a chat template)::

    from nemo_rl.algorithms.sft.data import SFTDataTransform
    from nemo_rl.config import DataConfig

    transform = SFTDataTransform(tokenizer, DataConfig(answer_key="solution"), max_seq_len=512)
    batch = transform([{"prompt": "1+1=", "solution": "2"}])
    sorted(batch)  # ['input_ids', 'input_lengths', 'sample_mask', 'token_mask', 'truncated']
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


class SFTDataTransform:
    """Turn SFT rows into a training batch (a picklable callable: `transform(rows)`).

    Output keys: `input_ids` [B, T] long (right-padded with the pad id), `input_lengths` [B]
    long, `token_mask` [B, T] float (1 on tokens trained on: assistant turns including their
    end-of-turn token), `sample_mask` [B] float (0 when truncation left no trained token) and
    `truncated` [B] bool (the sequence was longer than `max_seq_len` and was cut at the end).
    `max_seq_len` None keeps whole sequences.

    Example::

        t = SFTDataTransform(tokenizer, DataConfig(), max_seq_len=8)
        t([{"prompt": "hi", "answer": "a long answer"}])["truncated"]  # tensor([True])
    """

    def __init__(
        self,
        tokenizer: Any,
        data_config: DataConfig | Mapping[str, Any] | None = None,
        max_seq_len: int | None = None,
        loss_on_prompt: bool = False,
    ) -> None:
        if max_seq_len is not None and max_seq_len <= 0:
            raise ValueError(f"SFTDataTransform: max_seq_len={max_seq_len}; use a positive length or None")
        self.tokenizer = tokenizer
        self.config = as_data_config(data_config)
        self.max_seq_len = max_seq_len
        self.loss_on_prompt = loss_on_prompt

    def required_columns(self) -> list[str]:
        """The columns every row needs: the messages column, or the prompt and answer columns."""
        c = self.config
        return [c.messages_key] if c.messages_key else [c.prompt_key, c.answer_key]

    def conversation(self, row: Mapping[str, Any]) -> list[Message]:
        """The conversation of one row, ending with (at least one) assistant turn."""
        c = self.config
        if c.messages_key:
            if c.messages_key not in row:
                raise ChatFormatError(
                    f"row has no column {c.messages_key!r} (data.messages_key); columns present: "
                    f"{', '.join(row)}"
                )
            where = f"column {c.messages_key!r} (data.messages_key)"
            messages = check_messages(row[c.messages_key], where)
            if not any(m["role"] == "assistant" for m in messages):
                raise ChatFormatError(
                    f"{where}: the conversation has no assistant message, so nothing would be "
                    f"trained on; every SFT conversation needs an assistant turn"
                )
            if c.system_prompt is not None and messages[0]["role"] != "system":
                messages.insert(0, {"role": "system", "content": c.system_prompt})
            return messages
        if c.answer_key not in row:
            raise ChatFormatError(
                f"row has no column {c.answer_key!r} (data.answer_key); columns present: "
                f"{', '.join(row)}; set data.answer_key to the column holding the target text"
            )
        answer = row[c.answer_key]
        if isinstance(answer, list):  # TRL's conversational prompt/completion
            return self._prompt_and_completion(row, answer)
        if isinstance(answer, bool) or not isinstance(answer, (str, int, float)):
            raise ChatFormatError(
                f"column {c.answer_key!r} holds a {type(answer).__name__} ({answer!r:.60}); SFT "
                f"needs the target text as a string (or set data.messages_key for conversations)"
            )
        prompt = render_prompt_messages(row, **prompt_settings(c))
        return [*prompt, {"role": "assistant", "content": str(answer)}]

    def _prompt_and_completion(self, row: Mapping[str, Any], completion: list) -> list[Message]:
        """A prompt (string or messages) followed by a completion given as assistant messages."""
        c = self.config
        where = f"column {c.answer_key!r} (data.answer_key)"
        completion = check_messages(completion, where)
        if not any(m["role"] == "assistant" for m in completion):
            raise ChatFormatError(
                f"{where}: the completion has no assistant message, so nothing would be trained "
                f"on; a conversational completion is a list of assistant messages"
            )
        settings = {**prompt_settings(c), "drop_trailing_assistant": False}
        return [*render_prompt_messages(row, **settings), *completion]

    def __call__(self, rows: Sequence[Mapping[str, Any]]) -> BatchedDataDict:
        if not rows:
            raise ValueError("SFTDataTransform: got no rows; a batch needs at least one row")
        train_on = "all" if self.loss_on_prompt else "assistant"
        sequences, masks = [], []
        for index, row in enumerate(rows):
            try:
                ids, mask = tokenize_conversation(
                    self.tokenizer,
                    self.conversation(row),
                    train_on=train_on,
                    apply_chat_template=self.config.apply_chat_template,
                )
            except ChatFormatError as err:
                raise ChatFormatError(f"SFT row {index} of the batch: {err}") from err
            sequences.append(ids)
            masks.append(mask)
        batch = right_pad_batch(sequences, masks, padding_id(self.tokenizer), self.max_seq_len)
        batch["sample_mask"] = (batch["token_mask"].sum(dim=1) > 0).to(torch.float32)
        return BatchedDataDict(batch)
