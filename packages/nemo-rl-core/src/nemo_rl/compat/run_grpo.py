"""Deprecated: NeMo RL's `examples/run_grpo*.py` command line, running GRPO on nemo-rl.

Its config must name an environment nemo-rl has (`data.default.env_name: math`), the reward.

Example:
    $ python -m nemo_rl.compat.run_grpo --config OLD.yaml policy.model_name=Qwen/Qwen2.5-1.5B
"""

from __future__ import annotations

from nemo_rl.compat.legacy_launch import run_legacy_script


def main() -> int:
    """Run GRPO from a legacy command line (`--config FILE [overrides]`); returns the exit code."""
    return run_legacy_script("grpo")


if __name__ == "__main__":
    raise SystemExit(main())
