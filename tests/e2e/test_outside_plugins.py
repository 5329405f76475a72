"""Plugins written outside nemo-rl, installed from a temporary directory, train through entry
points alone: an RLOO advantage estimator (`rloo_outside`, 25 lines) with an `rloo` algorithm
using it (config class + trainer, 27 lines), and a vendor training backend (`vendor`, a class of
its own around the dtensor workers). Their sources live in
`outside_plugins/`; each is copied to tmp_path and installed with `uv pip install --no-deps
--target` (pip when uv is absent) into a directory put on sys.path, so nemo-rl finds them only
through their `pyproject.toml` entry points."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from nemo_rl import GRPOTrainer, registry
from nemo_rl.algorithms.grpo.estimators import AdvantageInputs, rloo_advantages
from nemo_rl.api import trainer_class_for
from nemo_rl.config import load_config
from nemo_rl.trainers import Callback

SOURCES = Path(__file__).parent / "outside_plugins"
PLUGINS = {"rloo_plugin": "rloo-plugin", "vendor_backend": "vendor-backend"}


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The two plugin projects built and installed into a fresh directory."""
    root = tmp_path_factory.mktemp("outside-plugins")
    projects = [shutil.copytree(SOURCES / name, root / name) for name in PLUGINS]
    site = root / "site"
    uv = shutil.which("uv")
    installer = [uv, "pip", "install", "--python", sys.executable] if uv else [
        sys.executable, "-m", "pip", "install"]
    subprocess.run([*installer, "--no-deps", "--target", str(site), *map(str, projects)],
                   check=True, capture_output=True, timeout=300)
    return site


@pytest.fixture
def installed(plugin_site: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(plugin_site))
    yield
    for module in PLUGINS:
        sys.modules.pop(module, None)


class Keep(Callback):
    def __init__(self) -> None:
        self.rollouts = []

    def on_rollout_end(self, trainer, rollout, metrics):
        self.rollouts.append(rollout)


def _fit(tiny_model, tmp_path, settings, rows, reward, trainer_class=GRPOTrainer, **overrides):
    keep = Keep()
    trainer = trainer_class.from_pretrained(tiny_model, **settings["grpo"](tmp_path, **overrides))
    try:
        result = trainer.fit(dataset=rows, reward_fn=reward, callbacks=[keep])
        shared = trainer.shared_module
    finally:
        trainer.close()
    return result, keep.rollouts, shared


def test_the_plugins_are_found_through_their_entry_points(installed):
    estimator = registry.available("advantage_estimators")["rloo_outside"]
    backend = registry.available("training_backends")["vendor"]
    assert (estimator.package, backend.package) == ("rloo-plugin", "vendor-backend")
    assert registry.resolve("advantage_estimators", "rloo_outside").__module__ == "rloo_plugin"


def test_an_outside_rloo_algorithm_trains(installed, tiny_model, tmp_path, settings, rewards, prompt_rows):
    config = load_config({"algorithm": "rloo"})  # the entry point names the config class
    assert type(config).__name__ == "RLOOConfig" and config.advantage_estimator == "rloo_outside"
    trainer_class = trainer_class_for("rloo")  # the config class names its trainer
    assert trainer_class.__name__ == "RLOOTrainer"
    result, rollouts, shared = _fit(tiny_model, tmp_path, settings, prompt_rows, rewards["length"],
                                    trainer_class=trainer_class)
    assert result.steps == 2 and math.isfinite(result.metrics["loss"])
    for batch in rollouts:  # the plugin's advantages are RLOO's, sample by sample
        expected = rloo_advantages(AdvantageInputs(
            rewards=batch["shaped_rewards"], group_ids=batch["group_ids"],
            valid=batch["sample_mask"] > 0, token_mask=batch["token_mask"], config=None))
        torch.testing.assert_close(batch["advantages"], expected)
        assert batch["advantages"].abs().sum() > 0
    assert shared  # dtensor declares InlineModuleSource: generation shares its module


def test_an_outside_training_backend_trains(installed, tiny_model, tmp_path, settings, rewards, prompt_rows):
    from vendor_backend import VendorBackend

    VendorBackend.calls.clear()
    result, _, shared = _fit(tiny_model, tmp_path, settings, prompt_rows, rewards["length"],
                             **{"policy.backend": "vendor"})
    assert result.steps == 2 and math.isfinite(result.metrics["loss"])
    assert VendorBackend.calls["setup"] == 1 and VendorBackend.calls["train_step"] == 2
    # Not an InlineModuleSource: generation got the weights through export_weights (the refit
    # after step 1; the one after step 2 waits for a next rollout that never comes).
    assert not shared and VendorBackend.calls["export_weights"] == 1
