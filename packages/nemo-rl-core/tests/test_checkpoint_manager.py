"""Tests of CheckpointManager: atomic saves, crash safety, recovery and keep-top-k."""

from __future__ import annotations

import json

import pytest
from nemo_rl.config import CheckpointConfig
from nemo_rl.infra.checkpoint import CheckpointManager, read_checkpoint_info


def make_manager(tmp_path, **overrides) -> CheckpointManager:
    return CheckpointManager(CheckpointConfig(checkpoint_dir=str(tmp_path / "ckpt"), **overrides))


def save(manager: CheckpointManager, step: int, metrics=None, payload: str = "") -> None:
    with manager.save(step, metrics) as tmp_dir:
        (tmp_dir / "model.txt").write_text(payload or f"weights of step {step}")


def steps(manager: CheckpointManager) -> list[int]:
    return [info.step for info in manager.list()]


def test_save_publishes_a_complete_directory(tmp_path):
    manager = make_manager(tmp_path)
    with manager.save(10, {"val/loss": 0.5}) as tmp_dir:
        assert tmp_dir.name == ".tmp_step_10"
        assert tmp_dir.parent == manager.directory
        (tmp_dir / "model.txt").write_text("w")
    final = manager.directory / "step_10"
    assert manager.latest() == final
    assert (final / "model.txt").read_text() == "w"
    meta = json.loads((final / "metadata.json").read_text())
    assert meta["step"] == 10 and meta["metrics"] == {"val/loss": 0.5}
    assert isinstance(meta["time"], float)
    assert sorted(p.name for p in manager.directory.iterdir()) == ["step_10"]


def test_crash_mid_save_leaves_the_previous_checkpoint_intact(tmp_path):
    manager = make_manager(tmp_path)
    save(manager, 10, payload="good")
    with pytest.raises(RuntimeError, match="disk full"), manager.save(20) as tmp_dir:
        (tmp_dir / "model.txt").write_text("half")
        raise RuntimeError("disk full")
    assert manager.latest() == manager.directory / "step_10"
    assert (manager.latest() / "model.txt").read_text() == "good"
    assert sorted(p.name for p in manager.directory.iterdir()) == ["step_10"]


def test_crash_while_replacing_the_same_step_keeps_the_old_copy(tmp_path):
    manager = make_manager(tmp_path)
    save(manager, 10, payload="first")
    with pytest.raises(KeyboardInterrupt), manager.save(10) as tmp_dir:
        (tmp_dir / "model.txt").write_text("second")
        raise KeyboardInterrupt
    assert (manager.latest() / "model.txt").read_text() == "first"


def test_saving_a_step_again_replaces_it(tmp_path):
    manager = make_manager(tmp_path)
    save(manager, 10, {"acc": 0.1}, payload="first")
    save(manager, 10, {"acc": 0.2}, payload="second")
    assert steps(manager) == [10]
    assert (manager.latest() / "model.txt").read_text() == "second"
    assert manager.list()[0].metrics == {"acc": 0.2}
    assert sorted(p.name for p in manager.directory.iterdir()) == ["step_10"]


def test_stale_temporary_directories_are_ignored_then_cleaned(tmp_path):
    manager = make_manager(tmp_path)
    save(manager, 10)
    stale = manager.directory / ".tmp_step_20"
    stale.mkdir()
    (stale / "model.txt").write_text("partial")
    (stale / "metadata.json").write_text(json.dumps({"step": 20, "metrics": {}, "time": 0.0}))
    assert manager.latest() == manager.directory / "step_10"
    assert steps(manager) == [10]
    make_manager(tmp_path)  # a restarted run cleans up after the crash
    assert not stale.exists()


def test_an_interrupted_replacement_is_finished_at_construction(tmp_path):
    manager = make_manager(tmp_path)
    save(manager, 10, payload="old")
    # Crash after moving step_10 aside and before the new copy was renamed in: restore the old.
    (manager.directory / "step_10").rename(manager.directory / ".old_step_10")
    recovered = make_manager(tmp_path)
    assert (recovered.latest() / "model.txt").read_text() == "old"
    # Crash after the new copy was renamed in: the aside copy is deleted.
    save(recovered, 20)
    (recovered.directory / ".old_step_20").mkdir()
    make_manager(tmp_path)
    assert sorted(p.name for p in recovered.directory.iterdir()) == ["step_10", "step_20"]


def test_keep_top_k_by_metric_keeps_the_best_and_the_latest(tmp_path):
    manager = make_manager(tmp_path, keep_top_k=2, metric_name="val/acc")
    for step, acc in zip(range(1, 6), [0.1, 0.9, 0.5, 0.8, 0.2], strict=True):
        save(manager, step, {"val/acc": acc})
    assert steps(manager) == [2, 4, 5]  # best two (0.9, 0.8) plus the latest
    assert manager.best() == manager.directory / "step_2"
    assert manager.latest() == manager.directory / "step_5"


