"""The base class of every nemo-rl config model.

Every config is a pydantic v2 model that forbids unknown keys (a typo must fail loudly, never be
dropped), validates on assignment, and has defaults that run.

Example:
    >>> from nemo_rl.config.base import ConfigModel
    >>> class Tiny(ConfigModel):
    ...     lr: float = 1e-5
    >>> Tiny(lr=3e-4).lr
    0.0003
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ConfigModel(BaseModel):
    """A strict pydantic model: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())
