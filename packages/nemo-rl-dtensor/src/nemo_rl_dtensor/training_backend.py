"""`DTensorTrainingBackend`: the driver-side facade of FSDP2 training on HF causal LMs.

It spawns one `PolicyWorker` per rank of the cluster, cuts each `train_step` batch into optimizer
batches of `train_global_batch_size` sequences, counts their valid tokens and sequences (the loss
normalisers), shards them over the ranks and tells every rank how many micro-batches to run so
sharded ranks stay in lockstep. Metrics come back summed over micro-batches and ranks, then
averaged over updates.

Example:
    >>> # from nemo_rl.infra.cluster import InlineCluster
    >>> # backend = DTensorTrainingBackend()
    >>> # backend.setup(PolicyConfig(model_name="/models/tiny"), InlineCluster(device="cpu"))
    >>> # metrics = backend.train_step(batch, loss_fn)  # {"loss", "grad_norm", "lr", "num_updates", ...}
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch
from nemo_rl.config import ConfigError
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

from nemo_rl_dtensor.batching import (
    TRAINING_KEYS,
    check_batch,
    pad_to_multiple,
    plan_microbatches,
)
from nemo_rl_dtensor.lora import is_lora_model
from nemo_rl_dtensor.policy_worker import PolicyWorker, merge_metrics

NONFINITE_KEYS = (SKIPPED_UPDATES, NONFINITE_MICROBATCHES)

EXPORT_CHUNK_BYTES = 512 * 1024**2


class DTensorTrainingBackend:
    """Trains an HF causal LM with FSDP2 over the cluster's workers (see the module docstring).

    Example:
        >>> backend = DTensorTrainingBackend()
        >>> backend.world_size  # 0 until setup
        0
    """

    def __init__(self) -> None:
        self.config: PolicyConfig | None = None
        self._group: WorkerGroup | None = None
        self.world_size = 0

    # ------------------------------------------------------------------ lifecycle
    def setup(self, config: PolicyConfig, cluster: Cluster) -> None:
        """Load and shard the model on every worker; build optimizer, scheduler and reference copy.

        This backend's own settings are `policy.dtensor`; it reads no `policy.backend_options`,
        so any there are refused rather than ignored."""
        if config.backend_options:
            raise ConfigError(
                f"policy.backend_options {sorted(config.backend_options)} are not read by the "
                "dtensor backend; its settings are under policy.dtensor (offload_reference_to_cpu) "
                "and the common policy fields: remove policy.backend_options"
            )
        self.config = config
        self.world_size = cluster.world_size
        self._group = cluster.spawn(PolicyWorker, config, cluster.device_type)

    def shutdown(self) -> None:
        """Stop the workers."""
        if self._group is not None:
            self._group.shutdown()
            self._group = None

    @property
    def group(self) -> WorkerGroup:
        if self._group is None:
            raise RuntimeError(
                "DTensorTrainingBackend is not set up; call setup(config, cluster) first"
            )
        return self._group

    def inline_module(self) -> torch.nn.Module:
        """The live HF module when the single worker runs in this process (for weight sharing with
        `HFGenerationBackend.share_module`); raises for any other cluster. With LoRA it is the HF
        model with its adapter layers (their output included in every forward).

        Example:
            >>> # generation.share_module(training.inline_module())
        """
        worker = getattr(self.group, "worker", None)  # InlineWorkerGroup holds the object itself
        if self.world_size != 1 or not isinstance(worker, PolicyWorker):
            raise RuntimeError(
                "inline_module() needs a world-size-1 inline cluster (the model lives in this "
                f"process); this backend runs {self.world_size} worker(s) elsewhere: use "
                "export_weights() with update_weights() instead"
            )
        if is_lora_model(worker.module):
            # The HF model inside peft's wrapper, its adapters in place: what generate() and
            # forward hooks run on (peft's own generate() bypasses the wrapper's forward).
            return worker.module.get_base_model()
        return worker.module

    def parameter_counts(self) -> dict[str, int]:
        """{'trainable': ..., 'total': ...} parameters of the policy; with LoRA only the adapters
        train (the same counts as peft's `get_nb_trainable_parameters`).

        Example:
            >>> # backend.parameter_counts() -> {'trainable': 12288, 'total': 1555000}
        """
        return self.group.run("parameter_counts")[0]

    # ------------------------------------------------------------------ training
    def train_step(self, batch: BatchedDataDict, loss_fn: LossFunction) -> dict[str, float]:
        """One or more optimizer updates over `batch` (`train_global_batch_size` sequences each).

        Returns the mean over updates of `loss`, `grad_norm`, `lr` and the loss metrics (each
        summed over micro-batches and ranks), plus `num_updates` and the totals
        `nonfinite/skipped_updates` and `nonfinite/microbatches` (updates not applied because a
        loss or the gradient norm was not finite; see `nemo_rl.protocols.TrainingBackend`).
        """
        config = self._config()
        check_batch(batch, TRAINING_KEYS)
        size = batch.size
        update_size = config.train_global_batch_size or size
        if size % update_size != 0 or update_size % self.world_size != 0:
            raise ValueError(
                f"train_step got {size} sequences with policy.train_global_batch_size={update_size} "
                f"on {self.world_size} worker(s); the batch must be a multiple of the global batch "
                "size and the global batch size a multiple of the number of workers"
            )
        updates = []
        for start in range(0, size, update_size):
            updates.append(self._train_update(batch.slice(start, start + update_size), loss_fn))
        totals = {key: sum(u.pop(key) for u in updates) for key in NONFINITE_KEYS}
        mean = {key: sum(u[key] for u in updates) / len(updates) for key in updates[0]}
        return {**mean, **totals, "num_updates": float(len(updates))}

    def _train_update(
        self, update_batch: BatchedDataDict, loss_fn: LossFunction
    ) -> dict[str, float]:
        valid_tokens, valid_seqs = global_valid_counts(update_batch)
        shards = update_batch.shard_by_batch_size(self.world_size)
        num_micro = self._max_microbatches(shards, for_logprobs=False)
        args = [(s, loss_fn, valid_tokens, valid_seqs, num_micro) for s in shards]
        results = self.group.run_sharded("train_update", args)
        same_on_all_ranks = ("grad_norm", "lr", "skipped")
        per_rank = [{k: v for k, v in r.items() if k not in same_on_all_ranks} for r in results]
        merged = merge_metrics(per_rank)
        return {
            **{k: v for k, v in merged.items() if k != "nonfinite_microbatches"},
            "grad_norm": results[0]["grad_norm"],
            "lr": results[0]["lr"],
            SKIPPED_UPDATES: results[0]["skipped"],
            NONFINITE_MICROBATCHES: merged.get("nonfinite_microbatches", 0.0),
        }

    def _max_microbatches(self, shards: list[BatchedDataDict], for_logprobs: bool) -> int:
        config = self._config()
        return max(len(plan_microbatches(s["input_lengths"], config, for_logprobs)) for s in shards)

    def get_logprobs(self, batch: BatchedDataDict, reference: bool = False) -> torch.Tensor:
        """[B, T] log p(token t | tokens < t) of the unscaled model (temperature 1, no filtering).

        Column 0 and padding are 0. `reference=True` uses the initial weights (swapped in from CPU
        when `policy.dtensor.offload_reference_to_cpu`). Returned on CPU.
        """
        check_batch(batch, ("input_ids", "input_lengths"))
        padded, size = pad_to_multiple(
            batch.select_keys(["input_ids", "input_lengths"]), self.world_size
        )
        shards = padded.shard_by_batch_size(self.world_size)
        num_micro = self._max_microbatches(shards, for_logprobs=True)
        results = self.group.run_sharded(
            "get_logprobs", [(s, reference, num_micro) for s in shards]
        )
        return torch.cat(results, dim=0)[:size]

    # ------------------------------------------------------------------ weights
    def export_weights(self) -> Iterator[tuple[str, torch.Tensor]]:
        """Stream (HF name, full tensor) pairs of the current weights, tied `lm_head` included.

        Tensors are gathered a chunk (about 512 MiB) at a time. With one inline worker they are
        views of the live weights: copy them before the next train_step if you keep them.
        """
        manifest = self.group.run("weight_manifest")[0]
        chunk: list[str] = []
        used = 0
        for name, shape, dtype in manifest:
            chunk.append(name)
            used += torch.Size(shape).numel() * torch.empty((), dtype=dtype).element_size()
            if used >= EXPORT_CHUNK_BYTES:
                yield from self._export_chunk(chunk)
                chunk, used = [], 0
        if chunk:
            yield from self._export_chunk(chunk)

    def _export_chunk(self, names: list[str]) -> Iterator[tuple[str, torch.Tensor]]:
        tensors = self.group.run("export_weights", names)[0]
        for name in names:
            yield name, tensors[name]

    def save_checkpoint(self, path: Path) -> None:
        """Write the HF model (safetensors + tokenizer) at <path> and <path>/optim (DCP, scheduler, RNG)."""
        self.group.run("save_checkpoint", str(path))

    def load_checkpoint(self, path: Path) -> None:
        """Restore weights, optimizer, scheduler and RNG states written by `save_checkpoint`."""
        if not Path(path).is_dir():
            raise FileNotFoundError(
                f"checkpoint directory {path} does not exist; pass a save_checkpoint path"
            )
        self.group.run("load_checkpoint", str(path))

    def offload(self) -> None:
        """Move weights and optimizer state to CPU (colocated generation runs meanwhile)."""
        self.group.run("offload")

    def onload(self) -> None:
        """Bring weights and optimizer state back to the accelerators."""
        self.group.run("onload")

    def _config(self) -> PolicyConfig:
        if self.config is None:
            raise RuntimeError(
                "DTensorTrainingBackend is not set up; call setup(config, cluster) first"
            )
        return self.config

    def __repr__(self) -> str:
        model = self.config.model_name if self.config else None
        return f"DTensorTrainingBackend(model={model!r}, world_size={self.world_size})"
