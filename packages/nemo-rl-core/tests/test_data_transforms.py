"""Chat rendering/tokenisation helpers and the SFT, GRPO and DPO data transforms.

The tokenizer is nemo-rl-dtensor's offline character-level tokenizer with a ChatML template:
one id per character, so expected ids and masks can be counted by hand. Ids 0..5 are
<|pad|> <|bos|> <|eos|> <|im_start|> <|im_end|> <|unk|>; <|im_end|> is the EOS token.
"""

from __future__ import annotations

import logging
import pickle

import pytest
import torch
from nemo_rl.algorithms.dpo.data import DPODataTransform
from nemo_rl.algorithms.grpo.data import GRPOPromptTransform
from nemo_rl.algorithms.sft.data import SFTDataTransform
from nemo_rl.config import DataConfig
from nemo_rl.data import (
    BatchedDataDict,
    ChatFormatError,
    render_prompt_messages,
    tokenize_conversation,
    tokenize_prompt,
)
from nemo_rl.data.chat import right_pad_batch

PAD, IM_START, IM_END = 0, 3, 4
USER_HI = [{"role": "user", "content": "hi"}]
# "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n": 1 + 4 + 1 + 2 + 1 + 1 + 1 + 9 + 1
PROMPT_HI_LEN = 21


@pytest.fixture(scope="module")
def tok():
    testing = pytest.importorskip("nemo_rl_dtensor.testing")  # needs transformers + tokenizers
    return testing.build_char_tokenizer()


def ids_of(tok, text: str) -> list[int]:
    return tok(text, add_special_tokens=False)["input_ids"]


def masked_text(tok, batch, row: int) -> str:
    ids, mask = batch["input_ids"][row].tolist(), batch["token_mask"][row].tolist()
    return tok.decode([i for i, m in zip(ids, mask, strict=True) if m])


# ---------------------------------------------------------------- render_prompt_messages
def test_prompt_template_may_use_other_columns_and_system_prompt_comes_first():
    row = {"question": "2+2?", "unit": "apples"}
    assert render_prompt_messages(
        row, prompt_key="question", system_prompt="Be brief.", prompt_template="{prompt} In {unit}."
    ) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "2+2? In apples."},
    ]


def test_messages_column_drops_the_trailing_assistant_turn_and_keeps_its_own_system():
    conversation = [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "reference"},
    ]
    messages = render_prompt_messages(
        {"chat": conversation}, messages_key="chat", system_prompt="ignored: already has one"
    )
    assert messages == conversation[:2]
    assert len(conversation) == 3  # the row itself is not modified


def test_prompt_rendering_errors_name_the_column_and_the_fix():
    with pytest.raises(ChatFormatError, match=r"no column 'prompt'; columns present: q; set data.prompt_key"):
        render_prompt_messages({"q": "x"})
    with pytest.raises(ChatFormatError, match=r"uses \{lang\}, which is not a column"):
        render_prompt_messages({"prompt": "x"}, prompt_template="{prompt} in {lang}")
    with pytest.raises(ChatFormatError, match="unset data.prompt_template"):
        render_prompt_messages({"m": USER_HI}, messages_key="m", prompt_template="{prompt}")
    with pytest.raises(ChatFormatError, match="message 0 is 'hi'"):
        render_prompt_messages({"m": ["hi"]}, messages_key="m")


# ---------------------------------------------------------------- tokenisation
def test_tokenize_prompt_ends_with_the_generation_prompt_and_matches_the_template(tok):
    ids = tokenize_prompt(tok, USER_HI)
    assert ids == [IM_START, *ids_of(tok, "user\nhi"), IM_END, *ids_of(tok, "\n"),
                   IM_START, *ids_of(tok, "assistant\n")]
    assert len(ids) == PROMPT_HI_LEN
    # transformers 5 returns a BatchEncoding from tokenize=True; the ids must agree with it.
    assert ids == list(tok.apply_chat_template(USER_HI, tokenize=True, add_generation_prompt=True)["input_ids"])


def test_tokenize_prompt_without_chat_template_concatenates_contents(tok):
    messages = [{"role": "system", "content": "S:"}, {"role": "user", "content": "hi"}]
    assert tokenize_prompt(tok, messages, apply_chat_template=False) == ids_of(tok, "S:hi")