def test_keep_top_k_lower_is_better(tmp_path):
    manager = make_manager(tmp_path, keep_top_k=2, metric_name="loss", higher_is_better=False)
    for step, loss in zip(range(1, 6), [0.1, 0.9, 0.5, 0.8, 0.2], strict=True):
        save(manager, step, {"loss": loss})
    assert steps(manager) == [1, 5]
    assert manager.best() == manager.directory / "step_1"


def test_ties_go_to_the_newer_step(tmp_path):
    manager = make_manager(tmp_path, keep_top_k=1, metric_name="acc")
    save(manager, 1, {"acc": 0.5})
    save(manager, 2, {"acc": 0.5})
    assert steps(manager) == [2]


def test_checkpoints_without_the_metric_rank_last(tmp_path):
    manager = make_manager(tmp_path, keep_top_k=1, metric_name="acc")
    save(manager, 1, {"acc": 0.5})
    save(manager, 2, {"loss": 1.0})  # no acc: kept only as the latest
    assert steps(manager) == [1, 2]
    assert manager.best() == manager.directory / "step_1"
    save(manager, 3, {"acc": float("nan")})  # non-finite counts as missing
    assert steps(manager) == [1, 3]
    assert manager.list()[1].metrics == {"acc": None}
    save(manager, 4, {"acc": 0.7})
    assert steps(manager) == [4]


def test_best_falls_back_to_the_newest_when_no_checkpoint_has_the_metric(tmp_path):
    manager = make_manager(tmp_path, keep_top_k=None, metric_name="acc")
    save(manager, 1)
    save(manager, 2)
    assert manager.best() == manager.directory / "step_2"


def test_without_a_metric_the_newest_k_are_kept(tmp_path):
    manager = make_manager(tmp_path, keep_top_k=2)
    for step in (5, 10, 15):
        save(manager, step)
    assert steps(manager) == [10, 15]
    assert manager.best() == manager.latest() == manager.directory / "step_15"


def test_keep_top_k_none_keeps_everything(tmp_path):
    manager = make_manager(tmp_path, keep_top_k=None)
    for step in (1, 2, 3, 4):
        save(manager, step)
    assert steps(manager) == [1, 2, 3, 4]


def test_an_empty_directory_has_no_latest_or_best(tmp_path):
    manager = make_manager(tmp_path)
    assert manager.latest() is None and manager.best() is None and manager.list() == []


def test_should_save_follows_the_period_and_the_switch(tmp_path):
    manager = make_manager(tmp_path, save_period=10)
    assert [s for s in range(0, 31) if manager.should_save(s)] == [10, 20, 30]
    assert not make_manager(tmp_path, enabled=False).should_save(10)


def test_bad_inputs_are_rejected_with_a_clear_error(tmp_path):
    manager = make_manager(tmp_path)
    with pytest.raises(ValueError, match="non-negative int"), manager.save(-1):
        pass
    with pytest.raises(TypeError, match="metric 'acc'"), manager.save(1, {"acc": "high"}):
        pass
    assert manager.list() == []


def test_damaged_metadata_names_the_file(tmp_path):
    manager = make_manager(tmp_path)
    save(manager, 1)
    (manager.directory / "step_1" / "metadata.json").write_text("{broken")
    with pytest.raises(ValueError, match=r"step_1/metadata.json is damaged"):
        manager.latest()
    with pytest.raises(FileNotFoundError, match="not a complete checkpoint"):
        read_checkpoint_info(tmp_path)


def test_a_kill_during_pruning_never_lists_a_half_deleted_checkpoint(tmp_path, monkeypatch):
    import shutil

    manager = make_manager(tmp_path, keep_top_k=1)
    save(manager, 1)
    real_rmtree = shutil.rmtree

    def killed_halfway(path, *args, **kwargs):
        (path / "model.txt").unlink()  # part of the tree is gone when the process dies
        raise KeyboardInterrupt

    monkeypatch.setattr(shutil, "rmtree", killed_halfway)
    with pytest.raises(KeyboardInterrupt):
        save(manager, 2)  # publishing step 2 prunes step 1
    monkeypatch.setattr(shutil, "rmtree", real_rmtree)
    assert steps(manager) == [2]  # step 1, half deleted, is not reported as a checkpoint
    recovered = make_manager(tmp_path, keep_top_k=1)  # the next start removes what is left
    assert sorted(p.name for p in recovered.directory.iterdir()) == ["step_2"]
    assert steps(recovered) == [2]
