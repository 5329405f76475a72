"""Issue #18: what a TRL or NeMo RL user meets at the command line.

Overrides after options, commands that do not train staying free of torch/transformers, path-like
names that do not exist, the hub unreachable (these machines have no hub access; the tests point
HF_ENDPOINT at a closed local port so they behave the same with a network), and dry runs that
list everything a run would miss.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from nemo_rl import registry
from nemo_rl.cli.main import main

CLOSED_ENDPOINT = "http://127.0.0.1:9"  # the discard port: nothing listens, refused at once


@pytest.fixture(autouse=True)
def restore_logging():
    """`nemo-rl train` reconfigures the root logger (force=True); put it back after the test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def no_hub(monkeypatch, tmp_path):
    """An unreachable hub and an empty HF cache, HF_HUB_OFFLINE unset."""
    monkeypatch.setenv("HF_ENDPOINT", CLOSED_ENDPOINT)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    from nemo_rl import hub

    hub.hub_reachable.cache_clear()
    yield hub
    hub.hub_reachable.cache_clear()


@pytest.fixture
def sft_config(tmp_path) -> Path:
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps({"prompt": f"{i}+1=", "answer": str(i + 1)}) + "\n" for i in range(8)))
    model = tmp_path / "model"  # passes the source checks; nothing here loads it
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"")
    config = tmp_path / "run.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "algorithm": "sft",
                "policy": {"model_name": str(tmp_path / "model")},
                "data": {"dataset": str(rows)},
                "batch_size": 4,
                "cluster": {"gpus_per_node": 0, "launcher": "inline"},
                "logger": {"backends": ["jsonl"]},
            }
        )
    )
    return config


# ------------------------------------------------------------------ item 4: any order
def test_overrides_may_follow_options(sft_config, capsys):
    assert main(["config", "show", str(sft_config), "--minimal", "seed=3", "max_num_steps=2"]) == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    assert (shown["seed"], shown["max_num_steps"]) == (3, 2)


def test_train_dry_run_takes_overrides_after_the_option(sft_config, capsys, monkeypatch):
    monkeypatch.chdir(sft_config.parent)
    assert main(["train", str(sft_config), "--dry-run", "policy.model_name=./no/such/model"]) == 2
    err = capsys.readouterr().err
    assert "unrecognized arguments" not in err
    assert "policy.model_name='./no/such/model': no such directory" in err


def test_an_unknown_option_is_still_refused(sft_config, capsys):
    assert main(["config", "show", str(sft_config), "--minimal", "--bogus", "seed=3"]) == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err


# ------------------------------------------------------- item 5: no torch where no training
NON_TRAINING = [
    ["--help"],
    ["plugins"],
    ["templates"],
    ["config", "validate", "{config}"],
    ["config", "show", "{config}", "seed=4"],
    ["config", "diff", "{config}", "{config}"],
    ["config", "schema", "grpo"],
    ["config", "schema", "dpo"],
    ["sft", "--model", "m", "--dataset", "{config}", "--print-config"],
    ["grpo", "--model", "m", "--dataset", "d.jsonl", "--reward", "math", "--print-config"],
]


def test_commands_that_do_not_train_import_neither_torch_nor_transformers(sft_config):
    commands = [[part.format(config=sft_config) for part in argv] for argv in NON_TRAINING]
    script = (
        "import contextlib, io, json, sys\n"
        "from nemo_rl.cli.main import main\n"
        "codes = []\n"
        "for argv in json.loads(sys.argv[1]):\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        codes.append(main(argv))\n"
        "heavy = [m for m in ('torch', 'transformers', 'datasets') if m in sys.modules]\n"
        "print(json.dumps({'codes': codes, 'heavy': heavy}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, json.dumps(commands)],
        capture_output=True, text=True, timeout=300, check=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["codes"] == [0] * len(commands), done.stderr
    assert result["heavy"] == []


def test_import_nemo_rl_stays_light_and_lazy_names_still_resolve():
    script = (
        "import sys, nemo_rl\n"
        "light = 'torch' not in sys.modules\n"
        "from nemo_rl.algorithms.grpo import GRPOConfig\n"
        "light = light and 'torch' not in sys.modules\n"
        "print(light, nemo_rl.GRPOTrainer.__name__, GRPOConfig.__name__)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.stdout.split() == ["True", "GRPOTrainer", "GRPOConfig"], done.stderr


# ------------------------------------------------------- item 2: fast, quiet offline failures
def test_a_hub_model_without_network_fails_fast_in_one_line(sft_config, tmp_path):
    env = {**os.environ, "HF_ENDPOINT": CLOSED_ENDPOINT, "HF_HOME": str(tmp_path / "hf-home")}
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        env.pop(var, None)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "nemo_rl.cli.main", "train", str(sft_config), "--dry-run",
         "policy.model_name=some-org/some-model"],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path,
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 2
    output = done.stdout + done.stderr
    assert "Retry" not in output and "Traceback" not in output
    problem = [line for line in done.stderr.splitlines() if "some-org/some-model" in line]
    assert len(problem) == 1
    assert "the Hugging Face hub (http://127.0.0.1:9) cannot be reached" in problem[0]
    assert "HF_HUB_OFFLINE=1" in problem[0] and "policy.model_name=DIR" in problem[0]
    # Retrying took 23 s and more before; the import of torch is most of what is left.
    assert elapsed < 60, elapsed


def test_hub_probe_and_path_rules(no_hub):
    hub = no_hub
    assert hub.hub_reachable() is False
    assert hub.looks_like_path("runs/sft/checkpoints/step_10")
    with pytest.raises(FileNotFoundError, match="no such directory"):
        hub.check_hub_name("runs/sft/checkpoints/step_10", "policy.model_name")
    with pytest.raises(hub.HubUnreachableError, match="cannot be reached"):
        hub.check_hub_name("org/model", "policy.model_name")


def test_hub_offline_without_a_cached_copy_says_so(no_hub, monkeypatch):
    hub = no_hub
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="not in the HF cache, and HF_HUB_OFFLINE is set"):
        hub.check_hub_name("org/model", "policy.model_name")


