"""From dataset rows to chat messages to token ids, with a mask of the tokens that are trained on.

Three steps every algorithm shares:

1. `render_prompt_messages(row, ...)`: the prompt conversation of a row. It is the row's
   `messages_key` column when set (a list of `{"role", "content"}` dicts), else one user message
   made from the `prompt_key` column, formatted by `prompt_template` (a `str.format` string that
   may use `{prompt}` and any other column, e.g. `"{prompt}\\nAnswer in {unit}."`). A
   `system_prompt` is put first unless the conversation already starts with a system message.
2. `tokenize_prompt(tokenizer, messages)`: the prompt ids, ending with the generation prompt
   (e.g. `<|im_start|>assistant\\n`) so a model continues as the assistant.
3. `tokenize_conversation(tokenizer, messages, train_on=...)`: ids of a whole conversation and a
   0/1 mask, 1 exactly on the assistant turns' tokens, end-of-turn token included.

Without a chat template (`apply_chat_template=False`) a conversation is the plain concatenation
of its message contents, with no separator (put any separator into the text, e.g. a
`prompt_template` ending in a newline), the tokenizer's special tokens (e.g. BOS) before it, and
EOS after each assistant message.

The functions take any HF tokenizer object; they never import `transformers` themselves.

Example:
    >>> from nemo_rl.data import render_prompt_messages
    >>> render_prompt_messages({"question": "2+2?"}, prompt_key="question",
    ...                        system_prompt="Be brief.", prompt_template="Q: {prompt}")
    [{'role': 'system', 'content': 'Be brief.'}, {'role': 'user', 'content': 'Q: 2+2?'}]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch

from nemo_rl.protocols import Message

TrainOn = Literal["assistant", "last_assistant", "all"]


class ChatFormatError(ValueError):
    """A row, message list or tokenizer that cannot be turned into tokens; the message says why."""


def _columns(row: Mapping[str, Any]) -> str:
    return ", ".join(map(str, row)) or "none"


def check_messages(messages: Any, where: str) -> list[Message]:
    """`messages` as a list of `{"role": str, "content": str}` dicts, or a clear error.

    Example:
        >>> check_messages([{"role": "user", "content": "hi"}], "row 0")
        [{'role': 'user', 'content': 'hi'}]
    """
    if not isinstance(messages, Sequence) or isinstance(messages, str) or not messages:
        raise ChatFormatError(
            f"{where}: expected a non-empty list of messages like "
            f"[{{'role': 'user', 'content': '...'}}], got {type(messages).__name__} "
            f"({messages!r:.80})"
        )
    checked: list[Message] = []
    for index, message in enumerate(messages):
        if not (
            isinstance(message, Mapping)
            and isinstance(message.get("role"), str)
            and isinstance(message.get("content"), str)
        ):
            sharegpt = isinstance(message, Mapping) and "from" in message and "value" in message
            hint = (
                " (this is ShareGPT's {'from', 'value'} layout: convert each message to "
                "{'role': 'user'|'assistant'|'system', 'content': ...})"
                if sharegpt
                else ""
            )
            raise ChatFormatError(
                f"{where}: message {index} is {message!r:.80}; every message must be a dict "
                f"with string 'role' and 'content'{hint}"
            )
        checked.append(dict(message))  # type: ignore[arg-type]
    return checked


def render_prompt_messages(
    row: Mapping[str, Any],
    *,
    prompt_key: str = "prompt",
    messages_key: str | None = None,
    system_prompt: str | None = None,
    prompt_template: str | None = None,
    drop_trailing_assistant: bool = True,
) -> list[Message]:
    """The prompt conversation of one dataset row (see the module docstring).

    With `messages_key` (or a `prompt_key` column holding a message list), trailing assistant
    messages are dropped when `drop_trailing_assistant` is True, so a full conversation can serve
    as a prompt whose reference answer is the removed turn. `prompt_template` only formats a
    string prompt; combining it with a message list is an error rather than silently ignored.

    Example:
        >>> render_prompt_messages({"prompt": "hi", "lang": "fr"}, prompt_template="{prompt} ({lang})")
        [{'role': 'user', 'content': 'hi (fr)'}]
    """
    key = messages_key or prompt_key
    option = "messages_key" if messages_key else "prompt_key"
    if key not in row:
        raise ChatFormatError(
            f"row has no column {key!r}; columns present: {_columns(row)}; set data.{option} "
            f"to the column holding the prompt"
        )
    value = row[key]
    if messages_key is not None or not isinstance(value, str):
        if prompt_template is not None:
            raise ChatFormatError(
                f"data.prompt_template formats a string prompt, but column {key!r} holds a "
                f"message list, which is used as it is: unset data.prompt_template"
            )
        messages = check_messages(value, f"column {key!r} (data.{option})")
        if drop_trailing_assistant:
            while messages and messages[-1]["role"] == "assistant":
                messages.pop()
            if not messages:
                raise ChatFormatError(
                    f"column {key!r} (data.{option}): the conversation holds only assistant messages, so no "
                    f"prompt is left; add the user turn that precedes them"
                )
    else:
        content = value
        if prompt_template is not None:
            content = _format_template(prompt_template, row, value)
        messages = [{"role": "user", "content": content}]
    if system_prompt is not None and messages[0]["role"] != "system":
        messages.insert(0, {"role": "system", "content": system_prompt})
    return messages


def _format_template(template: str, row: Mapping[str, Any], prompt: str) -> str:
    try:
        return template.format_map({**row, "prompt": prompt})
    except KeyError as err:
        raise ChatFormatError(
            f"data.prompt_template uses {{{err.args[0]}}}, which is not a column of the row "
            f"(columns present: {_columns(row)}; {{prompt}} is always available)"
        ) from err
    except (IndexError, ValueError) as err:
        raise ChatFormatError(
            f"data.prompt_template {template!r} is not a valid format string ({err}); use "
            f"named fields like {{prompt}} and double literal braces as {{{{ }}}}"
        ) from err


def prompt_settings(data_config: Any) -> dict[str, Any]:
    """The `render_prompt_messages` keyword arguments held by a `DataConfig` (or `DataModule.config`).

    Example:
        >>> from nemo_rl.config import DataConfig
        >>> prompt_settings(DataConfig(prompt_key="question"))["prompt_key"]
        'question'
    """
    return {
        "prompt_key": data_config.prompt_key,
        "messages_key": data_config.messages_key,
        "system_prompt": data_config.system_prompt,
        "prompt_template": data_config.prompt_template,
    }


def _encode(tokenizer: Any, text: str, add_special_tokens: bool) -> list[int]:
    return list(tokenizer(text, add_special_tokens=add_special_tokens)["input_ids"])


def _render(tokenizer: Any, messages: list[Message], add_generation_prompt: bool) -> str:
    if not getattr(tokenizer, "chat_template", None):
        name = getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
        raise ChatFormatError(
            f"tokenizer {name!r} has no chat template; set policy.tokenizer.chat_template to a "
            f"Jinja template, or data.apply_chat_template=false to concatenate plain text"
        )
    # Rendering to text and encoding without special tokens works the same on every
    # transformers version (tokenize=True returns a list in v4 and a BatchEncoding in v5) and
    # does not add a second BOS when the template already writes one.
    return tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=add_generation_prompt
    )


def _eos_id(tokenizer: Any) -> int:
    eos = getattr(tokenizer, "eos_token_id", None)
    if eos is None:
        raise ChatFormatError(
            "the tokenizer has no eos_token_id, which plain-text conversations end each "
            "response with; set the tokenizer's eos_token or use its chat template"
        )
    return int(eos)


def tokenize_prompt(
    tokenizer: Any, messages: list[Message], apply_chat_template: bool = True
) -> list[int]:
    """Token ids of a prompt conversation, ready for generation.

    With a chat template the ids end with the generation prompt; without one they are the
    tokenizer's special tokens (e.g. BOS) followed by the concatenated message contents.

    Example (any HF tokenizer with a ChatML template)::

        tokenize_prompt(tok, [{"role": "user", "content": "hi"}])
        # ids of "<|im_start|>user\\nhi<|im_end|>\\n<|im_start|>assistant\\n"
    """
    messages = check_messages(messages, "tokenize_prompt")
    if not apply_chat_template:
        return _encode(tokenizer, "".join(m["content"] for m in messages), True)
    return _encode(tokenizer, _render(tokenizer, messages, add_generation_prompt=True), False)


def tokenize_conversation(
    tokenizer: Any,
    messages: list[Message],
    train_on: TrainOn = "assistant",
    apply_chat_template: bool = True,
) -> tuple[list[int], list[int]]:
    """Token ids of a whole conversation and a 0/1 mask of the tokens to train on.

    `train_on="assistant"` marks every assistant turn, `"last_assistant"` only the final one
    (DPO's response), `"all"` every token. An assistant turn's tokens are those the template adds
    for it beyond the generation prompt (its content and end-of-turn tokens), found by rendering
    growing prefixes of the conversation and tokenizing each new piece on its own, so the mask
    lines up with the ids by construction.

    Example (any HF tokenizer with a ChatML template)::

        ids, mask = tokenize_conversation(tok, [{"role": "user", "content": "hi"},
                                                {"role": "assistant", "content": "yo"}])
        tok.decode([i for i, m in zip(ids, mask) if m])  # 'yo<|im_end|>\\n'
    """
    if train_on not in ("assistant", "last_assistant", "all"):
        raise ChatFormatError(
            f"train_on={train_on!r}; use 'assistant', 'last_assistant' or 'all'"
        )
    messages = check_messages(messages, "tokenize_conversation")
    last_assistant = max(
        (i for i, m in enumerate(messages) if m["role"] == "assistant"), default=-1
    )

    def trained(index: int) -> bool:
        if train_on == "all":
            return True
        if train_on == "last_assistant":
            return index == last_assistant
        return messages[index]["role"] == "assistant"

    ids: list[int] = []
    mask: list[int] = []
    if not apply_chat_template:
        for index, message in enumerate(messages):
            piece = _encode(tokenizer, message["content"], add_special_tokens=index == 0)
            if message["role"] == "assistant":
                piece.append(_eos_id(tokenizer))
            ids += piece
            mask += [int(trained(index))] * len(piece)
        return ids, mask

    rendered = ""
    for index, message in enumerate(messages):
        pieces: list[tuple[str, bool]] = []
        if message["role"] == "assistant":
            # The generation prompt (e.g. "<|im_start|>assistant\n") is prompt, not response.
            header = _render(tokenizer, messages[:index], add_generation_prompt=True) if index else ""
            pieces.append((header, train_on == "all"))
        pieces.append((_render(tokenizer, messages[: index + 1], False), trained(index)))
        for text, is_trained in pieces:
            if not text.startswith(rendered):
                raise ChatFormatError(
                    f"the chat template re-renders earlier turns differently once message "
                    f"{index} ({message['role']}) is added (e.g. it strips reasoning from past "
                    f"turns), so per-turn masks cannot be computed; use a template whose "
                    f"rendering of a conversation extends the rendering of its prefixes"
                )
            piece = _encode(tokenizer, text[len(rendered) :], add_special_tokens=False)
            ids += piece
            mask += [int(is_trained)] * len(piece)
            rendered = text
    return ids, mask


def padding_id(tokenizer: Any) -> int:
    """The id used for right padding: pad, else EOS, else 0.

    Any id works: padded positions lie beyond `input_lengths` and have mask 0, so they are never
    trained on; falling back keeps tokenizers without a pad token (e.g. Llama's) usable.
    """
    for name in ("pad_token_id", "eos_token_id"):
        value = getattr(tokenizer, name, None)
        if value is not None:
            return int(value)
    return 0


def right_pad_batch(
    sequences: Sequence[Sequence[int]],
    masks: Sequence[Sequence[int]],
    pad_id: int,
    max_len: int | None = None,
) -> dict[str, torch.Tensor]:
    """Right-pad token sequences (cut to `max_len`) into the tensors every transform returns.

    Returns `input_ids` [B, T] long, `input_lengths` [B] long, `token_mask` [B, T] float and
    `truncated` [B] bool (True where a sequence was longer than `max_len`).

    Example:
        >>> out = right_pad_batch([[5, 6, 7], [8]], [[0, 1, 1], [1]], pad_id=0, max_len=2)
        >>> out["input_ids"].tolist(), out["token_mask"].tolist(), out["truncated"].tolist()
        ([[5, 6], [8, 0]], [[0.0, 1.0], [1.0, 0.0]], [True, False])
    """
    if not sequences:
        raise ValueError("right_pad_batch: no sequences; a batch needs at least one row")
    if max_len is not None and max_len <= 0:
        raise ValueError(f"right_pad_batch: max_len={max_len}; use a positive length or None")
    if len(masks) != len(sequences) or any(len(m) != len(s) for s, m in zip(sequences, masks, strict=False)):
        raise ValueError(
            "right_pad_batch: every sequence needs a mask of its own length "
            f"({len(sequences)} sequences, {len(masks)} masks)"
        )
    limit = max_len if max_len is not None else max(len(s) for s in sequences)
    lengths = [min(len(s), limit) for s in sequences]
    width = max(max(lengths), 1)
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    token_mask = torch.zeros((len(sequences), width), dtype=torch.float32)
    for row, (ids, mask, length) in enumerate(zip(sequences, masks, lengths, strict=True)):
        input_ids[row, :length] = torch.tensor(list(ids[:length]), dtype=torch.long)
        token_mask[row, :length] = torch.tensor(list(mask[:length]), dtype=torch.float32)
    return {
        "input_ids": input_ids,
        "input_lengths": torch.tensor(lengths, dtype=torch.long),
        "token_mask": token_mask,
        "truncated": torch.tensor([len(s) > limit for s in sequences], dtype=torch.bool),
    }
