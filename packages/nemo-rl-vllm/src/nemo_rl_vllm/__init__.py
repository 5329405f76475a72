"""vLLM generation backend for nemo-rl: not available yet (this package is an empty skeleton)."""
