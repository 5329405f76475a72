"""`MegatronTrainingBackend`: the driver-side facade of Megatron-core training.

It spawns one `MegatronPolicyWorker` per GPU, cuts each `train_step` batch into optimizer
batches of `train_global_batch_size` sequences, counts their valid tokens and sequences (the loss
normalisers) and gives every rank its data-parallel shard (ranks of one tensor/pipeline group get
the same one). Metrics come from the ranks that report (last pipeline stage, tensor rank 0),
summed over micro-batches and data-parallel ranks, then averaged over updates.

Example:
    >>> backend = MegatronTrainingBackend()
    >>> backend.world_size  # 0 until setup
    0
    >>> # backend.setup(PolicyConfig(model_name=path, backend="megatron"), InlineCluster(device="cuda"))
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from nemo_rl.config.policy import PolicyConfig
from nemo_rl.data import BatchedDataDict
from nemo_rl.protocols import (
    NONFINITE_MICROBATCHES,
    SKIPPED_UPDATES,
    Cluster,
    LossFunction,
    WorkerGroup,
)
from nemo_rl.training import global_valid_counts
from nemo_rl_dtensor.batching import TRAINING_KEYS, check_batch, pad_to_multiple
from nemo_rl_dtensor.policy_worker import merge_metrics

NONFINITE_KEYS = (SKIPPED_UPDATES, NONFINITE_MICROBATCHES)


def _worker(config: PolicyConfig, device_type: str) -> Any:
    from nemo_rl_megatron.policy_worker import MegatronPolicyWorker  # imports megatron-core

    return MegatronPolicyWorker(config, device_type)


class MegatronTrainingBackend:
    """Trains Llama / Qwen2 / Qwen3 models with Megatron-core (see the module docstring).

    Example:
        >>> MegatronTrainingBackend().config is None
        True
    """

    def __init__(self) -> None:
        self.config: PolicyConfig | None = None
        self._group: WorkerGroup | None = None
        self.world_size = 0
        self._info: list[dict[str, Any]] = []

    def setup(self, config: PolicyConfig, cluster: Cluster) -> None:
        """Build, load and wrap the model on every GPU; build the Megatron optimizer."""
        from nemo_rl_megatron.parallel_setup import check_supported

        check_supported(config, cluster.device_type)  # fail in the driver, before any spawn
        self.config = config
        self.world_size = cluster.world_size
        self._group = cluster.spawn(_worker, config, cluster.device_type)
        self._info = self.group.run("parallel_info")

    def shutdown(self) -> None:
        """Stop the workers."""
        if self._group is not None:
            self._group.shutdown()
            self._group = None

    @property
    def group(self) -> WorkerGroup:
        if self._group is None:
            raise RuntimeError("MegatronTrainingBackend is not set up; call setup(config, cluster) first")
        return self._group

    @property
    def dp_size(self) -> int:
        return int(self._info[0]["dp_size"]) if self._info else 1

    def _per_rank(self, shards: list[BatchedDataDict]) -> list[BatchedDataDict]:
        return [shards[int(info["dp_rank"])] for info in self._info]

    def _reporting(self, results: list[Any]) -> list[Any]:
        return [r for r, info in zip(results, self._info, strict=True) if info["reports"]]

    # ------------------------------------------------------------------ training
    def train_step(self, batch: BatchedDataDict, loss_fn: LossFunction) -> dict[str, float]:
        """One or more optimizer updates over `batch` (`train_global_batch_size` sequences each).

        Returns the mean over updates of `loss`, `grad_norm`, `lr` and the loss metrics, plus
        `num_updates` and the totals `nonfinite/skipped_updates` and `nonfinite/microbatches`.
        """
        config = self._config()
        check_batch(batch, TRAINING_KEYS)
        size = batch.size
        update_size = config.train_global_batch_size or size
        if size % update_size != 0 or update_size % self.dp_size != 0:
            raise ValueError(
                f"train_step got {size} sequences with policy.train_global_batch_size={update_size} "
                f"and {self.dp_size} data-parallel rank(s); the batch must be a multiple of the "
                "global batch size and the global batch size a multiple of the data-parallel size"
            )
        updates = [self._train_update(batch.slice(s, s + update_size), loss_fn)
                   for s in range(0, size, update_size)]
        totals = {key: sum(u.pop(key) for u in updates) for key in NONFINITE_KEYS}
        mean = {key: sum(u[key] for u in updates) / len(updates) for key in updates[0]}
        return {**mean, **totals, "num_updates": float(len(updates))}

    def _train_update(self, update: BatchedDataDict, loss_fn: LossFunction) -> dict[str, float]:
        tokens, seqs = global_valid_counts(update)
        shards = self._per_rank(update.shard_by_batch_size(self.dp_size))
        results = self.group.run_sharded("train_update", [(s, loss_fn, tokens, seqs) for s in shards])
        shared = ("grad_norm", "lr", "skipped")
        merged = merge_metrics([{k: v for k, v in r.items() if k not in shared}
                                for r in self._reporting(results)])
        return {
            **{k: v for k, v in merged.items() if k != "nonfinite_microbatches"},
            "grad_norm": results[0]["grad_norm"],
            "lr": results[0]["lr"],
            SKIPPED_UPDATES: results[0]["skipped"],
            NONFINITE_MICROBATCHES: merged.get("nonfinite_microbatches", 0.0),
        }

    def get_logprobs(self, batch: BatchedDataDict, reference: bool = False) -> torch.Tensor:
        """[B, T] log p(token t | tokens < t) of the unscaled model; column 0 and padding are 0.

        `reference=True` uses the initial weights. Returned on CPU (float32).
        """
        check_batch(batch, ("input_ids", "input_lengths"))
        padded, size = pad_to_multiple(batch.select_keys(["input_ids", "input_lengths"]), self.dp_size)
        shards = padded.shard_by_batch_size(self.dp_size)
        results = self.group.run_sharded(
            "get_logprobs", [(s, reference) for s in self._per_rank(shards)]
        )
        by_dp = {int(info["dp_rank"]): r for r, info in zip(results, self._info, strict=True)
                 if info["reports"]}
        return torch.cat([by_dp[d] for d in range(self.dp_size)], dim=0)[:size]

    # ------------------------------------------------------------------ weights
    def export_weights(self) -> Iterator[tuple[str, torch.Tensor]]:
        """Stream (HF name, full CPU tensor) pairs, one layer at a time, tied `lm_head` included."""
        moved = self.group.run("weights_resident", True)[0]  # an offloaded policy (colocated refit)
        try:
            for index in range(self.group.run("export_chunk_count")[0]):
                yield from self.group.run("export_chunk", index)[0].items()
        finally:
            if moved:
                self.group.run("weights_resident", False)

    def save_checkpoint(self, path: Path) -> None:
        """HF safetensors + tokenizer at <path>; the optimizer (Megatron format) at <path>/optim."""
        self.group.run("save_checkpoint", str(path))

    def load_checkpoint(self, path: Path) -> None:
        """Restore weights, optimizer state and the schedule position written by `save_checkpoint`."""
        if not Path(path).is_dir():
            raise FileNotFoundError(f"checkpoint directory {path} does not exist; pass a save_checkpoint path")
        self.group.run("load_checkpoint", str(path))

    def offload(self) -> None:
        """Move weights, gradient buffers and optimizer state to CPU (colocated generation)."""
        self.group.run("offload")

    def onload(self) -> None:
        """Bring them back to the GPUs."""
        self.group.run("onload")

    def _config(self) -> PolicyConfig:
        if self.config is None:
            raise RuntimeError("MegatronTrainingBackend is not set up; call setup(config, cluster) first")
        return self.config

    def __repr__(self) -> str:
        model = self.config.model_name if self.config else None
        return f"MegatronTrainingBackend(model={model!r}, world_size={self.world_size})"
