"""Moving weights between HF files and a rank's Megatron stage: load, export, checkpoints.

Every rank reads the HF checkpoint, converts it (`conversion`) and keeps its pipeline stage's
tensor-parallel shard (`sharding`). Export goes the other way one chunk (the embedding, one
layer, or the final norm and output layer) at a time: tensor-parallel pieces are all-gathered,
merged, and the owning stage sends the HF-named tensors to global rank 0. A checkpoint holds the
model as HF safetensors (loadable by transformers) and the optimizer in Megatron's distributed
checkpoint format under `optim/`.

Example:
    >>> # StageWeights(layout, padded_vocab, options).load_into(gpt_model, load_hf_state(model_dir))
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from nemo_rl.config.megatron import MegatronConfig
from nemo_rl.config.policy import PolicyConfig
from nemo_rl_dtensor.checkpointing import load_hf_weights, save_hf_model

from nemo_rl_megatron.conversion import hf_to_megatron, iter_megatron_to_hf
from nemo_rl_megatron.layout import ModelLayout
from nemo_rl_megatron.sharding import (
    merge_tensor_parallel,
    pipeline_layer_counts,
    shard_tensor_parallel,
    split_pipeline,
)

OPTIM_DIR, STATE_FILE = "optim", "megatron_state.json"


def resolve_model_dir(model_name: str) -> Path:
    """A local HF model directory, downloading a hub name's config and safetensors if needed."""
    path = Path(model_name)
    if path.is_dir():
        return path
    from huggingface_hub import snapshot_download

    patterns = ["*.json", "*.safetensors", "tokenizer*", "*.model", "*.txt"]
    return Path(snapshot_download(model_name, allow_patterns=patterns))


def load_hf_configs(model_dir: Path, config: PolicyConfig) -> tuple[Any, Any]:
    """The model's transformers config and generation config (None when the model has none)."""
    from transformers import AutoConfig, GenerationConfig

    hf_config = AutoConfig.from_pretrained(model_dir, trust_remote_code=config.trust_remote_code)
    try:
        generation = GenerationConfig.from_pretrained(model_dir)
    except OSError:
        generation = None
    return hf_config, generation


def load_hf_state(model_dir: Path) -> dict[str, torch.Tensor]:
    """Every tensor of the HF checkpoint in `model_dir` (CPU)."""
    return load_hf_weights(Path(model_dir))


