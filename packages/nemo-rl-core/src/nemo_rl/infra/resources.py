"""Placement of training and generation on the cluster's GPUs, and colocation at run time.

It decides how many GPUs each side gets and refuses impossible requests; which GPUs they are is
decided in `nemo_rl.infra.placement` (one host so far). The cluster's GPUs
(`num_nodes * gpus_per_node`) are shared by both sides when `generation.colocated`; otherwise
generation takes `generation.num_gpus` of them and training the rest, which must be at least one.

The `PhaseSwitcher` is the only place that calls `offload()/onload()` and `sleep()/wake()`: in a
colocated run, memory must be handed over between the two sides at each phase change; with
separate GPUs both stay resident and the switch does nothing.

Example:
    >>> from nemo_rl.config import ClusterConfig, ConfigError, GenerationConfig
    >>> manager = ResourceManager(ClusterConfig(gpus_per_node=8),
    ...                           GenerationConfig(colocated=False, num_gpus=2))
    >>> manager.plan.training_gpus, manager.plan.generation_gpus
    (6, 2)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

from nemo_rl.config import ClusterConfig, ConfigError, GenerationConfig
from nemo_rl.protocols import (
    GenerationBackend,
    InlineModuleSource,
    ModuleSharingGeneration,
    TrainingBackend,
)

Phase = Literal["training", "generation"]


class ResourceError(ConfigError):
    """The cluster cannot host the requested training/generation split (a config error: the
    message names the fields to change)."""


@dataclass(frozen=True)
class ResourcePlan:
    """How many GPUs each side uses; when `colocated`, the same GPUs serve both sides."""

    total_gpus: int
    colocated: bool
    training_gpus: int
    generation_gpus: int


def plan_resources(cluster: ClusterConfig, generation: GenerationConfig) -> ResourcePlan:
    """The GPU split of a run, or a ResourceError naming the fields to change.

    `cluster.gpus_per_node: auto` counts the GPUs this process sees.

    Example:
        >>> plan_resources(ClusterConfig(gpus_per_node=4), GenerationConfig()).training_gpus
        4
    """
    detected = " (auto: the GPUs this process sees)" if cluster.detected else ""
    cluster = cluster.resolve()
    total = cluster.num_nodes * cluster.gpus_per_node
    cluster_desc = (
        f"the cluster has {total} GPU(s) (cluster.num_nodes={cluster.num_nodes} x "
        f"cluster.gpus_per_node={cluster.gpus_per_node}{detected})"
    )
    if generation.colocated:
        if generation.num_gpus:
            raise ResourceError(
                f"generation.num_gpus={generation.num_gpus} is only used when generation has its "
                "own GPUs; set generation.colocated=false to give it separate GPUs, or "
                "generation.num_gpus=0 to share the training GPUs"
            )
        return ResourcePlan(total, True, training_gpus=total, generation_gpus=total)
    if total == 0:
        if generation.num_gpus:
            raise ResourceError(
                f"generation.num_gpus={generation.num_gpus} with generation.colocated=false but "
                f"{cluster_desc}; run on a machine with GPUs (or set cluster.gpus_per_node), or "
                "set generation.num_gpus=0 to generate on the CPU"
            )
        return ResourcePlan(0, False, training_gpus=0, generation_gpus=0)
    if generation.num_gpus == 0:
        raise ResourceError(
            "generation.colocated=false needs generation.num_gpus >= 1 on a GPU cluster; set "
            "it, or set generation.colocated=true to share the training GPUs"
        )
    if generation.num_gpus >= total:
        raise ResourceError(
            f"generation.num_gpus={generation.num_gpus} leaves no GPU for training: {cluster_desc} "
            "and training needs at least one beyond generation's; lower generation.num_gpus, add "
            "GPUs, or set generation.colocated=true"
        )
    return ResourcePlan(
        total, False, training_gpus=total - generation.num_gpus, generation_gpus=generation.num_gpus
    )


class PhaseSwitcher:
    """Hands accelerator memory between training and generation at phase changes when colocated.

    `enter_generation` offloads the policy, then wakes the generation engine; `enter_training`
    puts the engine to sleep, then onloads the policy (freeing before allocating, so the peak is
    one side's memory). Entering the current phase again does nothing. The first call after
    construction always switches, so backends must accept offload/onload/sleep/wake when already
    in that state.

    Example:
        >>> switcher = PhaseSwitcher(colocated=False)
        >>> switcher.enter_generation(None, None)  # separate GPUs: nothing to hand over
        >>> switcher.phase
        'generation'
    """

    def __init__(self, colocated: bool) -> None:
        self.colocated = colocated
        self.phase: Phase | None = None
        # Seconds spent per hand-over action since the last `pop_timings()` (step metrics: the
        # hand-over is part of every colocated step's time and the first thing to look at).
        self.timings: dict[str, float] = {}

    def timed(self, name: str, action: Callable[[], object]) -> None:
        """Run `action`, adding its wall time to `timings["time/<name>_s"]`."""
        started = time.perf_counter()
        action()
        key = f"time/{name}_s"
        self.timings[key] = self.timings.get(key, 0.0) + time.perf_counter() - started

    def enter_generation(
        self, train_backend: TrainingBackend, gen_backend: GenerationBackend
    ) -> None:
        if self.phase == "generation":
            return
        if self.colocated:
            self.timed("offload", train_backend.offload)
            self.timed("wake", gen_backend.wake)
        self.phase = "generation"

    def enter_training(
        self, train_backend: TrainingBackend, gen_backend: GenerationBackend
    ) -> None:
        if self.phase == "training":
            return
        if self.colocated:
            self.timed("sleep", gen_backend.sleep)
            self.timed("onload", train_backend.onload)
        self.phase = "training"


def check_resources(config: object) -> ResourcePlan | None:
    """The resource plan of an algorithm config, checked before anything starts.

    Configs without a `generation` section (SFT, DPO) train on every worker: nothing to split,
    None. Raises `ResourceError` (a `ConfigError`) when the split is impossible, or when it
    cannot be placed yet (`nemo_rl.infra.placement`).

    Example:
        >>> from nemo_rl.config import GRPOConfig
        >>> check_resources(GRPOConfig(cluster=ClusterConfig(gpus_per_node=0),
        ...     generation=GenerationConfig(colocated=False, num_gpus=3)))
        Traceback (most recent call last):
        ...
        nemo_rl.infra.resources.ResourceError: invalid config: generation.num_gpus=3 with generation.colocated=false but the cluster has 0 GPU(s) ...
    """
    generation = getattr(config, "generation", None)
    if generation is None:
        return None
    plan = plan_resources(config.cluster, generation)  # type: ignore[attr-defined]
    from nemo_rl.infra.placement import training_cluster_config  # it imports this module

    training_cluster_config(config.cluster, plan)  # type: ignore[attr-defined]  # placeable?
    return plan


class ResourceManager:
    """The run's `ResourcePlan`, and everything colocation decides at run time.

    `attach(cluster, policy, generation)` connects the backends: colocated on a world-size-1
    inline cluster, with a policy that is an `InlineModuleSource` and a generation backend that
    is a `ModuleSharingGeneration` (optional capabilities declared in `nemo_rl.protocols`),
    generation shares the training module itself (held once, no weight refit);
    otherwise a `PhaseSwitcher` hands memory over at phase changes when colocated.
    `generation_phase()` wraps a rollout: offload/wake, refit the generation weights if training
    changed them (`mark_stale()`), then sleep/onload on the way out, even after an error.

    Example: see the module docstring.
    """

    def __init__(self, cluster: ClusterConfig, generation: GenerationConfig) -> None:
        self.plan = plan_resources(cluster, generation)
        self.switcher = PhaseSwitcher(self.plan.colocated)
        self.shared_module = False
        self._backends: tuple[TrainingBackend, GenerationBackend] | None = None
        self._stale = False

    @property
    def colocated(self) -> bool:
        return self.plan.colocated

    def attach(self, cluster: Any, policy: TrainingBackend, generation: GenerationBackend) -> None:
        """Connect the backends set up on `cluster`, taking the shared-module fast path if it
        applies (see the class docstring)."""
        from nemo_rl.infra.cluster.inline import InlineCluster

        self.shared_module = (
            self.plan.colocated and isinstance(cluster, InlineCluster)
            and isinstance(policy, InlineModuleSource)
            and isinstance(generation, ModuleSharingGeneration)
        )
        if self.shared_module:
            generation.share_module(policy.inline_module())  # type: ignore[union-attr]
        self.switcher = PhaseSwitcher(self.plan.colocated and not self.shared_module)
        self._backends = (policy, generation)

    def mark_stale(self) -> None:
        """The policy's weights changed: push them to generation before the next rollout."""
        self._stale = True

    @contextmanager
    def generation_phase(self) -> Iterator[None]:
        """Generation awake with current weights inside; training resident again after."""
        if self._backends is None:
            raise RuntimeError("ResourceManager.attach(cluster, policy, generation) first")
        policy, generation = self._backends
        self.switcher.enter_generation(policy, generation)
        try:
            if self._stale and not self.shared_module:
                self.switcher.timed("refit", lambda: generation.update_weights(policy.export_weights()))
            self._stale = False
            yield
        finally:
            self.switcher.enter_training(policy, generation)

    def pop_timings(self) -> dict[str, float]:
        """Seconds spent in offload/wake/refit/sleep/onload since the last call (only the actions
        that ran), for the step's metrics.

        Example:
            >>> ResourceManager(ClusterConfig(gpus_per_node=0), GenerationConfig()).pop_timings()
            {}
        """
        timings, self.switcher.timings = self.switcher.timings, {}
        return timings

    def enter_generation(
        self, train_backend: TrainingBackend, gen_backend: GenerationBackend
    ) -> None:
        """See `PhaseSwitcher.enter_generation`."""
        self.switcher.enter_generation(train_backend, gen_backend)

    def enter_training(
        self, train_backend: TrainingBackend, gen_backend: GenerationBackend
    ) -> None:
        """See `PhaseSwitcher.enter_training`."""
        self.switcher.enter_training(train_backend, gen_backend)


def describe_plan(plan: ResourcePlan | None) -> list[str]:
    """The resource plan as report lines (none for a run without generation).

    Example:
        >>> describe_plan(ResourcePlan(8, False, training_gpus=6, generation_gpus=2))
        ['resources: training on 6 GPU(s), generation on 2 separate GPU(s)']
    """
    if plan is None:
        return []
    if plan.total_gpus == 0:
        return ["resources: training and generation on the CPU"]
    if plan.colocated:
        return [f"resources: training and generation share {plan.total_gpus} GPU(s) (colocated)"]
    return [
        f"resources: training on {plan.training_gpus} GPU(s), generation on "
        f"{plan.generation_gpus} separate GPU(s)"
    ]
