"""Megatron-core training backend for nemo-rl, and HF <-> Megatron weight conversion.

Entry point: `megatron` (nemo_rl.training_backends) -> `MegatronTrainingBackend`, chosen with
`policy.backend: megatron` and configured by `policy.megatron`. Importing this package does not
import megatron-core; building the workers does (CUDA GPUs only). The conversion modules
(`conversion`, `sharding`, `layout`, `vocab_parallel`) are pure torch.

Example:
    >>> from nemo_rl_megatron import MegatronTrainingBackend
    >>> MegatronTrainingBackend().world_size
    0
"""

from __future__ import annotations

from nemo_rl_megatron.training_backend import MegatronTrainingBackend

__all__ = ["MegatronTrainingBackend"]
