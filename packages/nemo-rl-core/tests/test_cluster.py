"""Tests of the clusters (inline and local gloo processes), make_cluster and ResourceManager.

Local-process tests start real worker processes (each imports torch, a few seconds), so one
two-worker cluster is shared by the tests that leave it usable; the tests that must break a
cluster start their own. Factories come from importable modules (collections, importlib, the
probe) because the workers unpickle them by reference.
"""

from __future__ import annotations

import collections
import importlib
import os
import signal
import threading
import time

import pytest
import torch
from nemo_rl.config import ClusterConfig, GenerationConfig
from nemo_rl.infra.cluster import (
    ClusterError,
    ClusterProbe,
    InlineCluster,
    LocalProcessCluster,
    RayNotAvailableError,
    WorkerDiedError,
    WorkerError,
    check_cluster,
    make_cluster,
)
from nemo_rl.infra.cluster.threads import cpu_threads_for
from nemo_rl.infra.resources import PhaseSwitcher, ResourceError, ResourceManager
from nemo_rl.protocols import Cluster, WorkerGroup

_shared_clusters: list[LocalProcessCluster] = []


@pytest.fixture
def gloo_pair():
    """A running two-worker gloo cluster, started again only after a test broke the last one."""
    if not _shared_clusters or not _shared_clusters[-1].is_running:
        _shared_clusters.append(make_cluster(ClusterConfig(cpu_workers=2, launcher="local")))
    return _shared_clusters[-1]


@pytest.fixture(scope="module", autouse=True)
def _shut_down_shared_clusters():
    yield
    for cluster in _shared_clusters:
        cluster.shutdown()


# ---- inline -------------------------------------------------------------------------------


def test_inline_cluster_builds_the_object_in_this_process():
    cluster = InlineCluster(device="cpu")
    assert isinstance(cluster, Cluster)
    assert (cluster.world_size, cluster.device_type) == (1, "cpu")
    group = cluster.spawn(collections.Counter, "aab")
    assert isinstance(group, WorkerGroup)
    assert group.run("most_common", 1) == [[("a", 2)]]
    assert group.run_sharded("get", [("b",)]) == [1]
    group.worker["c"] += 5  # the very object, not a copy
    assert group.run("get", "c") == [5]


def test_inline_default_device_follows_cuda_availability():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert InlineCluster().device_type == expected


def test_inline_cluster_errors():
    group = InlineCluster(device="cpu").spawn(dict)
    with pytest.raises(ValueError, match="2 shards for a world size of 1"):
        group.run_sharded("get", [("a",), ("b",)])
    with pytest.raises(AttributeError, match="dict has no method 'fetch'"):
        group.run("fetch", "a")
    group.shutdown()
    with pytest.raises(ClusterError, match="shut down"):
        group.run("keys")
    if not torch.cuda.is_available():
        with pytest.raises(ClusterError, match="sees no CUDA GPU"):
            InlineCluster(device="cuda")


def test_check_cluster_inline():
    (info,) = check_cluster(InlineCluster(device="cpu"))
    assert (info["rank"], info["world_size"], info["pid"]) == (0, 1, os.getpid())


# ---- local processes ----------------------------------------------------------------------


def test_make_cluster_starts_gloo_processes_for_cpu_workers(gloo_pair):
    assert isinstance(gloo_pair, LocalProcessCluster)
    assert isinstance(gloo_pair, Cluster)
    assert (gloo_pair.world_size, gloo_pair.backend, gloo_pair.device_type) == (2, "gloo", "cpu")


def test_workers_form_a_real_process_group(gloo_pair):
    probes = gloo_pair.spawn(ClusterProbe)
    try:
        infos = probes.run("describe")
        assert [i["rank"] for i in infos] == [0, 1]
        assert [i["local_rank"] for i in infos] == [0, 1]
        assert all(i["world_size"] == 2 and i["backend"] == "gloo" for i in infos)
        # Two workers share this host's cores: each was given its share, chosen by the cluster.
        assert gloo_pair.cpu_threads == cpu_threads_for(None, workers=2)
        assert [i["torch_threads"] for i in infos] == [gloo_pair.cpu_threads] * 2
        assert len({i["pid"] for i in infos} | {os.getpid()}) == 3  # two separate processes
        # rank 0 contributes [1, 10], rank 1 [2, 20]: every rank sees the sum.
        sums = probes.run_sharded("all_reduce_sum", [([1.0, 10.0],), ([2.0, 20.0],)])
        assert sums == [[3.0, 30.0], [3.0, 30.0]]
    finally:
        probes.shutdown()
    assert len(check_cluster(gloo_pair)) == 2