class StageWeights:
    """Where this rank's tensors come from and go to (see the module docstring).

    Example:
        >>> # weights = StageWeights(layout, padded_vocab, MegatronConfig()); weights.export_chunk(gpt, 0)
    """

    def __init__(self, layout: ModelLayout, padded_vocab: int, options: MegatronConfig) -> None:
        from megatron.core import parallel_state as ps

        self.layout, self.padded_vocab, self.options = layout, padded_vocab, options
        self.counts = pipeline_layer_counts(layout.num_layers, options.pipeline_parallel_size)
        self.tp_rank, self.pp_rank = ps.get_tensor_model_parallel_rank(), ps.get_pipeline_model_parallel_rank()
        self.tp_group, self.pp_group = ps.get_tensor_model_parallel_group(), ps.get_pipeline_model_parallel_group()
        self.first_layer = sum(self.counts[: self.pp_rank])

    def load_into(self, gpt: torch.nn.Module, hf_state: dict[str, torch.Tensor]) -> None:
        """Convert, cut and copy an HF state dict into this rank's GPTModel stage."""
        full = hf_to_megatron(hf_state, self.layout, self.padded_vocab)
        stage = split_pipeline(full, self.counts, self.layout.tied_embeddings)[self.pp_rank]
        local = shard_tensor_parallel(stage, self.options.tensor_parallel_size)[self.tp_rank]
        missing, unexpected = gpt.load_state_dict(local, strict=False)
        missing = [k for k in missing if not k.endswith("_extra_state")]
        if missing or unexpected:
            raise RuntimeError(
                f"the converted weights do not fit this GPTModel stage: missing {missing[:5]}, "
                f"unexpected {unexpected[:5]}; please report this with the model's config.json"
            )

    def _owner(self, index: int) -> int:
        """The pipeline stage holding export chunk `index` (0: embedding, last: output)."""
        if index == 0:
            return 0
        if index == self.layout.num_layers + 1:
            return len(self.counts) - 1
        layer, start = index - 1, 0
        for stage, count in enumerate(self.counts):
            if layer < start + count:
                return stage
            start += count
        raise IndexError(f"export chunk {index} does not exist ({self.layout.num_layers + 2} chunks)")

    def _local_names(self, gpt: torch.nn.Module, index: int) -> dict[str, torch.Tensor]:
        state = {k: v for k, v in gpt.state_dict().items() if isinstance(v, torch.Tensor)}
        if index == 0:
            return {k: v for k, v in state.items() if k.startswith("embedding.")}
        if index == self.layout.num_layers + 1:
            keep = ["decoder.final_layernorm.weight"]
            if not self.layout.tied_embeddings:
                keep.append("output_layer.weight")
            return {k: state[k] for k in keep}
        prefix = f"decoder.layers.{index - 1 - self.first_layer}."
        global_prefix = f"decoder.layers.{index - 1}."
        return {global_prefix + k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}

    def export_chunk(self, gpt: torch.nn.Module, index: int) -> dict[str, torch.Tensor] | None:
        """HF-named full tensors of chunk `index` on global rank 0; every rank must call it."""
        import torch.distributed as dist

        owner = self._owner(index)
        merged: dict[str, torch.Tensor] = {}
        if self.pp_rank == owner:
            local = self._local_names(gpt, index)
            tp = self.options.tensor_parallel_size
            pieces: list[dict[str, torch.Tensor]] = [{} for _ in range(tp)]
            for name, tensor in local.items():
                if tp == 1:
                    pieces[0][name] = tensor
                    continue
                if not tensor.is_cuda and dist.get_backend(self.tp_group) == "nccl":
                    # Offloaded for colocated generation (the refit runs then): NCCL gathers device tensors only.
                    tensor = tensor.cuda()
                gathered = [torch.empty_like(tensor) for _ in range(tp)]
                dist.all_gather(gathered, tensor.contiguous(), group=self.tp_group)
                for rank, piece in enumerate(gathered):
                    pieces[rank][name] = piece
            full = merge_tensor_parallel(pieces)
            part = {0: "embedding", self.layout.num_layers + 1: "output"}.get(index, index - 1)
            merged = {n: t.cpu() for n, t in iter_megatron_to_hf(full, self.layout, parts=[part])}
        if len(self.counts) > 1:
            box = [merged]
            dist.broadcast_object_list(box, src=dist.get_global_rank(self.pp_group, owner), group=self.pp_group)
            merged = box[0]
        return merged if dist.get_rank() == 0 else None


# The distributed optimizer's checkpoint layout. megatron-core 0.19's default,
# 'fully_sharded_model_space', is deprecated there and fails its own metadata check
# ("ShardedTensor.flattened_range is not supported", seen on an H200); 'dp_reshardable' saves and
# loads each rank's buffers in parallel and can be resumed with another data-parallel size only.
OPTIM_METADATA = {"distrib_optim_sharding_type": "dp_reshardable"}


def save_checkpoint(worker: Any, path: str | Path) -> None:
    """HF model + tokenizer at `path` (rank 0), the optimizer under `path/optim` (all ranks)."""
    import torch.distributed as dist
    from megatron.core import dist_checkpointing
    from transformers import AutoTokenizer

    path = Path(path)
    tensors: dict[str, torch.Tensor] = {}
    for index in range(worker.export_chunk_count()):
        chunk = worker.export_chunk(index)
        if chunk:
            tensors.update(chunk)
    if dist.get_rank() == 0:
        save_hf_model(tensors, worker.hf_config, worker.generation_config, path)
        AutoTokenizer.from_pretrained(
            worker.config.tokenizer_name, trust_remote_code=worker.config.trust_remote_code
        ).save_pretrained(str(path))
        (path / OPTIM_DIR).mkdir(parents=True, exist_ok=True)
        (path / STATE_FILE).write_text(json.dumps({"updates": worker.updates}))
    dist.barrier()
    sharded = worker.optimizer.sharded_state_dict(worker.gpt.sharded_state_dict(), metadata=OPTIM_METADATA)
    dist_checkpointing.save({"optimizer": sharded}, str(path / OPTIM_DIR))


def load_checkpoint(worker: Any, path: str | Path) -> None:
    """Weights from the HF files, then optimizer state (with its float32 master weights)."""
    from megatron.core import dist_checkpointing

    path = Path(path)
    worker.loader.load_into(worker.gpt, load_hf_state(path))
    sharded = worker.optimizer.sharded_state_dict(
        worker.gpt.sharded_state_dict(), is_loading=True, metadata=OPTIM_METADATA
    )
    state = dist_checkpointing.load({"optimizer": sharded}, str(path / OPTIM_DIR))
    worker.optimizer.load_state_dict(state["optimizer"])
    worker.updates = json.loads((path / STATE_FILE).read_text())["updates"]
