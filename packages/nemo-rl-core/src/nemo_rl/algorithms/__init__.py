"""Algorithms: each a package with config, loss, data transform and trainer."""
