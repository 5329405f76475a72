"""The contracts between layers: training and generation backends, losses, environments, clusters.

Backends are plugins (see `nemo_rl.registry`); they implement these protocols structurally, without
inheriting from anything in core. A backend knows nothing of algorithms: it receives a batch and a
loss function. Colocation is decided by infra, which calls `offload()/onload()` and
`sleep()/wake()` at phase changes.

Example:
    >>> from nemo_rl.protocols import EnvStep
    >>> import torch
    >>> EnvStep(rewards=torch.tensor([1.0]), observations=[None], done=[True]).batch_size
    1
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypedDict, runtime_checkable

import torch

if TYPE_CHECKING:
    from nemo_rl.config import GenerationConfig, PolicyConfig, SamplingParams
    from nemo_rl.data.batched_data_dict import BatchedDataDict


# Metrics a TrainingBackend's train_step reports for updates it skipped (see TrainingBackend).
SKIPPED_UPDATES = "nonfinite/skipped_updates"
NONFINITE_MICROBATCHES = "nonfinite/microbatches"


class Message(TypedDict, total=False):
    """One chat message, as in HF chat templates: {"role": "user", "content": "..."}."""

    role: str
    content: str


@runtime_checkable
class WorkerGroup(Protocol):
    """Workers started by a `Cluster`, one per rank, all running the same class.

    `run(method, *args)` calls `method` on every worker with the same arguments and returns their
    results in rank order; `run_sharded(method, shards)` gives worker i the i-th argument tuple.
    """

    world_size: int

    def run(self, method: str, *args: Any, **kwargs: Any) -> list[Any]:
        """Call `method(*args, **kwargs)` on every worker; their results in rank order."""
    def run_sharded(self, method: str, shards: Sequence[tuple]) -> list[Any]:
        """Call `method(*shards[i])` on worker i; their results in rank order."""
    def shutdown(self) -> None:
        """Stop the workers; the group (cluster) cannot be used afterwards."""


@runtime_checkable
class Cluster(Protocol):
    """Where workers run: inline in this process, local processes, or Ray actors.

    `spawn(factory, *args)` builds `factory(*args)` on every worker after torch.distributed is
    initialised there (for world size 1 inline, no process group is needed).
    """

    world_size: int

    @property
    def device_type(self) -> str:
        """The device the workers compute on: "cuda" or "cpu"."""
    def spawn(self, factory: Callable[..., Any], *args: Any, **kwargs: Any) -> WorkerGroup:
        """Build `factory(*args, **kwargs)` on every worker; the group that drives them."""
    def shutdown(self) -> None:
        """Stop the workers; the group (cluster) cannot be used afterwards."""


@runtime_checkable
class LossFunction(Protocol):
    """A loss over one micro-batch, already normalised by the global valid counts.

    `global_valid_tokens` and `global_valid_seqs` count the valid tokens/sequences of the whole
    optimizer batch across micro-batches and ranks, so summing the micro-batch losses gives the
    same value however the batch is split.

    Metrics are floats or one-number tensors (detached, 0-dim): a backend reads the tensors of
    all micro-batches to the host in one copy per update, so a loss that returns tensors, rather
    than calling `.item()`, never makes the micro-batch loop wait on the device.
    """

    def __call__(
        self,
        logprobs: torch.Tensor,
        batch: BatchedDataDict,
        global_valid_tokens: int,
        global_valid_seqs: int,
    ) -> tuple[torch.Tensor, dict[str, float | torch.Tensor]]:
        """The micro-batch's loss (a scalar tensor to backpropagate) and its metrics."""


@runtime_checkable
class TrainingBackend(Protocol):
    """Trains the policy. Batches hold `input_ids` [B, T], `input_lengths` [B], `token_mask` [B, T]
    and `sample_mask` [B] plus whatever the loss reads. `logprobs[:, t]` is the log-probability of
    token t given tokens before it (column 0 is 0).

    `train_step` never applies an update whose loss or gradient norm is not finite: it leaves the
    weights, optimizer and scheduler as they were and reports the totals under
    `SKIPPED_UPDATES` and `NONFINITE_MICROBATCHES`; the trainer warns and stops after too many.

    Optional capability: `InlineModuleSource` (share the live module with generation)."""

    def setup(self, config: PolicyConfig, cluster: Cluster) -> None:
        """Load the model `config` names on the cluster's workers; build the optimizer, the
        scheduler and the reference weights."""
    def train_step(self, batch: BatchedDataDict, loss_fn: LossFunction) -> dict[str, float]:
        """Optimizer updates over `batch` (`train_global_batch_size` sequences each, cut into
        micro-batches), `loss_fn` called per micro-batch with the update's global valid counts;
        returns metrics (loss, grad_norm, lr, ...)."""
    def get_logprobs(self, batch: BatchedDataDict, reference: bool = False) -> torch.Tensor:
        """Per-token log-probs [B, T] of `batch` under the current weights, or the initial ones with
        `reference=True`; no gradient."""
    def save_checkpoint(self, path: Path) -> None:
        """Write weights (HF safetensors), optimizer and scheduler state into directory `path`."""
    def load_checkpoint(self, path: Path) -> None:
        """Restore what `save_checkpoint` wrote into `path`."""
    def export_weights(self) -> Iterator[tuple[str, torch.Tensor]]:
        """Stream (HF parameter name, full tensor) pairs of the current weights, for a generation
        backend's `update_weights`."""
    def offload(self) -> None:
        """Free accelerator memory while generation uses the same GPUs (colocation)."""
    def onload(self) -> None:
        """Undo `offload` before the next training or log-prob pass."""


