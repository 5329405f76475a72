"""One rank of the megatron backend: its GPTModel stage and shard, DDP, the Megatron optimizer.

The driver (`MegatronTrainingBackend`) builds one worker per GPU through `cluster.spawn` and calls
its methods on every rank at once. Ranks of one data-parallel group receive the same shard;
Megatron's schedule (`get_forward_backward_func`) runs the micro-batches through the pipeline.
Losses arrive normalised by the global valid-token count, so gradients are summed over
micro-batches and data-parallel ranks (`calculate_per_token_loss`, no token rescaling).

Example:
    >>> # worker = MegatronPolicyWorker(PolicyConfig(backend="megatron", model_name=path), "cuda")
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import torch
from nemo_rl.config.policy import PolicyConfig
from nemo_rl.data import BatchedDataDict
from nemo_rl.protocols import LossFunction
from nemo_rl.training import ReferenceWeights, lr_multiplier
from nemo_rl_dtensor.batching import pad_to_multiple, plan_microbatches
from nemo_rl_dtensor.policy_worker import merge_metrics, metrics_to_host

from nemo_rl_megatron import weights
from nemo_rl_megatron.layout import ModelLayout
from nemo_rl_megatron.model_builder import build_gpt_model
from nemo_rl_megatron.parallel_setup import check_supported, init_parallel_state, params_dtype
from nemo_rl_megatron.vocab_parallel import shifted_token_logprobs


def _finalize_grads_without_token_scaling(model: list, num_tokens: Any, **kwargs: Any) -> None:
    """Megatron's gradient finalisation (DP reduction, SP layer-norm and tied-embedding grads)
    without its division by the token count: our losses are already divided by it."""
    from megatron.core.distributed import finalize_model_grads

    finalize_model_grads(model, None, **kwargs)


class MegatronPolicyWorker:
    """The model stage, optimizer and reference weights of one rank (see the module docstring).

    Example:
        >>> # MegatronPolicyWorker(config, "cuda").parallel_info()  # {"dp_rank": 0, ...}
    """

    def __init__(self, config: PolicyConfig, device_type: str = "cuda") -> None:
        check_supported(config, device_type)
        self._offloaded = False  # set by offload(), cleared by onload()
        init_parallel_state(config)
        from megatron.core import parallel_state as ps
        from megatron.core.distributed import DistributedDataParallel, DistributedDataParallelConfig
        from megatron.core.optimizer import OptimizerConfig, get_megatron_optimizer
        from megatron.core.transformer.module import Float16Module

        self.config, self.options = config, config.megatron
        self.device = torch.device("cuda", torch.cuda.current_device())
        self.tp_rank, self.tp_group = ps.get_tensor_model_parallel_rank(), ps.get_tensor_model_parallel_group()
        self.pp_rank, self.pp_group = ps.get_pipeline_model_parallel_rank(), ps.get_pipeline_model_parallel_group()
        self.last_stage = ps.is_pipeline_last_stage()
        self.dp_rank, self.dp_size = ps.get_data_parallel_rank(), ps.get_data_parallel_world_size()
        model_dir = weights.resolve_model_dir(config.model_name)
        self.hf_config, self.generation_config = weights.load_hf_configs(model_dir, config)
        self.layout = ModelLayout.from_hf_config(self.hf_config)
        tp = self.options.tensor_parallel_size
        self.layout.check_tensor_parallel(tp)
        self.padded_vocab = self.layout.padded_vocab_size(tp, self.options.vocab_size_divisible_by)
        self.dtype = params_dtype(config.precision)
        self.gpt = build_gpt_model(self.hf_config, self.layout, self.padded_vocab, self.dtype,
                                   self.options, config.activation_checkpointing)
        self.gpt.cuda(self.device)
        self.loader = weights.StageWeights(self.layout, self.padded_vocab, self.options)
        self.loader.load_into(self.gpt, weights.load_hf_state(model_dir))
        module = Float16Module(self.gpt.config, self.gpt) if self.dtype != torch.float32 else self.gpt
        ddp_config = DistributedDataParallelConfig(
            grad_reduce_in_fp32=True,
            overlap_grad_reduce=self.options.overlap_grad_reduce,
            overlap_param_gather=self.options.overlap_param_gather,
            use_distributed_optimizer=self.options.use_distributed_optimizer,
        )
        self.model = DistributedDataParallel(self.gpt.config, ddp_config, module)
        opt = config.optimizer
        self.optimizer = get_megatron_optimizer(
            OptimizerConfig(
                optimizer="sgd" if opt.name == "sgd" else "adam",
                decoupled_weight_decay=opt.name != "adam",  # adamw: decoupled; adam: L2
                lr=opt.lr, weight_decay=opt.weight_decay, adam_beta1=opt.betas[0],
                adam_beta2=opt.betas[1], adam_eps=opt.eps, sgd_momentum=0.0,
                bf16=self.dtype == torch.bfloat16, fp16=self.dtype == torch.float16,
                params_dtype=self.dtype,
                # Infinity still computes (and returns) the norm while never clipping.
                clip_grad=config.max_grad_norm or math.inf,
                use_distributed_optimizer=self.options.use_distributed_optimizer,
                overlap_param_gather=self.options.overlap_param_gather,
            ),
            [self.model],
        )
        self._wire_schedule_hooks()
        self.updates = 0
        lr_multiplier(0, config.scheduler)  # a decaying schedule without total_steps fails now
        self._sync_params()
        # The reference copy lives on CPU: the GPUs never hold two models.
        self.reference = ReferenceWeights(self.model, "cpu")

    def _wire_schedule_hooks(self) -> None:
        cfg = self.gpt.config
        cfg.finalize_model_grads_func = _finalize_grads_without_token_scaling
        cfg.grad_scale_func = self.optimizer.scale_loss
        if self.options.overlap_grad_reduce:
            cfg.no_sync_func = self.model.no_sync
            cfg.grad_sync_func = self.model.start_grad_sync
        if self.options.overlap_param_gather:
            cfg.param_sync_func = self.model.start_param_sync

    def _sync_params(self) -> None:
        """With overlapped parameter gathers, the last update's weights arrive lazily in the next
        forward; anything reading weights directly first forces the gather."""
        if self.options.overlap_param_gather:
            self.model.start_param_sync(force_sync=True)

    def parallel_info(self) -> dict[str, Any]:
        """Data-parallel rank and size, and whether this rank reports results (last pipeline
        stage, tensor-parallel rank 0)."""
        return {"dp_rank": self.dp_rank, "dp_size": self.dp_size,
                "reports": self.last_stage and self.tp_rank == 0}

    # ------------------------------------------------------------------ forward passes
    def _micro_batches(self, shard: BatchedDataDict, for_logprobs: bool) -> list[BatchedDataDict]:
        groups = plan_microbatches(shard["input_lengths"], self.config, for_logprobs)
        micros = [shard.select_indices(g) for g in groups]
        if self.options.pipeline_parallel_size > 1:  # stages exchange one fixed shape
            size = self.config.logprob_batch_size if for_logprobs else None
            size = size or self.config.train_micro_batch_size
            micros = [pad_to_multiple(m, size)[0] for m in micros]
        return micros

    def _seq_len(self, micro: BatchedDataDict) -> int:
        longest = int(micro["input_lengths"].max())
        if self.options.pipeline_parallel_size > 1:
            longest = micro["input_ids"].shape[1]
        multiple = self.options.tensor_parallel_size if self.options.sequence_parallel else 1
        return -(-longest // multiple) * multiple

    def _forward_step(self, loss_fn: Any, data_iterator: Any, model: Any) -> tuple[Any, Any]:
        micro = next(data_iterator)
        seq = self._seq_len(micro)
        ids = torch.nn.functional.pad(micro["input_ids"], (0, max(0, seq - micro["input_ids"].shape[1])))[:, :seq]
        positions = torch.arange(seq, device=ids.device).expand(ids.shape[0], -1)
        output = model(ids, positions, None)  # None: Megatron's causal mask
        return output, partial(self._loss, loss_fn, micro, ids)

    def _loss(self, loss_fn: Any, micro: BatchedDataDict, ids: torch.Tensor, logits: torch.Tensor):
        local_vocab = logits.shape[-1]
        logprobs = shifted_token_logprobs(
            logits, ids, self.tp_rank * local_vocab, self.layout.vocab_size, self.tp_group
        )
        width = micro["input_ids"].shape[1]
        logprobs = torch.nn.functional.pad(logprobs, (0, max(0, width - logprobs.shape[1])))[:, :width]
        mask = torch.arange(width, device=ids.device) < micro["input_lengths"].unsqueeze(1)
        logprobs = logprobs * mask
        no_tokens = torch.zeros((), dtype=torch.int, device=ids.device)
        return loss_fn(logprobs, micro, no_tokens)

    def _run(self, micros: list[BatchedDataDict], loss_fn: Any, forward_only: bool) -> list[dict]:
        from megatron.core.pipeline_parallel import get_forward_backward_func

        if not micros:
            return []
        return get_forward_backward_func()(
            forward_step_func=partial(self._forward_step, loss_fn),
            data_iterator=iter(micros),
            model=[self.model],
            num_microbatches=len(micros),
            seq_length=self._seq_len(micros[0]),
            micro_batch_size=micros[0]["input_ids"].shape[0],
            forward_only=forward_only,
        )

    # ------------------------------------------------------------------ training
    def train_update(
        self, shard: BatchedDataDict, loss_fn: LossFunction, global_valid_tokens: int,
        global_valid_seqs: int,
    ) -> dict[str, float]:
        """One optimizer update on this data-parallel rank's shard.

        Returns this rank's summed loss metrics (empty off the reporting ranks) plus `grad_norm`
        (global, before clipping), `lr`, `nonfinite_microbatches` and `skipped`. A non-finite
        loss on any rank, or a non-finite gradient, skips the optimizer step on every rank.
        """
        shard = shard.to(self.device)
        self.model.train()
        self.model.zero_grad_buffer()
        self.optimizer.zero_grad()

        def training_loss(logprobs, micro, no_tokens):
            loss, metrics = loss_fn(logprobs, micro, global_valid_tokens, global_valid_seqs)
            return loss, no_tokens, {**metrics, "loss": loss.detach()}

        results = self._run(self._micro_batches(shard, False), training_loss, forward_only=False)
        micro_metrics = metrics_to_host(results)  # one device-to-host copy for all of them
        nonfinite = sum(not math.isfinite(m["loss"]) for m in micro_metrics)
        lr = self.config.optimizer.lr * lr_multiplier(self.updates, self.config.scheduler)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        skip = self._any_rank(nonfinite > 0 or not self._grads_finite())
        grad_norm = math.nan
        if not skip:
            success, norm, _ = self.optimizer.step()
            skip = not success  # fp16 loss-scale overflow
            grad_norm = float(norm) if norm is not None else math.nan
        if skip:
            self.optimizer.zero_grad()
        else:
            self.updates += 1
        result = merge_metrics(micro_metrics) if micro_metrics else {}
        return {**result, "grad_norm": grad_norm, "lr": lr,
                "nonfinite_microbatches": float(nonfinite), "skipped": float(skip)}

    def _grads_finite(self) -> bool:
        return all(bool(torch.isfinite(b.grad_data).all()) for b in self._buffers())

    def _any_rank(self, flag: bool) -> bool:
        import torch.distributed as dist

        value = torch.tensor([float(flag)], device=self.device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item() > 0)

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def get_logprobs(self, shard: BatchedDataDict, reference: bool) -> torch.Tensor | None:
        """[B, T] log-probs of this data-parallel rank's shard (reporting ranks; others None)."""
        shard = shard.to(self.device)
        self.model.eval()
        micros = self._micro_batches(shard, True)

        def keep_logprobs(logprobs, micro, no_tokens):
            return torch.zeros((), device=self.device), no_tokens, {"logprobs": logprobs.float().cpu()}

        self._sync_params()
        if reference:
            with self.reference.swapped_in(self.model):
                results = self._run(micros, keep_logprobs, forward_only=True)
        else:
            results = self._run(micros, keep_logprobs, forward_only=True)
        self.model.train()
        if not self.parallel_info()["reports"]:
            return None
        rows = torch.cat([r["logprobs"] for r in results], dim=0) if results else torch.zeros(0, 0)
        return rows[: shard.size]  # drop rows added to fill pipeline micro-batches

    # ------------------------------------------------------------------ weights and checkpoints
    def export_chunk_count(self) -> int:
        """Chunks of `export_chunk`: the embedding, each layer, the final norm and output."""
        return self.layout.num_layers + 2

    @torch.no_grad()
    def export_chunk(self, index: int) -> dict[str, torch.Tensor] | None:
        """HF-named full tensors of chunk `index` on global rank 0 (None elsewhere); collective."""
        self._sync_params()
        return self.loader.export_chunk(self.gpt, index)

    def save_checkpoint(self, path: str) -> None:
        """HF safetensors (+ tokenizer) at `path`; optimizer in Megatron's distributed format."""
        weights.save_checkpoint(self, path)

    def load_checkpoint(self, path: str) -> None:
        """Restore weights, optimizer state and the update counter from `save_checkpoint`."""
        weights.load_checkpoint(self, path)

    # ------------------------------------------------------------------ colocation
    def offload(self) -> None:
        """Free the GPU: parameters, gradient buffers and optimizer state go to CPU."""
        torch.cuda.synchronize()
        for buffer in self._buffers():
            buffer.offload_to_cpu(move_params=True, move_grads=True)
        for param in self._unbuffered_params():
            param.data = param.data.cpu()
        self.optimizer.offload_to_cpu()
        torch.cuda.empty_cache()
        self._offloaded = True

    def onload(self) -> None:
        """Bring parameters, gradient buffers and optimizer state back to this rank's GPU."""
        for buffer in self._buffers():
            buffer.reload_from_cpu(move_params=True, move_grads=True)
        for param in self._unbuffered_params():
            param.data = param.data.to(self.device)
        self.optimizer.restore_from_cpu()
        self._offloaded = False

    def weights_resident(self, resident: bool) -> bool:
        """While offloaded, bring only the parameters back (`resident=True`) for a weight export,
        or send them out again (`False`); gradients and optimizer state stay on the host. Megatron's
        offload frees the parameter buffers' device storage, so an export must not read them then
        (colocated refits run while the policy is offloaded). Returns whether anything moved.
        """
        if not self._offloaded:
            return False
        for buffer in self._buffers():
            if resident:
                buffer.reload_from_cpu(move_params=True, move_grads=False)
            else:
                buffer.offload_to_cpu(move_params=True, move_grads=False)
        device = self.device if resident else "cpu"
        for param in self._unbuffered_params():
            param.data = param.data.to(device)
        torch.cuda.synchronize()
        if not resident:
            torch.cuda.empty_cache()
        return True

    def _buffers(self) -> list:
        return list(self.model.buffers) + list(self.model.expert_parallel_buffers)

    def _unbuffered_params(self) -> list[torch.nn.Parameter]:
        # Without the distributed optimizer the parameters are not views of a DDP buffer.
        if any(b.param_data is not None for b in self._buffers()):
            return []
        return list(self.model.parameters())
