"""Which columns mean what, found from a row when the config does not say.

Datasets come in a few well-known shapes. When the column settings were left at their defaults
and the default columns are not in the data, `detect_columns` looks at the first training row and
picks the shape it recognises:

- a conversation column (`messages`, `conversation`, `conversations`, `chat`, `dialog`) holding a
  list of `{"role", "content"}` messages -> `data.messages_key` (SFT trains on its assistant
  turns; GRPO uses it as the prompt, without trailing assistant turns);
- TRL's prompt/completion (SFT): `prompt` plus `completion`, as strings or as message lists ->
  `data.answer_key=completion`;
- TRL's preference rows (DPO): `prompt`/`chosen`/`rejected` (strings or message lists) and
  chosen/rejected conversations without a prompt already match the defaults.

A setting the user gave (a field in the config's `model_fields_set`) is never changed: when its
column is missing the run fails with an error that names it (and `data.messages_key` when the
rows hold conversations).

Example:
    >>> from nemo_rl.config import DataConfig
    >>> row = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}
    >>> config, note = detect_columns(DataConfig(), row, "sft")
    >>> config.messages_key, note
    ('messages', "column 'messages' holds conversations: using data.messages_key=messages")
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nemo_rl.config.infra import DataConfig

# Column names that hold whole conversations, in the order they are tried.
MESSAGES_COLUMNS = ("messages", "conversation", "conversations", "chat", "dialog")
# TRL's name for the target of a prompt/completion row.
COMPLETION_COLUMN = "completion"


def is_message_list(value: Any) -> bool:
    """Whether `value` looks like a conversation: a non-empty list of dicts with a role.

    Only the shape is checked here; `check_messages` reports what is wrong inside (and names
    `data.messages_key`), which is more useful than not recognising the column at all.

    Example:
        >>> is_message_list([{"role": "user", "content": "hi"}]), is_message_list("hi")
        (True, False)
    """
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(m, Mapping) and ("role" in m or "from" in m) for m in value)
    )


def messages_column(row: Mapping[str, Any]) -> str | None:
    """The first conversation column of `row` (see `MESSAGES_COLUMNS`), or None.

    Example:
        >>> messages_column({"id": 1, "conversations": [{"role": "user", "content": "hi"}]})
        'conversations'
    """
    return next((c for c in MESSAGES_COLUMNS if is_message_list(row.get(c))), None)


def detect_columns(
    config: DataConfig, row: Mapping[str, Any], algorithm: str
) -> tuple[DataConfig, str | None]:
    """`config` with the column settings `row`'s shape implies, and a note saying what changed.

    `algorithm` is "sft", "dpo" or "grpo"; other algorithms get `config` back unchanged. The note
    is None when nothing changed.

    Example:
        >>> cfg, note = detect_columns(DataConfig(), {"prompt": "1+1=", "completion": "2"}, "sft")
        >>> cfg.answer_key, note
        ('completion', "columns 'prompt' and 'completion' (TRL's prompt/completion): using data.answer_key=completion")
    """
    given = config.model_fields_set
    if config.messages_key is not None or "messages_key" in given:
        return config, None
    conversation = messages_column(row)
    if algorithm == "sft":
        if config.prompt_key in row and config.answer_key in row:
            return config, None
        if (
            config.prompt_key in row
            and COMPLETION_COLUMN in row
            and "answer_key" not in given
        ):
            note = (
                f"columns {config.prompt_key!r} and {COMPLETION_COLUMN!r} (TRL's "
                f"prompt/completion): using data.answer_key={COMPLETION_COLUMN}"
            )
            return config.model_copy(update={"answer_key": COMPLETION_COLUMN}), note
        if conversation and not {"prompt_key", "answer_key"} & given:
            return _use_messages(config, conversation)
    elif algorithm == "grpo":
        if config.prompt_key not in row and conversation and "prompt_key" not in given:
            return _use_messages(config, conversation)
    return config, None


def _use_messages(config: DataConfig, column: str) -> tuple[DataConfig, str]:
    note = f"column {column!r} holds conversations: using data.messages_key={column}"
    return config.model_copy(update={"messages_key": column}), note
