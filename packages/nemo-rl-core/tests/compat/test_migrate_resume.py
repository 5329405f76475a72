"""A migrated NeMo RL config keeps NeMo RL's resume behaviour: with a checkpoint_dir (and
checkpointing on) it resumes from there; nemo-rl's own configs resume only when asked."""

from __future__ import annotations

from nemo_rl.compat.migrate import migrate_legacy_config
from nemo_rl.config import SFTConfig


def test_legacy_checkpoint_dir_means_resume(legacy_dir):
    config = migrate_legacy_config(legacy_dir / "sft.yaml").config
    assert config.checkpointing.checkpoint_dir == "results/sft"
    assert config.checkpointing.resume is True


def test_legacy_config_with_checkpointing_off_does_not_resume(legacy_dir):
    config = migrate_legacy_config(
        legacy_dir / "sft.yaml", ["checkpointing.enabled=false"]
    ).config
    assert config.checkpointing.resume is False


def test_new_configs_do_not_resume_by_default():
    assert SFTConfig().checkpointing.resume is False
