"""Tests of the Logger facade and its console/JSONL backends (the optional ones only for errors)."""

from __future__ import annotations

import json
import math
import sys

import pytest
import torch
from nemo_rl import registry
from nemo_rl.config import LoggerConfig
from nemo_rl.infra.logging import Logger, backend_names, read_metrics
from nemo_rl.infra.logging.console import format_metric_value, summary_line
from nemo_rl.infra.logging.values import as_metric_value, flatten_hyperparams
from nemo_rl.registry import PluginNotFoundError


def test_jsonl_is_written_even_when_not_listed(tmp_path):
    with Logger(LoggerConfig(backends=[]), tmp_path) as logger:
        logger.log_metrics({"loss": 0.5, "tokens": 12}, step=1, prefix="train")
        logger.log_metrics({"loss": 0.25}, step=2, prefix="train/")
    records = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in records] == [1, 2]
    assert records[0]["train/loss"] == 0.5 and records[0]["train/tokens"] == 12
    assert records[1]["train/loss"] == 0.25
    assert all(isinstance(r["time"], float) for r in records)
    assert records[0]["time"] <= records[1]["time"]


def test_backend_names_put_jsonl_first_once():
    assert backend_names(LoggerConfig(backends=["console", "jsonl", "console"])) == [
        "jsonl",
        "console",
    ]


def test_non_finite_values_are_null_in_jsonl_and_do_not_crash_console(tmp_path, capsys):
    with Logger(LoggerConfig(backends=["console"]), tmp_path) as logger:
        logger.log_metrics({"loss": float("nan"), "kl": float("inf"), "reward": 1.0}, step=3)
    text = (tmp_path / "metrics.jsonl").read_text()
    assert "NaN" not in text and "Infinity" not in text
    record = json.loads(text)
    assert record["loss"] is None and record["kl"] is None and record["reward"] == 1.0
    assert "loss nan" in capsys.readouterr().out


def test_tensor_scalars_are_unwrapped_and_non_numbers_rejected(tmp_path):
    with Logger(LoggerConfig(backends=[]), tmp_path) as logger:
        logger.log_metrics({"loss": torch.tensor(0.5), "ok": True}, step=0)
        with pytest.raises(TypeError, match="metric 'vec'.*one-element tensor"):
            logger.log_metrics({"vec": torch.tensor([1.0, 2.0])}, step=1)
        with pytest.raises(TypeError, match="metric 'name'"):
            logger.log_metrics({"name": "abc"}, step=1)
        with pytest.raises(ValueError, match="step must be a non-negative int"):
            logger.log_metrics({"loss": 1.0}, step=-1)
    (record,) = read_metrics(tmp_path)  # the rejected calls wrote nothing
    del record["time"]
    assert record == {"step": 0, "loss": 0.5, "ok": 1}


def test_reserved_names_need_a_prefix(tmp_path):
    with Logger(LoggerConfig(backends=[]), tmp_path) as logger:
        with pytest.raises(ValueError, match="'time' is reserved"):
            logger.log_metrics({"time": 1.5}, step=1)
        logger.log_metrics({"time": 1.5}, step=1, prefix="timing")
    assert read_metrics(tmp_path)[0]["timing/time"] == 1.5


def test_a_resumed_run_appends_to_the_same_file(tmp_path):
    for step in (1, 2):
        with Logger(LoggerConfig(backends=[]), tmp_path) as logger:
            logger.log_metrics({"loss": float(step)}, step=step)
    assert [r["loss"] for r in read_metrics(tmp_path)] == [1.0, 2.0]


def test_hyperparams_accept_a_pydantic_config(tmp_path):
    with Logger(LoggerConfig(backends=[]), tmp_path) as logger:
        logger.log_hyperparams(LoggerConfig(run_name="demo"))
    saved = json.loads((tmp_path / "hyperparams.json").read_text())
    assert saved["run_name"] == "demo" and saved["wandb"]["project"] == "nemo-rl"


def test_hyperparams_reject_other_types(tmp_path):
    with Logger(LoggerConfig(backends=[]), tmp_path) as logger, pytest.raises(TypeError):
        logger.log_hyperparams(["lr", 1e-6])


