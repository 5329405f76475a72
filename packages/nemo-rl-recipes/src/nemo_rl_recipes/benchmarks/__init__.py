"""Benchmarks: scripts that print figures (run them on the hardware you want numbers for)."""
