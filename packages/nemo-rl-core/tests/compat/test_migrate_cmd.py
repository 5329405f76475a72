"""`nemo-rl config migrate` writes a short config that loads, and reports the mapping."""

from __future__ import annotations

from nemo_rl.cli.main import main
from nemo_rl.compat.docs import END, START, render_mapping_table
from nemo_rl.config import GRPOConfig, load_config

DOC = __import__("pathlib").Path(__file__).resolve().parents[4] / "docs" / "migration.md"


def test_migrate_grpo_math_1b_writes_a_short_valid_config(legacy_dir, tmp_path, capsys):
    out = tmp_path / "new.yaml"
    code = main(["config", "migrate", str(legacy_dir / "grpo_math_1B.yaml"), "-o", str(out),
                 "grpo.num_prompts_per_step=64"])
    assert code == 0
    text = out.read_text()
    assert len(text.splitlines()) <= 31  # 30 + checkpointing.resume, not a default
    cfg = load_config(out)
    assert isinstance(cfg, GRPOConfig) and cfg.num_prompts_per_step == 64
    assert cfg.policy.model_name == "Qwen/Qwen2.5-1.5B" and cfg.generation.backend == "vllm"
    printed = capsys.readouterr().out
    assert "loss_fn.reference_policy_kl_penalty" in printed and "loss.kl_penalty" in printed
    assert "policy.megatron_cfg.tensor_model_parallel_size" in printed  # in the dropped table


def test_refused_algorithm_exits_2_with_one_message(legacy_dir, capsys):
    assert main(["config", "migrate", str(legacy_dir / "ppo_math_1B.yaml")]) == 2
    assert "PPO" in capsys.readouterr().err


def test_migration_doc_table_is_in_sync_with_the_rules():
    text = DOC.read_text()
    table = text.split(START, 1)[1].split(END, 1)[0].strip()
    assert table == render_mapping_table().strip(), "run: python -m nemo_rl.compat.docs"