def test_groups_hold_separate_state_per_rank_and_share_the_processes(gloo_pair):
    counters = gloo_pair.spawn(collections.Counter)
    lists = gloo_pair.spawn(list, [1, 2])
    counters.run_sharded("update", [("aab",), ("b",)])
    assert counters.run("most_common", 1) == [[("a", 2)], [("b", 1)]]
    lists.run("append", 3)
    assert lists.run("copy") == [[1, 2, 3], [1, 2, 3]]
    tensors = gloo_pair.spawn(torch.arange, 3)
    assert [t.tolist() for t in tensors.run("mul", 2)] == [[0, 2, 4], [0, 2, 4]]
    counters.shutdown()
    with pytest.raises(ClusterError, match="shut down"):
        counters.run("total")
    assert lists.run("__len__") == [3, 3]


def test_a_worker_exception_names_the_rank_and_keeps_the_cluster(gloo_pair):
    lists = gloo_pair.spawn(list, [1, 2, 3])
    with pytest.raises(WorkerError) as info:
        lists.run_sharded("index", [(2,), (9,)])  # 9 is not in the list on rank 1
    err = info.value
    assert err.rank == 1 and err.exc_type == "ValueError"
    assert "worker rank 1 raised ValueError in list.index()" in str(err)
    assert "Traceback" in err.worker_traceback and "9 is not in list" in err.worker_traceback
    assert lists.run("index", 3) == [2, 2]  # every rank answered: the cluster is still usable


def test_driver_side_errors_do_not_reach_the_workers(gloo_pair):
    with pytest.raises(TypeError, match="must be picklable"):
        gloo_pair.spawn(lambda: None)
    group = gloo_pair.spawn(dict)
    with pytest.raises(ValueError, match="3 shards for a world size of 2"):
        group.run_sharded("get", [("a",), ("b",), ("c",)])
    with pytest.raises(WorkerError, match="dict has no method 'fetch'"):
        group.run("fetch")
    assert group.run("get", "a", 7) == [7, 7]


# The two tests below break their cluster on purpose; they come after the others that use it,
# so that the shared cluster is started only twice in a full run.


def test_an_error_while_others_wait_in_a_collective_shuts_the_cluster_down(gloo_pair):
    cluster = gloo_pair
    cluster.error_grace_s = 1.0
    probes = cluster.spawn(ClusterProbe)
    started = time.monotonic()
    # Rank 1 fails before the all_reduce (a string is no float); rank 0 then waits for it forever.
    with pytest.raises(WorkerError, match=r"ranks \[0\] did not finish") as info:
        probes.run_sharded("all_reduce_sum", [([1.0],), (["x"],)])
    assert info.value.rank == 1
    assert time.monotonic() - started < 30
    assert not cluster.is_running
    with pytest.raises(ClusterError, match="unusable"):
        probes.run("describe")
    cluster.shutdown()  # harmless after the cluster broke


def test_a_worker_that_dies_mid_call_raises_instead_of_hanging(gloo_pair):
    cluster = gloo_pair
    pids = [info["pid"] for info in check_cluster(cluster)]
    sleepers = cluster.spawn(importlib.import_module, "time")  # the time module, in each worker
    killer = threading.Timer(0.5, os.kill, (pids[1], signal.SIGSEGV))
    killer.start()
    started = time.monotonic()
    with pytest.raises(WorkerDiedError, match=r"rank 1 died during module.sleep\(\)") as info:
        sleepers.run("sleep", 60)  # would block a minute without the liveness check
    killer.join()
    assert time.monotonic() - started < 30
    assert info.value.exitcode == -signal.SIGSEGV
    assert "killed by SIGSEGV" in str(info.value)
    assert not cluster.is_running
    with pytest.raises(ClusterError, match="worker rank 1 died"):
        cluster.spawn(dict)


def test_local_cluster_argument_errors():
    with pytest.raises(ValueError, match="positive int"):
        LocalProcessCluster(0)
    with pytest.raises(ValueError, match="'nccl', 'gloo' or None"):
        LocalProcessCluster(2, backend="mpi")
    if torch.cuda.device_count() < 64:
        with pytest.raises(ClusterError, match="needs one GPU per worker"):
            LocalProcessCluster(64, backend="nccl")


# ---- make_cluster -------------------------------------------------------------------------


def test_make_cluster_inline_for_one_worker():
    cluster = make_cluster(ClusterConfig(launcher="local"))
    assert isinstance(cluster, InlineCluster) and cluster.device_type == "cpu"


def test_make_cluster_refuses_what_it_cannot_start():
    with pytest.raises(ClusterError, match="num_nodes=2 needs cluster.launcher='ray'"):
        make_cluster(ClusterConfig(num_nodes=2, gpus_per_node=8, launcher="local"))
    if torch.cuda.device_count() < 64:
        with pytest.raises(ClusterError, match="needs one GPU per worker"):
            make_cluster(ClusterConfig(gpus_per_node=64, launcher="local"))


