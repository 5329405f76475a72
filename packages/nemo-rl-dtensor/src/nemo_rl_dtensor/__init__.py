"""FSDP2/DTensor training backend and HF generate backend for nemo-rl."""
