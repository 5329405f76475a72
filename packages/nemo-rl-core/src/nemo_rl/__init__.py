"""nemo-rl: post-training for language models (GRPO and its variants, SFT, DPO).

Importing `nemo_rl` is cheap: every name below loads on first use, and the commands that do not
train (`nemo-rl config ...`, `templates`, `plugins`, `--help`) never import torch or
transformers. Trainers and backends load when they are used.

Example:
    >>> import nemo_rl
    >>> trainer = nemo_rl.GRPOTrainer.from_pretrained("Qwen/Qwen2.5-1.5B")  # doctest: +SKIP
    >>> trainer.fit(dataset="openai/gsm8k", reward_fn=my_reward)  # doctest: +SKIP
"""

from __future__ import annotations

from nemo_rl.lazy_exports import lazy_exports

__version__ = "0.1.0"

_LAZY = {
    "BatchedDataDict": "nemo_rl.data",
    "DataModule": "nemo_rl.data",
    "register_dataset": "nemo_rl.data",
    "load_config": "nemo_rl.config",
    "ConfigError": "nemo_rl.config",
    "GRPOConfig": "nemo_rl.config",
    "SFTConfig": "nemo_rl.config",
    "DPOConfig": "nemo_rl.config",
    "GRPOTrainer": "nemo_rl.algorithms.grpo.trainer",
    "SFTTrainer": "nemo_rl.algorithms.sft.trainer",
    "DPOTrainer": "nemo_rl.algorithms.dpo.trainer",
    "BaseTrainer": "nemo_rl.trainers",
    "Callback": "nemo_rl.trainers",
    "FitResult": "nemo_rl.trainers",
    "train": "nemo_rl.api",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


__all__ = [*_LAZY, "__version__"]