def test_ray_is_imported_only_when_chosen_and_named_when_missing(monkeypatch):
    import subprocess
    import sys

    code = (
        "import sys, nemo_rl.infra.cluster, nemo_rl.algorithms.grpo.trainer; "
        "assert 'ray' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(RayNotAvailableError, match=r"pip install 'nemo-rl-core\[ray\]'"):
        make_cluster(ClusterConfig(launcher="ray", gpus_per_node=0, cpu_workers=2))
    assert issubclass(RayNotAvailableError, ClusterError)


# ---- resources ----------------------------------------------------------------------------


def test_colocated_generation_shares_every_gpu():
    plan = ResourceManager(ClusterConfig(gpus_per_node=8), GenerationConfig()).plan
    assert (plan.colocated, plan.training_gpus, plan.generation_gpus) == (True, 8, 8)


def test_separate_generation_takes_its_gpus_from_the_cluster():
    manager = ResourceManager(
        ClusterConfig(num_nodes=2, gpus_per_node=4), GenerationConfig(colocated=False, num_gpus=3)
    )
    assert not manager.colocated
    assert (manager.plan.total_gpus, manager.plan.training_gpus) == (8, 5)
    assert manager.plan.generation_gpus == 3


@pytest.mark.parametrize(
    ("cluster", "generation", "message"),
    [
        (ClusterConfig(gpus_per_node=8), dict(colocated=False, num_gpus=8), "leaves no GPU"),
        (ClusterConfig(gpus_per_node=2), dict(colocated=False, num_gpus=0), "num_gpus >= 1"),
        (ClusterConfig(gpus_per_node=0), dict(colocated=False, num_gpus=1), "has 0 GPU"),
        (ClusterConfig(gpus_per_node=4), dict(colocated=True, num_gpus=2), "colocated=false"),
    ],
)
def test_impossible_splits_are_refused(cluster, generation, message):
    with pytest.raises(ResourceError, match=message):
        ResourceManager(cluster, GenerationConfig(**generation))


class MemoryHolder:
    """A backend-shaped object that records the phase calls it receives, in order."""

    def __init__(self, calls: list[str], name: str) -> None:
        self.calls, self.name = calls, name

    def __getattr__(self, method: str):
        if method not in ("offload", "onload", "sleep", "wake"):
            raise AttributeError(method)
        return lambda: self.calls.append(f"{self.name}.{method}")


def test_colocated_phase_switch_frees_before_it_allocates():
    calls: list[str] = []
    train, gen = MemoryHolder(calls, "train"), MemoryHolder(calls, "gen")
    manager = ResourceManager(ClusterConfig(gpus_per_node=1), GenerationConfig())
    manager.enter_generation(train, gen)
    manager.enter_generation(train, gen)  # already there: nothing to do
    manager.enter_training(train, gen)
    assert calls == ["train.offload", "gen.wake", "gen.sleep", "train.onload"]
    assert manager.switcher.phase == "training"
    timings = manager.pop_timings()
    assert sorted(timings) == ["time/offload_s", "time/onload_s", "time/sleep_s", "time/wake_s"]
    assert all(t >= 0.0 for t in timings.values())
    assert manager.pop_timings() == {}  # each step reports its own hand-over


def test_separate_gpus_need_no_phase_switch():
    calls: list[str] = []
    switcher = PhaseSwitcher(colocated=False)
    switcher.enter_generation(MemoryHolder(calls, "train"), MemoryHolder(calls, "gen"))
    switcher.enter_training(MemoryHolder(calls, "train"), MemoryHolder(calls, "gen"))
    assert calls == [] and switcher.phase == "training"


def _ray_node(gpus: float | None, alive: bool = True) -> dict:
    resources = {"CPU": 8.0, **({"GPU": gpus} if gpus is not None else {})}
    return {"Alive": alive, "Resources": resources}


def test_auto_gpus_per_node_of_a_ray_cluster_counts_its_gpu_nodes():
    from nemo_rl.config import ConfigError
    from nemo_rl.infra.cluster.ray_runtime import gpus_per_node

    # A CPU-only head and two 8-GPU workers: 8 per node (the head does not count).
    assert gpus_per_node([_ray_node(None), _ray_node(8.0), _ray_node(8.0)]) == 8
    assert gpus_per_node([_ray_node(0.0), _ray_node(None)]) == 0  # no GPU anywhere: a CPU run
    assert gpus_per_node([]) == 0
    # A dead node's GPUs are not there to use.
    assert gpus_per_node([_ray_node(4.0), _ray_node(2.0, alive=False)]) == 4
    with pytest.raises(ConfigError, match=r"have \[4, 8\] GPUs.*at most 4"):
        gpus_per_node([_ray_node(8.0), _ray_node(4.0), _ray_node(None)])


def test_auto_gpus_for_ray_without_an_address_are_this_hosts(monkeypatch):
    from nemo_rl.infra.cluster.ray_runtime import resolve_gpus_from_ray

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    # A local Ray instance would get this host's GPUs: the same count as the other launchers.
    config = ClusterConfig(launcher="ray")
    assert resolve_gpus_from_ray(config).gpus_per_node == config.resolve().gpus_per_node
    assert resolve_gpus_from_ray(ClusterConfig(launcher="ray", gpus_per_node=3)).gpus_per_node == 3
