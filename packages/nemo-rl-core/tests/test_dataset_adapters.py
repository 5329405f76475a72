"""Adapters of the datasets NeMo RL's example configs name (issue #18, item 6): each maps rows in
the dataset's own format, read from a local copy laid out as the hub repository is, to the
columns nemo-rl's trainers read. The fixtures are small hand-written rows in each format."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from nemo_rl import hub, registry
from nemo_rl.data import load_rows
from nemo_rl.data.sources import DatasetSourceError, locate_dataset

datasets = pytest.importorskip("datasets")

SQUAD = [
    {"id": "1", "title": "Paris", "context": "Paris is the capital of France.",
     "question": "Of which country is Paris the capital?",
     "answers": {"text": ["France", "France."], "answer_start": [24, 24]}},
    {"id": "2", "title": "Nile", "context": "The Nile flows north.",
     "question": "Which way does the Nile flow?", "answers": {"text": ["north"], "answer_start": [16]}},
]
HELPSTEER3 = [
    {"domain": "general", "language": "english", "context": [{"role": "user", "content": "Say hi"}],
     "response1": "Hi!", "response2": "No.", "overall_preference": -2, "individual_preference": []},
    {"domain": "code", "language": "english",
     "context": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "5"},
                 {"role": "user", "content": "Sure?"}],
     "response1": "Yes.", "response2": "No, it is 4.", "overall_preference": 3, "individual_preference": []},
    {"domain": "general", "language": "english", "context": [{"role": "user", "content": "Tie"}],
     "response1": "A", "response2": "B", "overall_preference": 0, "individual_preference": []},
]
OPENMATH = [
    {"problem": "What is 2+3?", "generated_solution": "2+3 = \\boxed{5}", "expected_answer": "5",
     "problem_source": "augmented_math"},
]
GSM8K = [
    {"question": "Tom has 3 apples and buys 4. How many?", "answer": "3+4=<<3+4=7>>7\n#### 7"},
    {"question": "Half of 10?", "answer": "10/2=5\n#### 5"},
]
DEEPSCALER = [{"problem": "Compute 6*7.", "answer": "42", "solution": "6*7=42"}]
AIME2024 = [{"id": 60, "problem": "Find x if x+1=3.", "solution": "x=2", "answer": "2", "url": "u",
             "year": "2024"}]
DAPO = [{"data_source": "math_dapo", "prompt": [{"role": "user", "content": "Solve: 1+1. Answer: $Answer"}],
         "ability": "MATH", "reward_model": {"ground_truth": "2", "style": "rule-lighteval/MATH_v2"},
         "extra_info": {"index": "a"}}]

# name, rows in the dataset's format, (subfolder in the hub repository), expected new columns
CASES = [
    ("squad", SQUAD, "plain_text", [
        {"messages": [{"role": "system", "content": "Paris is the capital of France."},
                      {"role": "user", "content": "Of which country is Paris the capital?"},
                      {"role": "assistant", "content": "France"}]},
        {"messages": [{"role": "system", "content": "The Nile flows north."},
                      {"role": "user", "content": "Which way does the Nile flow?"},
                      {"role": "assistant", "content": "north"}]},
    ]),
    ("HelpSteer3", HELPSTEER3, "preference", [
        {"prompt": [{"role": "user", "content": "Say hi"}],
         "chosen": [{"role": "assistant", "content": "Hi!"}],
         "rejected": [{"role": "assistant", "content": "No."}]},
        {"prompt": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "5"},
                    {"role": "user", "content": "Sure?"}],
         "chosen": [{"role": "assistant", "content": "No, it is 4."}],
         "rejected": [{"role": "assistant", "content": "Yes."}]},
    ]),
    ("OpenMathInstruct-2", OPENMATH, "data", [{"prompt": "What is 2+3?", "answer": "5"}]),
    ("gsm8k", GSM8K, "main", [
        {"prompt": "Tom has 3 apples and buys 4. How many?", "answer": "7",
         "solution": "3+4=<<3+4=7>>7\n#### 7"},
        {"prompt": "Half of 10?", "answer": "5", "solution": "10/2=5\n#### 5"},
    ]),
    ("DeepScaler", DEEPSCALER, "", [{"prompt": "Compute 6*7.", "answer": "42"}]),
    ("AIME2024", AIME2024, "data", [{"prompt": "Find x if x+1=3.", "answer": "2"}]),
    ("DAPOMath17K", DAPO, "data", [{"prompt": "Solve: 1+1. Answer: $Answer", "answer": "2"}]),
    ("DAPOMathAIME2024", DAPO, "data", [{"prompt": "Solve: 1+1. Answer: $Answer", "answer": "2"}]),
]


def write_hub_copy(root: Path, rows: list[dict], folder: str, splits=("train",)) -> Path:
    """Parquet shards named as the hub names them (`<folder>/<split>-00000-of-00001.parquet`)."""
    for split in splits:
        shard = root / folder / f"{split}-00000-of-00001.parquet"
        shard.parent.mkdir(parents=True, exist_ok=True)
        datasets.Dataset.from_list(rows).to_parquet(str(shard))
    return root


@pytest.mark.parametrize(("name", "rows", "folder", "expected"), CASES, ids=[c[0] for c in CASES])
def test_adapter_maps_a_local_copy_in_the_datasets_own_format(tmp_path, name, rows, folder, expected):
    copy = write_hub_copy(tmp_path / name, rows, folder, splits=("train", "validation"))
    loaded = load_rows(f"{name}:{copy}", split="validation")
    assert [{k: row[k] for k in want} for row, want in zip(loaded, expected, strict=True)] == expected
    # the original columns stay, so another data.*_key can pick them
    assert set(rows[0]) <= set(loaded[0])


@pytest.mark.parametrize(("name", "rows", "folder", "expected"), CASES, ids=[c[0] for c in CASES])
def test_adapter_maps_a_single_jsonl_file(tmp_path, name, rows, folder, expected):
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    loaded = load_rows(f"{name}:{path}")
    assert [{k: row[k] for k in want} for row, want in zip(loaded, expected, strict=True)] == expected


def test_every_adapter_is_registered_under_nemo_rl_s_name():
    assert {name for name, *_ in CASES} <= set(registry.available("datasets"))
    assert {registry.available("datasets")[name].package for name, *_ in CASES} == {"nemo-rl-core"}


def test_helpsteer3_ties_are_skipped_and_counted(tmp_path, caplog):
    path = tmp_path / "hs3.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in HELPSTEER3))
    with caplog.at_level(logging.WARNING, logger="nemo_rl"):
        assert len(load_rows(f"HelpSteer3:{path}")) == 2
    assert "dataset HelpSteer3: skipped 1 of 3 rows (overall_preference 0: a tie states no preference)" in caplog.text


def test_a_file_in_another_format_names_the_columns_and_the_fix(tmp_path):
    path = tmp_path / "mine.jsonl"
    path.write_text(json.dumps({"prompt": "1+1=", "answer": "2"}) + "\n")
    with pytest.raises(ValueError) as err:
        load_rows(f"squad:{path}")
    message = str(err.value)
    assert "dataset 'squad': row 0 is not in rajpurkar/squad's format (KeyError: 'context'" in message
    assert "columns present: prompt, answer" in message and "data.dataset=FILE" in message


def test_a_missing_split_or_copy_is_one_clear_error(tmp_path):
    copy = write_hub_copy(tmp_path / "squad", SQUAD, "plain_text")
    with pytest.raises(DatasetSourceError, match=r"dataset 'squad' at .*: .*validation"):
        load_rows(f"squad:{copy}", split="validation")
    with pytest.raises(DatasetSourceError, match=r"the local copy '/no/such/dir' for the registered dataset 'squad' does not exist"):
        locate_dataset("squad:/no/such/dir")


def test_unreachable_hub_says_how_to_use_a_local_copy(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens: refused at once
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    hub.hub_reachable.cache_clear()
    try:
        for check in (lambda: locate_dataset("gsm8k"), lambda: load_rows("gsm8k")):
            with pytest.raises(DatasetSourceError) as err:
                check()
            assert "dataset 'gsm8k' is openai/gsm8k on the Hugging Face hub" in str(err.value)
            assert ("`hf download openai/gsm8k --repo-type dataset --local-dir DIR` where there "
                    "is network) and set data.dataset=gsm8k:DIR") in str(err.value)
    finally:
        hub.hub_reachable.cache_clear()


def test_a_registered_dataset_without_a_path_parameter_refuses_a_local_copy(tmp_path):
    @registry.register("datasets", "fixed_rows")
    def fixed_rows(split="train"):
        return [{"prompt": "a", "answer": "b"}]

    try:
        with pytest.raises(DatasetSourceError, match="registered dataset 'fixed_rows' does not read a local copy"):
            load_rows(f"fixed_rows:{tmp_path}")
    finally:
        registry.unregister("datasets", "fixed_rows")
