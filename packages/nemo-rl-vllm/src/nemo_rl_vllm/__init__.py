"""vLLM generation backend for nemo-rl."""
