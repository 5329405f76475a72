"""Megatron-core training backend for nemo-rl."""
