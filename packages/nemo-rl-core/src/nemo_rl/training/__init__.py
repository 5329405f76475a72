"""Building blocks every training backend needs, whatever it shards with.

- `token_logprobs`, `padded_logprobs`, `packed_logprobs`, `length_mask`: per-token log-probs of a
  causal LM in the layout `TrainingBackend.get_logprobs` returns (column 0 and padding are 0);
  `selected_logprobs`, the chunked log-softmax of one chosen token per row beneath them;
- `global_valid_counts`: the valid tokens and sequences of an optimizer batch, the normalisers
  every `LossFunction` call receives;
- `build_optimizer`, `build_scheduler`, `lr_multiplier`: `policy.optimizer` and
  `policy.scheduler` as torch objects;
- `ReferenceWeights`: the initial weights kept aside (on CPU if asked) and swapped in for
  reference log-probs; `reshard` and `local_tensor` for code that must work on FSDP2 modules too.

Names load on first use (this package imports torch, never transformers).

Example:
    >>> import torch
    >>> from nemo_rl.training import build_optimizer, token_logprobs
    >>> from nemo_rl.config import OptimizerConfig
    >>> build_optimizer(torch.nn.Linear(2, 2).parameters(), OptimizerConfig(name="sgd")).__class__.__name__
    'SGD'
    >>> token_logprobs(torch.zeros(1, 2, 2), torch.tensor([[0, 1]])).exp().tolist()
    [[1.0, 0.5]]
"""

from __future__ import annotations

from nemo_rl.lazy_exports import lazy_exports

_LOGPROBS = "nemo_rl.training.logprobs"
_OPTIM = "nemo_rl.training.optim"
_SHARDING = "nemo_rl.training.sharding"
_LAZY = {
    "token_logprobs": _LOGPROBS,
    "padded_logprobs": _LOGPROBS,
    "packed_logprobs": _LOGPROBS,
    "length_mask": _LOGPROBS,
    "selected_logprobs": "nemo_rl.training.chunked_logprobs",
    "global_valid_counts": "nemo_rl.training.valid_counts",
    "build_optimizer": _OPTIM,
    "build_scheduler": _OPTIM,
    "lr_multiplier": _OPTIM,
    "ReferenceWeights": "nemo_rl.training.reference_weights",
    "reshard": _SHARDING,
    "local_tensor": _SHARDING,
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)

__all__ = sorted(_LAZY)