@runtime_checkable
class GenerationBackend(Protocol):
    """Samples responses. `generate` takes `input_ids` [B, T] (left or right padded as the backend
    documents) with `input_lengths` [B] and returns `output_ids` [B, L] (the generated tokens
    only, right padded), `logprobs` [B, L] of the sampled tokens, `lengths` [B] and `truncated` [B]
    (True when max_new_tokens was reached before a stop).

    Optional capabilities: `ModuleSharingGeneration` (generate with the training module itself)
    and `StreamingGeneration` (hand out each row as soon as it finishes)."""

    def setup(self, config: GenerationConfig, cluster: Cluster) -> None:
        """Load the model `config` names for generation on the cluster's devices."""
    def generate(self, prompts: BatchedDataDict, sampling: SamplingParams) -> BatchedDataDict:
        """Sample one response per prompt row with `sampling` (outputs: see the class docstring)."""
    def update_weights(self, weights: Iterable[tuple[str, torch.Tensor]]) -> None:
        """Load new weights given as (HF name, tensor) pairs, as `export_weights` streams them."""
    def sleep(self) -> None:
        """Release accelerator memory (weights, caches) while the policy trains on the same GPUs."""
    def wake(self) -> None:
        """Restore what `sleep` released, before the next `generate`."""


@runtime_checkable
class InlineModuleSource(Protocol):
    """Optional capability of a `TrainingBackend`: hand out its live `torch.nn.Module` when its
    only worker runs in this process, so a colocated generation backend can generate with the
    training weights themselves (no second copy, no weight refit).

    Infra (`nemo_rl.infra.ResourceManager`) takes this fast path only on a world-size-1
    `InlineCluster` with a generation backend that is a `ModuleSharingGeneration`; every other
    run exports weights and calls `update_weights`. `inline_module()` raises when the module does
    not live in this process.

    Example:
        >>> import torch
        >>> class Tiny:
        ...     def inline_module(self) -> torch.nn.Module:
        ...         return torch.nn.Linear(1, 1)
        >>> isinstance(Tiny(), InlineModuleSource)
        True
    """

    def inline_module(self) -> torch.nn.Module:
        """The live policy module; raises when it does not live in this process."""


@runtime_checkable
class ModuleSharingGeneration(Protocol):
    """Optional capability of a `GenerationBackend`: generate with a module it is given (the
    training backend's, see `InlineModuleSource`) instead of its own copy; `update_weights` then
    has nothing to do.

    Example:
        >>> class Gen:
        ...     def share_module(self, module) -> None:
        ...         self.module = module
        >>> isinstance(Gen(), ModuleSharingGeneration)
        True
    """

    def share_module(self, module: torch.nn.Module) -> None:
        """Generate with `module` from now on, instead of a copy of the weights."""


@runtime_checkable
class StreamingGeneration(Protocol):
    """Optional capability of a `GenerationBackend`: `generate_stream` yields `(row, result)` for
    each prompt row as soon as that row finishes, in finishing order, so the rollout engine can
    score finished samples while the others still generate (the basis of asynchronous RL).

    `result` is the one-row form of `generate`'s result (`output_ids` [1, n], `logprobs` [1, n],
    `lengths` [1], `truncated` [1]); row i gets exactly what `generate` would give it (same
    per-row seed, same tokens). Every row is yielded once. Closing the iterator early cancels the
    rows not yielded yet. The rollout engine (`nemo_rl.rollout.RolloutEngine`) uses it when the
    backend has it and calls `generate` otherwise.

    Example:
        >>> class Gen:
        ...     def generate_stream(self, prompts, sampling):
        ...         return iter([])
        >>> isinstance(Gen(), StreamingGeneration)
        True
    """

    def generate_stream(
        self, prompts: BatchedDataDict, sampling: SamplingParams
    ) -> Iterator[tuple[int, BatchedDataDict]]:
        """`(row index, that row's one-row result)` pairs, each as soon as the row finishes."""


@dataclass
class EnvStep:
    """What an environment returns for a batch of conversations.

    `rewards` is a [B] tensor or a dict of named [B] tensors (reward components, all logged);
    `observations` holds the next message per sample (None when done); `done` ends a conversation.
    """

    rewards: torch.Tensor | dict[str, torch.Tensor]
    observations: list[Message | None]
    done: list[bool]
    metadata: list[dict[str, Any]] = field(default_factory=list)

    @property
    def batch_size(self) -> int:
        return len(self.done)

    def total_reward(self, weights: dict[str, float] | None = None) -> torch.Tensor:
        """The scalar reward per sample: the tensor itself, or the weighted sum of components."""
        if isinstance(self.rewards, torch.Tensor):
            return self.rewards
        weights = weights or {}
        return sum(weights.get(k, 1.0) * v for k, v in self.rewards.items())  # type: ignore[return-value]


@runtime_checkable
class Environment(Protocol):
    """Scores (and for multi-turn tasks, continues) conversations. Single-turn is the common case:
    return done=True for every sample."""

    def step(self, messages: list[list[Message]], metadata: list[dict[str, Any]]) -> EnvStep:
        """Score each conversation (and continue those not done); one entry per conversation in
        every field of the result."""