def test_a_missing_dataset_directory_says_no_such_directory(tmp_path, monkeypatch):
    from nemo_rl.data import DatasetSourceError, load_rows

    monkeypatch.chdir(tmp_path)
    with pytest.raises(DatasetSourceError) as err:
        load_rows("./data/train")
    assert str(err.value) == (
        f"dataset './data/train': no such file or directory (cwd: {tmp_path}): check the path"
    )


def test_a_hub_dataset_without_network_fails_fast_in_one_line(no_hub):
    from nemo_rl.data import DatasetSourceError, load_rows

    started = time.monotonic()
    with pytest.raises(DatasetSourceError) as err:
        load_rows("some-org/some-dataset")
    assert time.monotonic() - started < 10
    message = str(err.value)
    assert "\n" not in message
    assert "the Hugging Face hub (http://127.0.0.1:9) cannot be reached" in message
    assert "--repo-type dataset" in message and "HF_HUB_OFFLINE=1" in message


# ------------------------------------------------- item 3: the dry run resolves everything
class NeedsAMissingPackage:
    """A logger plugin whose package is not installed."""

    required_packages = ("nemo_rl_surely_not_installed",)


@pytest.fixture
def fake_logger():
    registry.register("loggers", "needs_missing")(NeedsAMissingPackage)
    yield
    registry.unregister("loggers", "needs_missing")


def test_dry_run_lists_every_missing_thing_at_once(sft_config, fake_logger, capsys, monkeypatch):
    monkeypatch.chdir(sft_config.parent)
    code = main(
        ["train", str(sft_config), "--dry-run", "logger.backends=[needs_missing]",
         "policy.model_name=./no/model", "data.val_dataset=./no/val"]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "the run would fail; 3 problems:" in err
    assert (
        "  - logger 'needs_missing' needs the nemo_rl_surely_not_installed package, "
        "which is not installed: pip install nemo_rl_surely_not_installed (or remove "
        "'needs_missing' from logger.backends)"
    ) in err
    assert "policy.model_name='./no/model': no such directory" in err
    assert "data.val_dataset: dataset './no/val': no such file or directory" in err


@pytest.mark.skipif(
    __import__("importlib.util").util.find_spec("tensorboard") is not None,
    reason="tensorboard is installed",
)
def test_dry_run_reports_the_tensorboard_logger_without_its_package(sft_config, capsys):
    assert main(["train", str(sft_config), "--dry-run", "logger.backends=[tensorboard]"]) == 2
    assert "pip install nemo-rl-core[tensorboard]" in capsys.readouterr().err


def test_a_real_run_stops_on_a_missing_logger_package_before_any_model_loads(
    sft_config, fake_logger, capsys, monkeypatch
):
    monkeypatch.chdir(sft_config.parent)
    # The model does not exist: the old order reached it (tokenizer) before the loggers.
    assert main(["train", str(sft_config), "logger.backends=[needs_missing]"]) == 2
    err = capsys.readouterr().err
    assert "logger 'needs_missing' needs the nemo_rl_surely_not_installed package" in err
    assert not (sft_config.parent / "runs").exists()


def test_a_run_with_a_bad_model_name_fails_before_torch_is_imported(sft_config, tmp_path):
    script = (
        "import sys\n"
        "from nemo_rl.cli.main import main\n"
        "code = main(sys.argv[1:])\n"
        "print(code, 'torch' in sys.modules)\n"
    )
    env = {**os.environ, "HF_ENDPOINT": CLOSED_ENDPOINT, "HF_HOME": str(tmp_path / "hf-home")}
    env.pop("HF_HUB_OFFLINE", None)
    done = subprocess.run(
        [sys.executable, "-c", script, "train", str(sft_config), "policy.model_name=some-org/some-model"],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert done.stdout.split() == ["2", "False"], done.stderr
    assert "cannot be reached" in done.stderr
