"""Environments and rewards for nemo-rl (math, code, games, judges)."""