def test_conversation_mask_covers_exactly_the_assistant_turns_with_end_of_turn(tok):
    messages = [*USER_HI, {"role": "assistant", "content": "yo"},
                {"role": "user", "content": "ok"}, {"role": "assistant", "content": "k"}]
    ids, mask = tokenize_conversation(tok, messages)
    assert ids == ids_of(tok, tok.apply_chat_template(messages, tokenize=False))
    # Turn 1 "yo<|im_end|>\n" (4 tokens) after the 21-token prompt; then "<|im_start|>user\nok
    # <|im_end|>\n<|im_start|>assistant\n" (21 tokens) untrained, then "k<|im_end|>\n" (3 tokens).
    assert mask == [0] * 21 + [1] * 4 + [0] * 21 + [1] * 3
    _, last_only = tokenize_conversation(tok, messages, train_on="last_assistant")
    assert last_only == [0] * 46 + [1] * 3
    _, everything = tokenize_conversation(tok, messages, train_on="all")
    assert everything == [1] * 49


def test_conversation_without_chat_template_is_prompt_answer_eos(tok):
    ids, mask = tokenize_conversation(
        tok, [*USER_HI, {"role": "assistant", "content": "yo"}], apply_chat_template=False
    )
    assert ids == [*ids_of(tok, "hiyo"), IM_END]
    assert mask == [0, 0, 1, 1, 1]


def test_missing_or_non_prefix_stable_template_is_a_clear_error(tok):
    no_template = pickle.loads(pickle.dumps(tok))
    no_template.chat_template = None
    with pytest.raises(ChatFormatError, match="no chat template; .*data.apply_chat_template=false"):
        tokenize_prompt(no_template, USER_HI)
    counting = pickle.loads(pickle.dumps(tok))
    # Writes the message count first, so a longer conversation re-renders its beginning.
    counting.chat_template = "{{ messages|length }}{% for m in messages %}{{ m['content'] }}{% endfor %}"
    with pytest.raises(ChatFormatError, match="re-renders earlier turns differently"):
        tokenize_conversation(counting, [*USER_HI, {"role": "assistant", "content": "yo"}])


def test_right_pad_batch_pads_cuts_and_flags():
    out = right_pad_batch([[5, 6, 7], [8]], [[0, 1, 1], [1]], pad_id=9, max_len=2)
    assert out["input_ids"].tolist() == [[5, 6], [8, 9]]
    assert out["input_lengths"].tolist() == [2, 1]
    assert out["token_mask"].tolist() == [[0.0, 1.0], [1.0, 0.0]]
    assert out["truncated"].tolist() == [True, False]
    with pytest.raises(ValueError, match="a mask of its own length"):
        right_pad_batch([[1, 2]], [[1]], pad_id=0)


# ---------------------------------------------------------------- SFT
def test_sft_batch_masks_the_answer_and_pads_with_the_pad_id(tok):
    transform = SFTDataTransform(tok, DataConfig(answer_key="solution"), max_seq_len=64)
    batch = transform([{"prompt": "hi", "solution": "yo"}, {"prompt": "hello", "solution": "a"}])
    assert isinstance(batch, BatchedDataDict)
    assert batch["input_ids"].dtype == torch.long and batch["token_mask"].dtype == torch.float32
    assert batch["input_lengths"].tolist() == [25, 27]  # 21 + "yo<|im_end|>\n"; 24 + "a<|im_end|>\n"
    assert batch["input_ids"].shape == (2, 27)
    assert batch["input_ids"][0, 25:].tolist() == [PAD, PAD]
    assert batch["token_mask"][0].tolist() == [0.0] * 21 + [1.0] * 4 + [0.0] * 2
    assert masked_text(tok, batch, 1) == "a<|im_end|>\n"
    assert batch["sample_mask"].tolist() == [1.0, 1.0]
    assert batch["truncated"].tolist() == [False, False]


