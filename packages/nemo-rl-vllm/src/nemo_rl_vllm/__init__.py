"""vLLM generation backend for nemo-rl: `generation.backend: vllm` (entry point `vllm`).

Importing this package does not import vLLM; `VLLMGenerationBackend.setup` does, and says what to
install when it is missing.

Example:
    >>> from nemo_rl_vllm import VLLMGenerationBackend
    >>> VLLMGenerationBackend.__name__
    'VLLMGenerationBackend'
"""

from nemo_rl_vllm.backend import VLLMGenerationBackend
from nemo_rl_vllm.refit import RefitError

__all__ = ["RefitError", "VLLMGenerationBackend"]
