"""Deprecated: NeMo RL's `examples/run_dpo*.py` command line, running DPO on nemo-rl.

Example:
    $ python -m nemo_rl.compat.run_dpo --config OLD.yaml policy.model_name=Qwen/Qwen2.5-1.5B
"""

from __future__ import annotations

from nemo_rl.compat.legacy_launch import run_legacy_script


def main() -> int:
    """Run DPO from a legacy command line (`--config FILE [overrides]`); returns the exit code."""
    return run_legacy_script("dpo")


if __name__ == "__main__":
    raise SystemExit(main())
