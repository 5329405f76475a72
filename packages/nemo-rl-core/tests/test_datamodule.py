"""load_rows (every kind of source and its errors) and DataModule (splits, columns, batches)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from nemo_rl import registry
from nemo_rl.config import DataConfig
from nemo_rl.data import (
    ColumnError,
    DataModule,
    DatasetSourceError,
    load_rows,
    register_dataset,
)

ROWS = [{"problem": f"{i}+{i}=", "solution": str(2 * i)} for i in range(5)]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture
def registered():
    """Register datasets for one test and remove them afterwards."""
    names: list[str] = []

    def add(name: str, factory):
        register_dataset(name)(factory)
        names.append(name)

    yield add
    for name in names:
        registry.unregister("datasets", name)


# ----------------------------------------------------------------------------- load_rows
def test_list_of_dicts_is_used_as_is_and_a_non_dict_row_is_named():
    assert load_rows(ROWS) == ROWS
    with pytest.raises(DatasetSourceError, match=r"row 1 is a str \('oops'\), not a dict"):
        load_rows([{"a": 1}, "oops"])


def test_jsonl_skips_blank_lines_and_reports_the_bad_line(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text('{"a": 1}\n\n{"a": 2}\n')
    assert load_rows(path) == [{"a": 1}, {"a": 2}]
    path.write_text('{"a": 1}\n{"a": \n')
    with pytest.raises(DatasetSourceError, match="train.jsonl line 2 is not valid JSON"):
        load_rows(str(path))
    path.write_text('{"a": 1}\n[1, 2]\n')
    with pytest.raises(DatasetSourceError, match="line 2 is a JSON list, not an object"):
        load_rows(str(path))


def test_json_list_and_json_split_mapping(tmp_path):
    flat = tmp_path / "flat.json"
    flat.write_text(json.dumps(ROWS))
    assert load_rows(str(flat), split="anything") == ROWS  # one split: `split` does not apply
    splits = tmp_path / "splits.json"
    splits.write_text(json.dumps({"train": ROWS[:3], "test": ROWS[3:]}))
    assert load_rows(str(splits), split="test") == ROWS[3:]
    with pytest.raises(DatasetSourceError, match="has splits train, test but not 'dev'"):
        load_rows(str(splits), split="dev")


def test_missing_file_names_the_path_and_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DatasetSourceError) as err:
        load_rows("x.jsonl")
    assert str(err.value) == f"dataset file 'x.jsonl' not found (cwd: {tmp_path}): check the path"


def test_empty_sources_are_errors(tmp_path):
    with pytest.raises(DatasetSourceError, match=r"\(the given list\) has no rows"):
        load_rows([])
    with pytest.raises(DatasetSourceError, match="'empty.jsonl' has no rows"):
        load_rows(str(write_jsonl(tmp_path / "empty.jsonl", [])))


def test_unsupported_object_is_an_error():
    with pytest.raises(DatasetSourceError, match="cannot load a dataset from a int"):
        load_rows(42)


def test_registered_dataset_with_and_without_split_argument(registered):
    registered("toy_fixed", lambda: ROWS[:2])
    registered("toy_split", lambda split: [{"split": split}])
    assert load_rows("toy_fixed") == ROWS[:2]
    assert load_rows("toy_split", split="test") == [{"split": "test"}]


def test_registered_dataset_may_return_a_file_path(registered, tmp_path):
    path = write_jsonl(tmp_path / "data.jsonl", ROWS)
    registered("toy_path", lambda: path)
    assert load_rows("toy_path") == ROWS
    registered("toy_bad_path", lambda: tmp_path / "nope.jsonl")
    with pytest.raises(DatasetSourceError, match="returned the path .*nope.jsonl.*not a file"):
        load_rows("toy_bad_path")


def test_hf_dataset_and_dataset_dict():
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_list(ROWS)
    assert load_rows(ds) == ROWS
    dd = datasets.DatasetDict(train=ds, test=datasets.Dataset.from_list(ROWS[:1]))
    assert load_rows(dd, split="test") == ROWS[:1]
    with pytest.raises(DatasetSourceError, match="has no split 'dev'; its splits are train, test"):
        load_rows(dd, split="dev")


def test_csv_and_parquet_files(tmp_path):
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_list(ROWS)
    ds.to_csv(str(tmp_path / "rows.csv"), index=False)
    ds.to_parquet(str(tmp_path / "rows.parquet"))
    assert load_rows(str(tmp_path / "rows.parquet")) == ROWS
    csv_rows = load_rows(str(tmp_path / "rows.csv"))
    assert [row["problem"] for row in csv_rows] == [row["problem"] for row in ROWS]


def test_csv_without_datasets_installed_names_the_extra(tmp_path, monkeypatch):
    (tmp_path / "rows.csv").write_text("a,b\n1,2\n")
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` fail
    with pytest.raises(ImportError, match=r"pip install nemo-rl-core\[datasets\]"):
        load_rows(str(tmp_path / "rows.csv"))


def test_unknown_name_reports_the_failed_hub_load_in_one_line(monkeypatch, tmp_path):
    datasets = pytest.importorskip("datasets")
    import huggingface_hub.constants

    # Offline mode makes the hub attempt fail at once instead of retrying for ~25 s (and, set
    # in the environment too, skips nemo-rl's own reachability probe, so `datasets` is asked).
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DatasetSourceError) as err:
        load_rows("nobody/no-such-dataset")
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(
        f"dataset 'nobody/no-such-dataset' does not exist locally (cwd: {tmp_path}), is not a "
        "registered dataset"
    )
    assert "loading it from the HF hub failed: ConnectionError: Couldn't reach" in message


# ----------------------------------------------------------------------------- DataModule
def test_train_and_val_rows_with_max_val_samples(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", ROWS)
    val = write_jsonl(tmp_path / "val.jsonl", ROWS[::-1])
    dm = DataModule(str(train), str(val), max_val_samples=2)
    assert dm.train_rows == ROWS
    assert dm.val_rows == [ROWS[4], ROWS[3]]
    assert DataModule(ROWS).val_rows == []


def test_val_split_takes_another_split_of_the_training_source(tmp_path):
    path = tmp_path / "splits.json"
    path.write_text(json.dumps({"train": ROWS[:3], "test": ROWS[3:]}))
    dm = DataModule(str(path), val_split="test")
    assert (dm.train_rows, dm.val_rows) == (ROWS[:3], ROWS[3:])


def test_val_split_of_a_single_split_source_is_an_error_not_the_training_rows(tmp_path):
    dm = DataModule(str(write_jsonl(tmp_path / "train.jsonl", ROWS)), val_split="test")
    assert dm.train_rows == ROWS  # loading is lazy; only the validation rows fail
    with pytest.raises(DatasetSourceError, match="'train.jsonl', which has a single split"):
        _ = dm.val_rows


def test_missing_column_names_the_file_the_columns_and_the_fix(tmp_path):
    dm = DataModule(str(write_jsonl(tmp_path / "train.jsonl", ROWS)), prompt_key="question")
    with pytest.raises(ColumnError) as err:
        dm.validate_columns(["question", "answer"])
    assert str(err.value) == (
        "column 'question' not found in 'train.jsonl'; columns present: problem, solution; "
        "set data.prompt_key=problem"
    )
    with pytest.raises(ColumnError, match="column 'answer' .*set data.answer_key=solution"):
        DataModule(ROWS, prompt_key="problem").validate_columns(["problem", "answer"])


def test_missing_column_in_a_later_row_or_in_val_is_found():
    rows = [*ROWS, {"problem": "9+9="}]
    dm = DataModule(rows, prompt_key="problem", answer_key="solution")
    with pytest.raises(ColumnError, match=r"'solution' not found in \(the given list\) \(row 5\)"):
        dm.validate_columns(["problem", "solution"])
    dm = DataModule(ROWS, [{"other": 1}], prompt_key="problem")
    with pytest.raises(ColumnError, match="columns present: other; set data.prompt_key to the column"):
        dm.validate_columns(["problem"])


def test_from_config_uses_its_sources_and_columns_and_keeps_the_config(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", ROWS)
    cfg = DataConfig(dataset=str(train), val_dataset=str(train), prompt_key="problem", shuffle=False)
    dm = DataModule.from_config(cfg, max_val_samples=1)
    assert dm.config is cfg
    assert len(dm.train_rows) == 5 and dm.val_rows == ROWS[:1]
    dm.validate_columns(["problem"])
    with pytest.raises(DatasetSourceError, match="data.dataset is not set"):
        DataModule.from_config(DataConfig())


def test_sampler_batches_and_val_batches(tmp_path):
    dm = DataModule(ROWS, ROWS[:3])
    sampler = dm.make_sampler(batch_size=2, shuffle=False)
    assert dm.rows_at(next(sampler)) == ROWS[:2]
    assert [len(batch) for batch in dm.val_batches(2)] == [2, 1]
    # make_sampler(shuffle=None) follows data.shuffle; seed 0 would shuffle these 5 rows.
    path = write_jsonl(tmp_path / "train.jsonl", ROWS)
    sampler = DataModule.from_config(DataConfig(dataset=str(path), shuffle=False)).make_sampler(2)
    assert (next(sampler), next(sampler)) == ([0, 1], [2, 3])
    assert DataModule(ROWS).make_sampler(5).epoch_order(0) != [0, 1, 2, 3, 4]


def test_bad_arguments_are_errors():
    with pytest.raises(DatasetSourceError, match="no training dataset given"):
        DataModule(None)
    with pytest.raises(ValueError, match="max_val_samples=0"):
        DataModule(ROWS, max_val_samples=0)


def test_importing_nemo_rl_data_imports_no_optional_package():
    code = (
        "import sys, nemo_rl, nemo_rl.data, nemo_rl.algorithms.sft.data, "
        "nemo_rl.algorithms.grpo.data, nemo_rl.algorithms.dpo.data\n"
        "print(sorted(m for m in ('transformers', 'datasets', 'ray', 'vllm') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
