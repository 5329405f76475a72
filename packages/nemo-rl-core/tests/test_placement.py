"""Which GPUs each side gets with `generation.colocated: false` (`nemo_rl.infra.placement`).

The plan only: that the GPUs are really used as planned needs a machine with two GPUs or more
(nemo-rl-vllm's `tests/test_gpu_separate.py`)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nemo_rl.config import ClusterConfig, GenerationConfig, GRPOConfig
from nemo_rl.infra.placement import separate_devices, training_cluster_config
from nemo_rl.infra.resources import ResourceError, ResourcePlan, check_resources, plan_resources


def test_training_keeps_the_first_gpus_and_generation_takes_the_next():
    assert separate_devices(1, 1, visible=2) == ([0], [1])
    assert separate_devices(6, 2, visible=8) == ([0, 1, 2, 3, 4, 5], [6, 7])
    assert separate_devices(3, 2, visible=8) == ([0, 1, 2], [3, 4])  # the rest stays free


@pytest.mark.parametrize(
    ("training", "generation", "visible", "message"),
    [
        (2, 1, 2, r"generation.num_gpus=1 after 2 training GPU\(s\) needs 3 GPUs on this host but it has 2"),
        (1, 0, 4, "set generation.num_gpus >= 1"),
        (0, 1, 4, "at least one GPU per side"),
    ],
)
def test_a_host_without_enough_gpus_is_one_clear_error(training, generation, visible, message):
    with pytest.raises(ResourceError, match=message) as info:
        separate_devices(training, generation, visible)
    assert "generation.colocated=true" in str(info.value)


@settings(max_examples=200, deadline=None)
@given(training=st.integers(1, 16), generation=st.integers(1, 16), spare=st.integers(0, 8))
def test_placement_matches_a_slot_by_slot_assignment(training, generation, spare):
    visible = training + generation + spare
    train, gen = separate_devices(training, generation, visible)
    # Reference: walk the host's GPUs in order, training first, then generation.
    owner = ["train"] * training + ["gen"] * generation + ["free"] * spare
    assert train == [i for i, o in enumerate(owner) if o == "train"]
    assert gen == [i for i, o in enumerate(owner) if o == "gen"]
    assert not set(train) & set(gen) and max(gen) < visible


def test_the_training_cluster_holds_only_the_training_gpus():
    cluster = ClusterConfig(gpus_per_node=8, launcher="local")
    plan = plan_resources(cluster, GenerationConfig(colocated=False, num_gpus=2))
    training = training_cluster_config(cluster, plan)
    assert (training.gpus_per_node, training.world_size, training.launcher) == (6, 6, "local")
    assert cluster.gpus_per_node == 8  # the run's config is not changed
    # Colocated, CPU-only and generation-free runs train on the cluster as configured.
    colocated = plan_resources(cluster, GenerationConfig())
    assert training_cluster_config(cluster, colocated) is cluster
    cpu = ClusterConfig(gpus_per_node=0)
    assert training_cluster_config(cpu, plan_resources(cpu, GenerationConfig(colocated=False))) is cpu
    assert training_cluster_config(cluster, None) is cluster


@pytest.mark.parametrize(
    ("cluster", "fields"),
    [
        (ClusterConfig(gpus_per_node=4, launcher="ray"), "cluster.launcher='ray'"),
        (ClusterConfig(num_nodes=2, gpus_per_node=4, launcher="ray"), "cluster.num_nodes=2"),
    ],
)
def test_separate_gpus_beyond_one_host_are_refused_before_anything_starts(cluster, fields):
    config = GRPOConfig(cluster=cluster, generation=GenerationConfig(colocated=False, num_gpus=1))
    with pytest.raises(ResourceError, match="generation.colocated=false") as info:
        check_resources(config)
    assert fields in str(info.value) and "generation.colocated=true" in str(info.value)


def test_a_plan_without_gpus_needs_no_placement():
    plan = ResourcePlan(0, False, training_gpus=0, generation_gpus=0)
    cluster = ClusterConfig(gpus_per_node=0, launcher="ray")
    assert training_cluster_config(cluster, plan) is cluster
