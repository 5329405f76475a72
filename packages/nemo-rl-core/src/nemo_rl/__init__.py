"""nemo-rl: post-training for language models."""
