"""A migrated NeMo RL config keeps NeMo RL's resume behaviour: with a checkpoint_dir (and
checkpointing on) it resumes from there; nemo-rl's own configs resume only when asked."""

from __future__ import annotations

from nemo_rl.compat.migrate import migrate_legacy_config
from nemo_rl.config import SFTConfig


def test_legacy_checkpoint_dir_means_resume(legacy_dir):
    config = migrate_legacy_config(legacy_dir / "sft.yaml").config
    # NeMo RL's results/sft is now the run's one folder, under runs/; resuming continues it.
    assert config.run_dir == "runs/sft" and config.checkpointing.checkpoint_dir is None
    assert config.checkpointing.resume is True


def test_legacy_config_with_checkpointing_off_does_not_resume(legacy_dir):
    config = migrate_legacy_config(
        legacy_dir / "sft.yaml", ["checkpointing.enabled=false"]
    ).config
    assert config.checkpointing.resume is False


def test_new_configs_do_not_resume_by_default():
    assert SFTConfig().checkpointing.resume is False


def test_legacy_output_folders_become_the_one_run_folder(legacy_dir):
    """NeMo RL wrote to logs/exp_N, results/<x> and tb_logs-<x> in its working directory;
    migrated, a run writes only to its run folder (an absolute path, shared storage, is kept)."""
    result = migrate_legacy_config(legacy_dir / "sft.yaml", ["logger.tensorboard_enabled=true"])
    assert result.config.run_dir == "runs/sft"
    assert result.config.logger.log_dir is None and result.config.logger.tensorboard.log_dir is None
    assert "exp_<N>" in result.dropped["logger.log_dir"]
    assert "<run_dir>/tensorboard" in result.dropped["logger.tensorboard.log_dir"]

    absolute = migrate_legacy_config(legacy_dir / "sft.yaml", [
        "logger.tensorboard_enabled=true", "logger.tensorboard.log_dir=/shared/tb",
        "checkpointing.checkpoint_dir=/shared/sft",
    ]).config
    assert absolute.run_dir == "/shared/sft" and absolute.logger.tensorboard.log_dir == "/shared/tb"

    off = migrate_legacy_config(legacy_dir / "sft.yaml", ["checkpointing.enabled=false"])
    assert off.config.run_dir is None  # a fresh runs/sft-<timestamp> per run
    assert "checkpointing.enabled is false" in off.dropped["checkpointing.checkpoint_dir"]