def test_sft_truncates_long_sequences_and_drops_samples_left_without_targets(tok):
    transform = SFTDataTransform(tok, None, max_seq_len=23)
    batch = transform([{"prompt": "hi", "answer": "yo"}, {"prompt": "a long prompt", "answer": "x"}])
    assert batch["input_lengths"].tolist() == [23, 23]
    assert batch["truncated"].tolist() == [True, True]
    assert masked_text(tok, batch, 0) == "yo"  # the cut removed "<|im_end|>\n"
    assert batch["sample_mask"].tolist() == [1.0, 0.0]  # row 1 lost its whole answer


def test_sft_conversations_loss_on_prompt_and_picklability(tok):
    cfg = DataConfig(messages_key="chat", system_prompt="S")
    row = {"chat": [*USER_HI, {"role": "assistant", "content": "yo"}]}
    batch = SFTDataTransform(tok, cfg, None)([row])
    assert tok.decode(batch["input_ids"][0]).startswith("<|im_start|>system\nS<|im_end|>\n")
    assert masked_text(tok, batch, 0) == "yo<|im_end|>\n"
    all_tokens = SFTDataTransform(tok, cfg, None, loss_on_prompt=True)([row])
    assert all_tokens["token_mask"].sum().item() == all_tokens["input_lengths"].item()
    clone = pickle.loads(pickle.dumps(SFTDataTransform(tok, cfg, None)))
    assert torch.equal(clone([row])["input_ids"], batch["input_ids"])


def test_sft_errors_name_the_row_and_column(tok):
    transform = SFTDataTransform(tok, None, 32)
    with pytest.raises(ChatFormatError, match=r"SFT row 1 of the batch: row has no column 'answer'"):
        transform([{"prompt": "a", "answer": "b"}, {"prompt": "a"}])
    no_reply = SFTDataTransform(tok, DataConfig(messages_key="chat"), 32)
    with pytest.raises(ChatFormatError, match="has no assistant message"):
        no_reply([{"chat": USER_HI}])
    assert transform.required_columns() == ["prompt", "answer"]
    assert no_reply.required_columns() == ["chat"]


# ---------------------------------------------------------------- GRPO
def test_grpo_prompt_batch_carries_messages_rows_and_generation_prompt(tok):
    cfg = DataConfig(prompt_key="question", prompt_template="Q: {prompt}")
    rows = [{"question": "hi", "answer": "2"}, {"question": "hello", "answer": "3"}]
    batch = GRPOPromptTransform(tok, cfg)(rows)
    assert batch["input_lengths"].tolist() == [PROMPT_HI_LEN + 3, PROMPT_HI_LEN + 6]
    first = batch["input_ids"][0, : batch["input_lengths"][0]].tolist()
    assert tok.decode(first) == "<|im_start|>user\nQ: hi<|im_end|>\n<|im_start|>assistant\n"
    assert batch["messages"][1] == [{"role": "user", "content": "Q: hello"}]
    assert batch["rows"] == rows
    assert batch["token_mask"].sum().item() == 0
    assert batch["sample_mask"].tolist() == [1.0, 1.0]


def test_grpo_over_long_prompts_are_filtered_one_by_one_with_one_warning(tok, caplog):
    transform = GRPOPromptTransform(tok, None, max_prompt_len=PROMPT_HI_LEN)
    with caplog.at_level(logging.WARNING):
        batch = transform([{"prompt": "hi"}, {"prompt": "hi there"}])
        transform([{"prompt": "hi there"}])  # a later batch: counted by the flags, not said again
    assert batch["sample_mask"].tolist() == [1.0, 0.0]
    assert batch["filtered"].tolist() == [False, True]
    assert batch["truncated"].tolist() == [False, False]
    assert batch["input_lengths"].tolist() == [PROMPT_HI_LEN, 1]  # the filtered one keeps 1 token
    assert batch["input_ids"].shape == (2, PROMPT_HI_LEN)
    said = [r.getMessage() for r in caplog.records if "prompt limit" in r.getMessage()]
    assert len(said) == 1, said
    assert "1 of 2 prompts are longer than the prompt limit of 21 tokens (longest 27 tokens" in said[0]
    assert "policy.max_total_sequence_length" in said[0] and "overlong_prompts: truncate" in said[0]


