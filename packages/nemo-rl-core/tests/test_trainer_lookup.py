"""An algorithm is found as name -> config class (the `algorithms` registry) -> `trainer_class`;
each broken link is one error naming the config class's `trainer_class` and the fix."""

from __future__ import annotations

from typing import Literal

import pytest
from nemo_rl import registry
from nemo_rl.algorithms.sft import SFTConfig
from nemo_rl.api import trainer_class_for
from nemo_rl.config import load_config


def _register(tmp_path, monkeypatch, trainer_class: str, trainer_source: str):
    (tmp_path / "lookup_plugin.py").write_text(trainer_source)
    monkeypatch.syspath_prepend(str(tmp_path))

    class EchoConfig(SFTConfig):
        algorithm: Literal["echo"] = "echo"

    EchoConfig.trainer_class = trainer_class
    registry.register("algorithms", "echo")(EchoConfig)
    return EchoConfig


@pytest.fixture(autouse=True)
def _cleanup():
    yield
    registry.unregister("algorithms", "echo")
    import sys

    sys.modules.pop("lookup_plugin", None)


TRAINER = """
from nemo_rl import registry
from nemo_rl.algorithms.dpo.trainer import DPOTrainer
from nemo_rl.algorithms.sft.trainer import SFTTrainer

class EchoTrainer(SFTTrainer):
    config_class = registry.resolve("algorithms", "echo")

class Stranger(DPOTrainer):
    pass
"""


def test_a_registered_algorithm_finds_its_config_and_trainer(tmp_path, monkeypatch):
    config_class = _register(tmp_path, monkeypatch, "lookup_plugin:EchoTrainer", TRAINER)
    config = load_config({"algorithm": "echo", "batch_size": 8})
    assert type(config) is config_class and config.batch_size == 8
    assert trainer_class_for(config).__name__ == "EchoTrainer"
    assert trainer_class_for("echo") is trainer_class_for(config)


@pytest.mark.parametrize(("target", "error", "message"), [
    ("", ValueError, r"EchoConfig.trainer_class is ''; set it to the trainer as 'module:Class'"),
    ("lookup_plugin", ValueError, r"is 'lookup_plugin'; set it to the trainer as 'module:Class'"),
    ("lookup_plugin:Missing", ImportError, r"'lookup_plugin:Missing' cannot be imported .*Missing"),
    ("no_such_module:T", ImportError, r"'no_such_module:T' cannot be imported"),
    ("lookup_plugin:Stranger", TypeError, r"config_class is DPOConfig, not EchoConfig: set config_class = EchoConfig"),
])
def test_a_broken_trainer_class_is_one_clear_error(tmp_path, monkeypatch, target, error, message):
    _register(tmp_path, monkeypatch, target, TRAINER)
    with pytest.raises(error, match=message):
        trainer_class_for("echo")
