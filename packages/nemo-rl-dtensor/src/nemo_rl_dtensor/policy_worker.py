"""One rank of the dtensor training backend: its model shard, optimizer, scheduler and reference.

The driver (`DTensorTrainingBackend`) builds one `PolicyWorker` per rank through
`cluster.spawn` and calls its methods on every rank at once. Every forward pass of a sharded
model is a collective, so the driver tells each rank how many micro-batches to run and ranks with
fewer real ones run empty passes that contribute nothing.

Example:
    >>> # worker = PolicyWorker(PolicyConfig(model_name=path), device_type="cpu")
    >>> # worker.train_update(shard, loss_fn, valid_tokens, valid_seqs, num_microbatches=2)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from nemo_rl.config.policy import PolicyConfig
from nemo_rl.data import BatchedDataDict
from nemo_rl.protocols import LossFunction
from nemo_rl.training import (
    ReferenceWeights,
    build_optimizer,
    build_scheduler,
    packed_logprobs,
    padded_logprobs,
    reshard,
)

from nemo_rl_dtensor import checkpointing, lora_checkpoint
from nemo_rl_dtensor.attention import uses_varlen
from nemo_rl_dtensor.batching import plan_microbatches
from nemo_rl_dtensor.host_offload import HostOffloader
from nemo_rl_dtensor.lora import lora_scalings, parameter_counts
from nemo_rl_dtensor.lora_weights import ADAPTER_CONFIG_FILE, merge_plan
from nemo_rl_dtensor.model_loading import autocast_context, prepare_training_model


def _dist_info() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _worker_device(device_type: str) -> torch.device:
    if device_type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("the cluster asked for CUDA workers but torch sees no GPU here")
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device(device_type)


def metrics_to_host(
    results: Sequence[Mapping[str, float | torch.Tensor]],
) -> list[dict[str, float]]:
    """`results` with every value a float: the tensor values (one number each, e.g. a loss's
    0-dim metrics) are stacked and copied to the host at once, one copy per device.

    Example:
        >>> import torch
        >>> metrics_to_host([{"loss": torch.tensor(0.5), "n": 3}, {"loss": torch.tensor(1.5)}])
        [{'loss': 0.5, 'n': 3.0}, {'loss': 1.5}]
    """
    out = [dict(r) for r in results]
    by_device: dict[torch.device, list[tuple[int, str, torch.Tensor]]] = {}
    for i, result in enumerate(out):
        for key, value in result.items():
            if not isinstance(value, torch.Tensor):
                result[key] = float(value)
                continue
            if value.numel() != 1:
                raise ValueError(
                    f"metric {key!r} is a tensor of shape {tuple(value.shape)}; a loss metric "
                    "must be one number: return a 0-dim tensor (e.g. x.sum()) or a float"
                )
            by_device.setdefault(value.device, []).append((i, key, value))
    for entries in by_device.values():
        # float64 holds every float32/bf16 value exactly; one .tolist() is the one wait.
        stacked = torch.stack([v.detach().reshape(()).to(torch.float64) for _, _, v in entries])
        for (i, key, _), number in zip(entries, stacked.tolist(), strict=True):
            out[i][key] = number
    return out


def merge_metrics(results: Sequence[Mapping[str, float | torch.Tensor]]) -> dict[str, float]:
    """Combine additive metrics of micro-batches or ranks: sum, or max/min for `*_max`/`*_min`.

    Values may be floats or one-number tensors; tensors are read with `metrics_to_host` (one
    device-to-host copy per call, not one per value).

    Example:
        >>> merge_metrics([{"loss": 1.0, "ratio_max": 2.0}, {"loss": 0.5, "ratio_max": 3.0}])
        {'loss': 1.5, 'ratio_max': 3.0}
    """
    merged: dict[str, float] = {}
    for result in metrics_to_host(results):
        for key, value in result.items():
            if key not in merged:
                merged[key] = value
            elif key.endswith("_max"):
                merged[key] = max(merged[key], value)
            elif key.endswith("_min"):
                merged[key] = min(merged[key], value)
            else:
                merged[key] += value
    return merged


class PolicyWorker:
    """The model, optimizer and LR scheduler of one rank (see the module docstring).

    Example:
        >>> # PolicyWorker(PolicyConfig(model_name="/models/tiny"), "cpu").module  # the HF model
    """

    def __init__(self, config: PolicyConfig, device_type: str = "cpu") -> None:
        self.config = config
        self.rank, self.world_size = _dist_info()
        self.device = _worker_device(device_type)
        self._offloader: HostOffloader | None = None
        self.module, self.compute_dtype = prepare_training_model(
            config, self.device, self.world_size
        )
        self.sharded = self.world_size > 1
        self.varlen = uses_varlen(self.module)  # packed passes then carry sequence bounds
        # Frozen base weights (LoRA) are left out: the optimizer holds only what trains.
        self.optimizer = build_optimizer(self.module.parameters(), config.optimizer)
        self.scheduler = build_scheduler(self.optimizer, config.scheduler)
        self.reference: ReferenceWeights | None = None
        self.lora_plan = None
        if config.lora.enabled:
            # The reference is the base model with the adapters off: no copy of the weights.
            self.lora_plan = merge_plan(self.module.state_dict(), lora_scalings(self.module))
        else:
            store = "cpu" if config.dtensor.offload_reference_to_cpu else self.device
            self.reference = ReferenceWeights(self.module, store)
        self._tokenizer: Any = None

    def parameter_counts(self) -> dict[str, int]:
        """{'trainable': ..., 'total': ...} parameters of the policy (full sizes when sharded)."""
        return parameter_counts(self.module)

    # ------------------------------------------------------------------ forward passes
    def _autocast(self) -> Any:
        return autocast_context(self.device, self.compute_dtype, self.sharded)

    def _microbatch_logprobs(
        self, micro: BatchedDataDict, bin_indices: list[int] | None
    ) -> torch.Tensor:
        ids, lengths = micro["input_ids"], micro["input_lengths"]
        compiled = self.config.dtensor.compile  # compiled layers: the log-softmax is compiled too
        with self._autocast():
            if bin_indices is not None:
                return packed_logprobs(self.module, ids, lengths, bin_indices, self.device,
                                       sequence_bounds=self.varlen, compiled=compiled)
            return padded_logprobs(self.module, ids, lengths, self.device, compiled=compiled)

    def _empty_pass(self, backward: bool) -> None:
        """A one-token pass that joins the FSDP collectives and adds exactly zero gradient."""
        ids = torch.zeros(1, 1, dtype=torch.long, device=self.device)
        with self._autocast():
            logits = self.module(input_ids=ids, use_cache=False).logits
        if backward:
            (logits.sum() * 0.0).backward()

    def _microbatches(
        self, shard: BatchedDataDict, for_logprobs: bool
    ) -> list[tuple[BatchedDataDict, list[int] | None]]:
        """(micro-batch, packed bin or None) pairs; a packed micro-batch is the whole shard plus
        the indices of its bin, so the loss sees the selected rows in the padded layout."""
        groups = plan_microbatches(shard["input_lengths"], self.config, for_logprobs)
        if self.config.sequence_packing:
            return [(shard.select_indices(g), list(range(len(g)))) for g in groups]
        return [(shard.select_indices(g), None) for g in groups]

    # ------------------------------------------------------------------ training
    def train_update(
        self,
        shard: BatchedDataDict,
        loss_fn: LossFunction,
        global_valid_tokens: int,
        global_valid_seqs: int,
        num_microbatches: int,
    ) -> dict[str, float]:
        """One optimizer update on this rank's shard of an optimizer batch.

        Returns this rank's summed loss and loss metrics plus `grad_norm` (global, before
        clipping), `lr` (the rate this update used), `nonfinite_microbatches` (this rank's
        micro-batches whose loss was not finite) and `skipped` (1.0 when the update was not
        applied). A non-finite loss on any rank, or a non-finite gradient norm, skips the
        optimizer and scheduler step on every rank, so weights and optimizer state stay as they
        were and the ranks stay identical.
        """
        # The shard stays on the host: micro-batches are cut and packed there and copied to the
        # device without waiting, so the loop itself never stalls on queued GPU work.
        self.module.train()
        self.optimizer.zero_grad(set_to_none=True)
        micro_results = []
        micros = self._microbatches(shard, for_logprobs=False)
        for micro, bin_indices in micros:
            logprobs = self._microbatch_logprobs(micro, bin_indices)
            on_device = micro.to(self.device, non_blocking=True)
            loss, metrics = loss_fn(logprobs, on_device, global_valid_tokens, global_valid_seqs)
            loss.backward()
            micro_results.append({**metrics, "loss": loss.detach()})
        for _ in range(num_microbatches - len(micros)):
            self._empty_pass(backward=True)
        # One device-to-host copy for every micro-batch's loss and metrics.
        micro_results = metrics_to_host(micro_results)
        nonfinite = sum(not math.isfinite(m["loss"]) for m in micro_results)
        grad_norm = self._clip_gradients()
        lr = self.optimizer.param_groups[0]["lr"]
        skip = self._any_rank(nonfinite > 0) or not math.isfinite(grad_norm)
        if skip:
            self.optimizer.zero_grad(set_to_none=True)
        else:
            self.optimizer.step()
            self.scheduler.step()
        result = merge_metrics(micro_results) if micro_results else {"loss": 0.0}
        return {**result, "grad_norm": grad_norm, "lr": lr,
                "nonfinite_microbatches": float(nonfinite), "skipped": float(skip)}

    def _any_rank(self, flag: bool) -> bool:
        """True when `flag` holds on any rank (a collective: every rank must call it)."""
        if not self.sharded:
            return flag
        import torch.distributed as dist

        value = torch.tensor([float(flag)], device=self.device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item() > 0)

    def _clip_gradients(self) -> float:
        params = [p for p in self.module.parameters() if p.grad is not None]
        max_norm = self.config.max_grad_norm if self.config.max_grad_norm is not None else math.inf
        norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
        if hasattr(norm, "full_tensor"):  # a DTensor when parameters are sharded
            norm = norm.full_tensor()
        return float(norm)

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def get_logprobs(
        self, shard: BatchedDataDict, reference: bool, num_microbatches: int
    ) -> torch.Tensor:
        """[B, T] log-probs of this rank's shard under the current (or reference) weights, on CPU."""
        self.module.eval()  # the shard stays on the host (see train_update)
        out = torch.zeros(shard["input_ids"].shape, dtype=torch.float32)
        groups = plan_microbatches(shard["input_lengths"], self.config, for_logprobs=True)
        if reference and self.reference is None:  # LoRA: the base model is the reference
            with self.module.disable_adapter():
                self._fill_logprobs(shard, groups, out, num_microbatches)
        elif reference:
            with self.reference.swapped_in(self.module):
                self._fill_logprobs(shard, groups, out, num_microbatches)
        else:
            self._fill_logprobs(shard, groups, out, num_microbatches)
        self.module.train()
        return out

    def _fill_logprobs(
        self, shard: BatchedDataDict, groups: list[list[int]], out: torch.Tensor, n: int
    ) -> None:
        results = []
        for group in groups:
            micro = shard.select_indices(group)
            packed_bin = list(range(len(group))) if self.config.sequence_packing else None
            results.append((group, self._microbatch_logprobs(micro, packed_bin).float()))
        for _ in range(n - len(groups)):
            self._empty_pass(backward=False)
        # One copy to the host once every pass is queued: one wait, not one per micro-batch.
        if results:
            rows = [i for group, _ in results for i in group]
            out[rows] = torch.cat([values for _, values in results]).cpu()

    # ------------------------------------------------------------------ weights and checkpoints
    def weight_manifest(self) -> list[tuple[str, tuple[int, ...], torch.dtype]]:
        """(HF name, full shape, dtype) of every weight, tied ones included, in state-dict order.

        With LoRA these are the weights of the merged model (no adapter names)."""
        reshard(self.module)
        if self.lora_plan is not None:
            return lora_checkpoint.merged_manifest(self.module, self.lora_plan)
        return [(name, tuple(t.shape), t.dtype) for name, t in self.module.state_dict().items()]

    @torch.no_grad()
    def export_weights(self, names: Sequence[str]) -> dict[str, torch.Tensor] | None:
        """Full tensors of `names` (collective when sharded). Rank 0 returns them, others None.

        World size 1 returns detached views of the live weights (no copy); sharded, CPU copies.
        With LoRA an adapted layer's weight is merged (`W + scaling * B @ A`, a new tensor).
        """
        reshard(self.module)
        if self.lora_plan is not None:
            out = lora_checkpoint.merged_weights(
                self.module, self.lora_plan, list(names), to_cpu=self.sharded
            )
            return out if self.rank == 0 else None
        state = self.module.state_dict()
        out = {}
        for name in names:
            tensor = state[name]
            if hasattr(tensor, "full_tensor"):
                tensor = tensor.full_tensor().cpu()
            out[name] = tensor.detach()
        return out if self.rank == 0 else None

    def _load_tokenizer(self) -> Any:
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(
                self.config.tokenizer_name, trust_remote_code=self.config.trust_remote_code
            )
            if self.config.tokenizer.chat_template is not None:
                self._tokenizer.chat_template = self.config.tokenizer.chat_template
        return self._tokenizer

    def save_checkpoint(self, path: str | Path) -> None:
        """Write the HF model at <path> (rank 0) and <path>/optim (DCP + scheduler + RNG, all ranks).

        With LoRA, <path> holds peft's adapter files instead (and `merged/` with
        `policy.lora.save_merged`); see `nemo_rl_dtensor.lora_checkpoint`.
        """
        path = Path(path)
        reshard(self.module)
        if self.lora_plan is not None:
            lora_checkpoint.save_lora_checkpoint(
                self.module, self.lora_plan, path, self._load_tokenizer(),
                self.config.lora.save_merged, self.rank,
            )
            checkpointing.save_training_state(
                path / checkpointing.OPTIM_DIR, self.module, self.optimizer, self.scheduler
            )
            return
        weights = checkpointing.full_model_state_dict(self.module)
        if self.rank == 0:
            model_dir = path / checkpointing.MODEL_DIR
            generation_config = getattr(self.module, "generation_config", None)
            checkpointing.save_hf_model(weights, self.module.config, generation_config, model_dir)
            self._load_tokenizer().save_pretrained(str(model_dir))
        del weights
        checkpointing.save_training_state(
            path / checkpointing.OPTIM_DIR, self.module, self.optimizer, self.scheduler
        )

    def load_checkpoint(self, path: str | Path) -> None:
        """Restore weights, optimizer, scheduler and RNG from a `save_checkpoint` directory."""
        path = Path(path)
        if self.lora_plan is not None:
            lora_checkpoint.load_adapter(self.module, path)
        elif (path / ADAPTER_CONFIG_FILE).is_file():
            raise ValueError(
                f"checkpoint {path} holds a LoRA adapter, but policy.lora.enabled is false; resume "
                "it with policy.lora enabled and the settings it was written with"
            )
        else:
            weights = checkpointing.load_hf_weights(path / checkpointing.MODEL_DIR)
            checkpointing.set_full_model_state_dict(self.module, weights)
            del weights
        checkpointing.load_training_state(
            path / checkpointing.OPTIM_DIR, self.module, self.optimizer, self.scheduler
        )

    # ------------------------------------------------------------------ colocation
    def offload(self) -> None:
        """Move weights, gradients and optimizer state to CPU (frees the accelerator)."""
        self._move("cpu")

    def onload(self) -> None:
        """Bring weights and optimizer state back to this worker's device."""
        self._move(self.device)

    def _move(self, device: torch.device | str) -> None:
        if self.device.type == "cpu":
            return
        if self._offloader is None:
            self._offloader = HostOffloader()  # pinned host buffers, reused every phase change
        self._offloader.move(self.module, self.optimizer, torch.device(device))