def test_grpo_over_long_prompts_can_keep_their_last_tokens(tok, caplog):
    transform = GRPOPromptTransform(tok, None, max_prompt_len=PROMPT_HI_LEN, overlong_prompts="truncate")
    with caplog.at_level(logging.WARNING):
        batch = transform([{"prompt": "hi"}, {"prompt": "hi there"}])
    assert batch["sample_mask"].tolist() == [1.0, 1.0]
    assert batch["filtered"].tolist() == [False, False]
    assert batch["truncated"].tolist() == [False, True]
    kept = tok.decode(batch["input_ids"][1, : batch["input_lengths"][1]].tolist())
    assert kept.endswith("hi there<|im_end|>\n<|im_start|>assistant\n")  # the generation prompt stays
    assert len(batch["input_ids"][1]) == PROMPT_HI_LEN
    assert "they keep their last 21 tokens (counted as data/prompts_truncated)" in caplog.text


def test_grpo_errors_name_the_row(tok):
    with pytest.raises(ChatFormatError, match="GRPO row 0 of the batch: row has no column 'prompt'"):
        GRPOPromptTransform(tok)([{"question": "x"}])
    assert GRPOPromptTransform(tok, {"messages_key": "m"}).required_columns() == ["m"]


# ---------------------------------------------------------------- DPO
def test_dpo_interleaves_chosen_and_rejected_with_response_only_masks(tok):
    batch = DPODataTransform(tok, None, 64)(
        [{"prompt": "hi", "chosen": "good", "rejected": "bad"},
         {"prompt": "hey", "chosen": "yes", "rejected": "no"}]
    )
    assert batch["input_ids"].shape[0] == 4
    assert [masked_text(tok, batch, r) for r in range(4)] == [
        "good<|im_end|>\n", "bad<|im_end|>\n", "yes<|im_end|>\n", "no<|im_end|>\n"
    ]
    assert batch["input_lengths"].tolist() == [PROMPT_HI_LEN + 6, PROMPT_HI_LEN + 5, PROMPT_HI_LEN + 1 + 5, PROMPT_HI_LEN + 1 + 4]
    assert batch["sample_mask"].tolist() == [1.0] * 4


def test_dpo_conversation_pairs_use_the_shared_prefix_as_prompt(tok):
    history = [*USER_HI, {"role": "assistant", "content": "yo"}, {"role": "user", "content": "ok"}]
    row = {"chosen": [*history, {"role": "assistant", "content": "A"}],
           "rejected": [*history, {"role": "assistant", "content": "B"}]}
    transform = DPODataTransform(tok, None, None)
    batch = transform([row])
    # The earlier assistant turn "yo" is prompt here: only the final response is trained on.
    assert [masked_text(tok, batch, r) for r in range(2)] == ["A<|im_end|>\n", "B<|im_end|>\n"]
    assert transform.required_columns(row) == ["chosen", "rejected"]
    assert transform.required_columns() == ["prompt", "chosen", "rejected"]
    only_responses = {"prompt": USER_HI, "chosen": row["chosen"][-1:], "rejected": row["rejected"][-1:]}
    assert masked_text(tok, transform([only_responses]), 0) == "A<|im_end|>\n"


def test_dpo_bad_pairs_are_clear_errors(tok):
    transform = DPODataTransform(tok, None, None)
    with pytest.raises(ChatFormatError, match="must both be strings or both message lists"):
        transform([{"prompt": "p", "chosen": "a", "rejected": [{"role": "assistant", "content": "b"}]}])
    mismatch = {"chosen": [*USER_HI, {"role": "assistant", "content": "a"}],
                "rejected": [{"role": "user", "content": "other"}, {"role": "assistant", "content": "b"}]}
    with pytest.raises(ChatFormatError, match="DPO row 0 of the batch: .*differ"):
        transform([mismatch])
    with pytest.raises(ChatFormatError, match="last message is from 'user'"):
        transform([{"chosen": USER_HI * 2, "rejected": USER_HI * 2}])


def test_dpo_pair_loses_both_samples_when_one_response_is_cut_away(tok):
    batch = DPODataTransform(tok, None, PROMPT_HI_LEN + 1)(
        [{"prompt": "hi", "chosen": "g", "rejected": "b"},
         {"prompt": "hi there", "chosen": "g", "rejected": "b"}]
    )
    assert batch["truncated"].tolist() == [True, True, True, True]
    assert batch["sample_mask"].tolist() == [1.0, 1.0, 0.0, 0.0]
