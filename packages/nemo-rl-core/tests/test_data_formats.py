"""Dataset shapes users already have work without column settings: `messages` conversations,
TRL's prompt/completion (SFT) and prompt/chosen/rejected (DPO), plain and conversational; a
setting the user gave is kept, and errors on conversation rows name `data.messages_key`.

The tokenizer is nemo-rl-dtensor's offline character-level tokenizer with a ChatML template.
"""

from __future__ import annotations

import pytest
from nemo_rl.algorithms.dpo.data import DPODataTransform
from nemo_rl.algorithms.grpo.data import GRPOPromptTransform
from nemo_rl.algorithms.sft.data import SFTDataTransform
from nemo_rl.config import DataConfig
from nemo_rl.data import ChatFormatError, ColumnError, DataModule
from nemo_rl.data.formats import detect_columns

USER = {"role": "user", "content": "2+2?"}
ASSISTANT = {"role": "assistant", "content": "4"}
CHAT = {"messages": [{"role": "system", "content": "Be brief."}, USER, ASSISTANT]}


@pytest.fixture(scope="module")
def tok():
    testing = pytest.importorskip("nemo_rl_dtensor.testing")  # needs transformers + tokenizers
    return testing.build_char_tokenizer()


def masked_text(tok, batch, row: int) -> str:
    ids, mask = batch["input_ids"][row].tolist(), batch["token_mask"][row].tolist()
    return tok.decode([i for i, m in zip(ids, mask, strict=True) if m])


def detected(rows, algorithm: str, **given) -> DataConfig:
    dm = DataModule(rows, **given)
    return dm.detect_columns(algorithm)


# ------------------------------------------------------------------------------- detection
def test_messages_rows_are_conversations_for_sft_and_prompts_for_grpo():
    assert detected([CHAT], "sft").messages_key == "messages"
    assert detected([CHAT], "grpo").messages_key == "messages"
    other = {"id": 3, "conversations": CHAT["messages"]}
    assert detected([other], "sft").messages_key == "conversations"


def test_trl_prompt_completion_sets_the_answer_column():
    config = detected([{"prompt": "2+2?", "completion": "4"}], "sft")
    assert (config.prompt_key, config.answer_key, config.messages_key) == (
        "prompt", "completion", None)


def test_rows_matching_the_settings_and_dpo_rows_are_left_alone():
    assert detected([{"prompt": "a", "answer": "b", **CHAT}], "sft").messages_key is None
    pair = {"prompt": "a", "chosen": "b", "rejected": "c"}
    assert detected([pair], "dpo") == DataConfig()


def test_a_given_setting_is_kept_and_the_missing_column_error_names_messages_key():
    dm = DataModule([CHAT], prompt_key="question")
    config = dm.detect_columns("sft")
    assert config.messages_key is None and config.prompt_key == "question"
    with pytest.raises(ColumnError) as err:
        dm.validate_columns(["question", "answer"])
    assert "column 'messages' holds conversations: set data.messages_key=messages" in str(err.value)


def test_trainer_settings_count_as_given_only_when_set():
    row = {"prompt": "2+2?", "completion": "4"}
    assert detect_columns(DataConfig(), row, "sft")[0].answer_key == "completion"
    given = DataConfig(answer_key="answer")
    assert detect_columns(given, row, "sft") == (given, None)


# ------------------------------------------------------------------------------- transforms
def test_sft_on_messages_rows_trains_on_the_assistant_turn(tok):
    config = detected([CHAT], "sft")
    batch = SFTDataTransform(tok, config)([CHAT])
    assert masked_text(tok, batch, 0) == "4<|im_end|>\n"


def test_sft_on_trl_conversational_prompt_completion(tok):
    row = {"prompt": [USER], "completion": [ASSISTANT]}
    config = detected([row], "sft")
    batch = SFTDataTransform(tok, config)([row, {"prompt": "2+2?", "completion": "4"}])
    assert masked_text(tok, batch, 0) == masked_text(tok, batch, 1) == "4<|im_end|>\n"
    assert batch["input_ids"][0].tolist() == batch["input_ids"][1].tolist()


@pytest.mark.parametrize(
    "row",
    [
        {"prompt": "2+2?", "chosen": "4", "rejected": "5"},  # TRL standard, explicit prompt
        {"prompt": [USER], "chosen": [ASSISTANT],  # TRL conversational, explicit prompt
         "rejected": [{"role": "assistant", "content": "5"}]},
        {"chosen": [USER, ASSISTANT],  # TRL conversational, implicit prompt
         "rejected": [USER, {"role": "assistant", "content": "5"}]},
    ],
    ids=["standard", "conversational", "implicit-prompt"],
)
def test_dpo_trl_preference_rows_work_with_the_defaults(tok, row):
    dm = DataModule([row])
    transform = DPODataTransform(tok, dm.detect_columns("dpo"))
    dm.validate_columns(transform.required_columns(row))
    batch = transform([row])
    assert [masked_text(tok, batch, i) for i in (0, 1)] == ["4<|im_end|>\n", "5<|im_end|>\n"]
    assert tok.decode(batch["input_ids"][0].tolist()).count("2+2?") == 1


def test_grpo_prompt_from_messages_rows_drops_the_reference_answer(tok):
    batch = GRPOPromptTransform(tok, detected([CHAT], "grpo"))([CHAT])
    assert batch["messages"][0] == CHAT["messages"][:2]


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        ([USER], "no assistant message"),
        ([{"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"}], "ShareGPT"),
    ],
    ids=["no-assistant", "sharegpt"],
)
def test_bad_conversations_name_data_messages_key(tok, messages, expected):
    row = {"messages": messages}
    transform = SFTDataTransform(tok, detected([row], "sft"))
    with pytest.raises(ChatFormatError, match=expected) as err:
        transform([row])
    assert "column 'messages' (data.messages_key)" in str(err.value)


# ------------------------------------------------------------------------------- num_workers
def test_data_num_workers_is_not_a_setting():
    with pytest.raises(ValueError, match="num_workers"):
        DataConfig(num_workers=2)


def test_legacy_data_num_workers_is_dropped_with_a_reason():
    pytest.importorskip("omegaconf")
    from nemo_rl.compat import migrate_legacy_config

    legacy = {"sft": {"max_num_steps": 1}, "policy": {"model_name": "m"},
              "data": {"shuffle": True, "num_workers": 4}}
    result = migrate_legacy_config(legacy)
    assert result.mapping["data.num_workers"] is None
    assert "no dataloader workers" in result.dropped["data.num_workers"]
    assert result.config.data.shuffle is True
