"""RayCluster on a real Ray cluster of two simulated nodes (two `ray start` raylets on this host,
one CPU each, custom resources node_a/node_b), started once for this module and always stopped.

Starting Ray and its actors takes tens of seconds on a small machine, so one two-worker cluster
is shared by the tests that leave it usable, and the test that kills an actor comes last.
"""

from __future__ import annotations

import collections
import importlib
import os
import signal
import threading
import time

import pytest

pytest.importorskip("ray")

from nemo_rl.config import ClusterConfig  # noqa: E402
from nemo_rl.infra.cluster import (  # noqa: E402
    ClusterError,
    ClusterProbe,
    RayCluster,
    WorkerDiedError,
    WorkerError,
    check_cluster,
    make_cluster,
)
from nemo_rl.infra.cluster.ray_local import LocalRayCluster  # noqa: E402


@pytest.fixture(scope="module")
def two_nodes():
    """Head (1 CPU, node_a) + a second raylet (1 CPU, node_b); the driver joins by address."""
    import ray

    head = LocalRayCluster(num_cpus=1, resources={"node_a": 1})
    try:
        head.add_node(num_cpus=1, resources={"node_b": 1})
        yield head
    finally:
        ray.shutdown()
        head.stop()


@pytest.fixture(scope="module")
def ray_pair(two_nodes):
    cluster = make_cluster(
        ClusterConfig(launcher="ray", gpus_per_node=0, cpu_workers=2, ray_address=two_nodes.address)
    )
    yield cluster
    cluster.shutdown()


def test_workers_are_placed_across_both_nodes_in_one_process_group(ray_pair):
    assert isinstance(ray_pair, RayCluster) and ray_pair.device_type == "cpu"
    assert ray_pair.num_nodes == 2  # one CPU per node: PACK had to use both
    infos = check_cluster(ray_pair)  # ranks in order and a gloo all_reduce across the "nodes"
    assert [i["rank"] for i in infos] == [0, 1] and [i["local_rank"] for i in infos] == [0, 0]
    import ray

    resources = {n["NodeID"]: n["Resources"] for n in ray.nodes() if n["Alive"]}
    placed = [next(k for k in resources[info["node_id"]] if k.startswith("node_")) for info in ray_pair.nodes]
    assert sorted(placed) == ["node_a", "node_b"]


def test_the_same_worker_interface_as_the_local_cluster(ray_pair):
    counters = ray_pair.spawn(collections.Counter)
    counters.run_sharded("update", [("aab",), ("b",)])
    assert counters.run("most_common", 1) == [[("a", 2)], [("b", 1)]]
    sums = ray_pair.spawn(ClusterProbe).run_sharded("all_reduce_sum", [([1.0],), ([2.0],)])
    assert sums == [[3.0], [3.0]]
    counters.shutdown()
    with pytest.raises(ClusterError, match="shut down"):
        counters.run("total")


def test_a_failing_method_names_rank_and_node_and_keeps_the_cluster(ray_pair):
    lists = ray_pair.spawn(list, [1, 2, 3])
    with pytest.raises(WorkerError) as info:
        lists.run_sharded("index", [(2,), (9,)])
    err = info.value
    assert err.rank == 1 and err.exc_type == "ValueError" and "9 is not in list" in str(err)
    assert f"pid {ray_pair.nodes[1]['pid']}" in str(err) and "on node" in str(err)
    assert lists.run("index", 3) == [2, 2]


def test_environment_pool_on_ray_actors_keeps_order_and_times_out(two_nodes):
    import torch
    from nemo_rl.environments import EnvironmentPool, EnvironmentTimeoutError
    from nemo_rl.protocols import EnvStep

    class Echo:  # defined here: Ray ships it to the actors by value (cloudpickle)
        def __init__(self, pause: float = 0.0) -> None:
            self.pause = pause

        def step(self, messages, metadata):
            time.sleep(self.pause)
            values = [float(m[-1]["content"]) for m in messages]
            return EnvStep(torch.tensor(values), [None] * len(values), [True] * len(values))

    convos = [[{"role": "assistant", "content": str(i)}] for i in range(5)]
    # num_cpus 0: the two CPUs are held by the training actors of this module.
    with EnvironmentPool(Echo(), "ray", max_workers=2, ray_num_cpus=0) as pool:
        assert pool.step(convos, [{}] * 5).rewards.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    slow = EnvironmentPool(Echo(pause=60), "ray", max_workers=2, timeout_s=20, ray_num_cpus=0)
    with pytest.raises(EnvironmentTimeoutError, match="Ray actors killed"):
        slow.step(convos, [{}] * 5)
    slow.close()


def test_auto_gpus_per_node_comes_from_the_joined_ray_cluster(two_nodes):
    from nemo_rl.config.cluster import visible_gpus
    from nemo_rl.infra.cluster.ray_runtime import resolve_gpus_from_ray

    if visible_gpus():
        pytest.skip("needs a driver that sees no GPU, to tell Ray's count from its own")
    # A third raylet declaring 2 GPUs (and no CPU, so it takes none of the other tests' work).
    two_nodes.add_node(num_cpus=0, num_gpus=2)
    joined = ClusterConfig(launcher="ray", ray_address=two_nodes.address)
    assert joined.resolve().gpus_per_node == 0  # what this process sees
    assert resolve_gpus_from_ray(joined).gpus_per_node == 2  # what the Ray cluster has per node
    pinned = ClusterConfig(launcher="ray", gpus_per_node=1, ray_address=two_nodes.address)
    assert resolve_gpus_from_ray(pinned).gpus_per_node == 1  # a number the user gave is kept


def test_a_killed_actor_is_named_with_its_node_and_log_within_30s(ray_pair):
    printer = ray_pair.spawn(importlib.import_module, "builtins")
    printer.run_sharded("print", [("rank 0 was here",), ("rank 1 last words",)])
    sleepers = ray_pair.spawn(importlib.import_module, "time")
    killer = threading.Timer(1.0, os.kill, (ray_pair.nodes[1]["pid"], signal.SIGKILL))
    killer.start()
    started = time.monotonic()
    with pytest.raises(WorkerDiedError, match=r"rank 1 on node .* died during module.sleep\(\)") as info:
        sleepers.run("sleep", 120)  # rank 0 sleeps on; only the death check ends the call
    killer.join()
    elapsed = time.monotonic() - started
    assert elapsed < 30, elapsed
    assert "rank 1 last words" in info.value.log_tail and "Last lines of its log" in str(info.value)
    assert not ray_pair.is_running
    with pytest.raises(ClusterError, match="worker rank 1 died"):
        ray_pair.spawn(dict)
