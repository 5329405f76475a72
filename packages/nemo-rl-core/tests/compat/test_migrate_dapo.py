"""DAPO's overlong penalty: nemo-rl caps it at -penalty from max_response_length on (DAPO eq. 13),
NeMo RL lets it keep falling up to max_new_tokens; the migration says so where it matters."""

from __future__ import annotations

import torch
from nemo_rl.algorithms.grpo import overlong_penalty
from nemo_rl.compat import migrate_legacy_config


def _penalty_warnings(result) -> list[str]:
    return [w for w in result.warnings if "overlong penalty" in w]


def test_dapo_7b_recipe_warns_about_the_capped_penalty(legacy_dir):
    # NeMo RL's DAPO 7B recipe: max_response_length 14336, max_new_tokens 16384, buffer 2048,
    # penalty 1. NeMo RL: -(16384 - 12288) / 2048 = -2.0 at the longest response; nemo-rl: -1.0.
    result = migrate_legacy_config(legacy_dir / "recipes" / "llm" / "dapo-qwen2.5-7b.v2.yaml")
    shaping = result.config.reward_shaping
    assert (shaping.enabled, shaping.max_response_length) == (True, 14336)
    assert result.config.generation.max_new_tokens == 16384
    [warning] = _penalty_warnings(result)
    assert "max_response_length (14336) is below" in warning
    assert "max_new_tokens (16384)" in warning
    assert "at -1.0" in warning and "to -2.0 at 16384 tokens" in warning
    # The values it proposes reproduce NeMo RL's penalty for every length up to max_new_tokens.
    assert (
        "max_response_length=16384, overlong_buffer_length=4096, overlong_buffer_penalty=2.0"
        in warning
    )
    lengths = torch.tensor([12288, 13000, 14336, 15000, 16384])
    nemo_rl = -(lengths - 12288).clamp(min=0) / 2048 * 1.0
    as_migrated = overlong_penalty(lengths, 14336, 2048, 1.0)
    proposed = overlong_penalty(lengths, 16384, 4096, 2.0)
    torch.testing.assert_close(proposed, nemo_rl.to(proposed.dtype))
    assert as_migrated[-1].item() == -1.0 and nemo_rl[-1].item() == -2.0


def test_no_warning_when_the_penalty_cannot_differ():
    def migrate(enabled: bool, max_response_length: int):
        legacy = {
            "grpo": {
                "reward_shaping": {
                    "enabled": enabled,
                    "overlong_buffer_length": 64,
                    "overlong_buffer_penalty": 0.5,
                    "max_response_length": max_response_length,
                }
            },
            "policy": {"generation": {"max_new_tokens": 512}},
        }
        return migrate_legacy_config(legacy)

    assert _penalty_warnings(migrate(True, 512)) == []  # no response can pass the cap
    assert _penalty_warnings(migrate(False, 256)) == []  # shaping is off
    [warning] = _penalty_warnings(migrate(True, 256))
    # Starts at 192; NeMo RL reaches -(512 - 192) / 64 x 0.5 = -2.5 at 512 tokens.
    assert "at -0.5" in warning and "to -2.5 at 512 tokens" in warning
