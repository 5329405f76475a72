"""Config templates, the embedded quickstart and recipes for nemo-rl."""
