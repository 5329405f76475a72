"""FSDP2/DTensor training backend and HF generate backend for nemo-rl.

Entry points: `dtensor` (nemo_rl.training_backends) -> `DTensorTrainingBackend`,
`hf` (nemo_rl.generation_backends) -> `HFGenerationBackend`.

Example:
    >>> from nemo_rl_dtensor import DTensorTrainingBackend
    >>> DTensorTrainingBackend().world_size
    0
"""

from __future__ import annotations

from nemo_rl_dtensor.generation_backend import HFGenerationBackend
from nemo_rl_dtensor.training_backend import DTensorTrainingBackend

__all__ = ["DTensorTrainingBackend", "HFGenerationBackend"]