def test_logging_after_close_is_an_error(tmp_path):
    logger = Logger(LoggerConfig(backends=[]), tmp_path)
    logger.close()
    logger.close()  # a second close is harmless
    with pytest.raises(RuntimeError, match="is closed"):
        logger.log_metrics({"loss": 1.0}, step=1)


def test_plugin_backends_get_prefixed_metrics(tmp_path):
    class RecordingBackend:
        def __init__(self, config, run_dir):
            self.metrics, self.params, self.closed = [], [], False

        def log_metrics(self, metrics, step):
            self.metrics.append((step, dict(metrics)))

        def log_hyperparams(self, params):
            self.params.append(params)

        def close(self):
            self.closed = True

    registry.register("loggers", "recording")(RecordingBackend)
    try:
        with Logger(LoggerConfig(backends=["recording"]), tmp_path) as logger:
            plugin = logger.backends[1]
            logger.log_metrics({"acc": 0.75}, step=7, prefix="val")
            logger.log_hyperparams({"a": {"b": 1}})
    finally:
        registry.unregister("loggers", "recording")
    assert isinstance(plugin, RecordingBackend)
    assert plugin.metrics == [(7, {"val/acc": 0.75})]
    assert plugin.params == [{"a": {"b": 1}}]
    assert plugin.closed


def test_unknown_backend_suggests_the_close_name(tmp_path):
    with pytest.raises(PluginNotFoundError, match="did you mean 'console'"):
        Logger(LoggerConfig(backends=["consol"]), tmp_path)


@pytest.mark.parametrize(
    ("name", "modules"),
    [
        ("tensorboard", ["tensorboard", "torch.utils.tensorboard"]),
        ("wandb", ["wandb"]),
        ("mlflow", ["mlflow"]),
    ],
)
def test_missing_optional_library_names_the_extra(tmp_path, monkeypatch, name, modules):
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail
    with pytest.raises(ImportError, match=rf"pip install nemo-rl-core\[{name}\]"):
        Logger(LoggerConfig(backends=[name]), tmp_path)


def test_console_prints_one_line_per_step(tmp_path, capsys):
    with Logger(LoggerConfig(backends=["console"]), tmp_path) as logger:
        logger.log_metrics({"reward": 0.5, "loss": 0.123456}, step=4, prefix="train")
    out = capsys.readouterr().out
    assert out == "step 4 train | loss 0.1235 | reward 0.5\n"


def test_summary_line_orders_priority_names_and_caps_the_count():
    metrics = {f"train/extra{i}": i for i in range(10)}
    metrics["train/lr"] = 1e-6
    metrics["train/loss"] = 2.0
    line = summary_line(metrics, step=9)
    assert line == "step 9 train | loss 2 | lr 1.00e-06 | extra0 0 | extra1 1 | extra2 2 | extra3 3"


def test_summary_line_keeps_full_names_when_prefixes_differ():
    assert summary_line({"train/loss": 1.5, "val/loss": 2.5}, step=1) == (
        "step 1 | train/loss 1.5 | val/loss 2.5"
    )


def test_format_metric_value():
    assert format_metric_value(3) == "3"
    assert format_metric_value(0.0) == "0"
    assert format_metric_value(123456.0) == "1.23e+05"
    assert format_metric_value(12.3456) == "12.35"
    assert format_metric_value(-0.0001) == "-1.00e-04"
    assert format_metric_value(float("-inf")) == "-inf"


def test_value_helpers():
    assert as_metric_value("x", torch.tensor([2])) == 2
    assert math.isnan(as_metric_value("x", float("nan")))
    assert flatten_hyperparams({"a": {"b": 1, "c": {"d": "e"}}, "f": [1]}) == {
        "a.b": 1,
        "a.c.d": "e",
        "f": [1],
    }


def test_read_metrics_skips_a_torn_last_line_but_not_a_corrupt_middle_one(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "loss": 1.0}\n{"step": 2, "lo')
    assert read_metrics(path) == [{"step": 1, "loss": 1.0}]
    path.write_text('{"step": 1}\nnot json\n{"step": 3}\n')
    with pytest.raises(ValueError, match=r"metrics.jsonl:2 is not valid JSON"):
        read_metrics(path)
    with pytest.raises(FileNotFoundError, match="no metrics file"):
        read_metrics(tmp_path / "missing")
