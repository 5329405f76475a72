"""The cluster a default config gets: the GPUs this process sees (explicit 0 forces the CPU),
a deliberate torch thread count on CPU, and a resource plan checked before anything starts."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from nemo_rl.config import ClusterConfig, ConfigError, GenerationConfig, GRPOConfig, SFTConfig
from nemo_rl.infra.cluster import factory, threads
from nemo_rl.infra.resources import check_resources


@pytest.fixture
def gpus(monkeypatch):
    """Pretend this process sees `n` GPUs: `gpus(n)`."""

    def set_count(n: int) -> None:
        monkeypatch.setattr("nemo_rl.config.cluster.visible_gpus", lambda: n)

    return set_count


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_gpus_per_node_defaults_to_the_gpus_this_process_sees(gpus):
    assert ClusterConfig().gpus_per_node == "auto"
    gpus(4)
    assert ClusterConfig().resolve().gpus_per_node == 4
    assert ClusterConfig().world_size == 4
    assert ClusterConfig(gpus_per_node=0).world_size == 1  # explicit 0: CPU, one worker
    gpus(0)
    assert ClusterConfig().resolve().gpus_per_node == 0


def test_default_cluster_on_a_gpu_machine_trains_on_the_gpu(gpus, monkeypatch):
    built = []
    monkeypatch.setattr(
        factory, "InlineCluster", lambda device: built.append(device) or SimpleNamespace()
    )
    gpus(1)
    factory.make_cluster(ClusterConfig())
    factory.make_cluster(ClusterConfig(gpus_per_node=0))
    assert built == ["cuda", "cpu"]


def test_cpu_threads_are_the_free_cores_shared_among_workers():
    assert threads.default_cpu_threads(workers=1, cores=16, load=0.0) == 16
    assert threads.default_cpu_threads(workers=4, cores=16, load=0.0) == 4
    assert threads.default_cpu_threads(workers=1, cores=2, load=7.5) == 1  # a busy shared box
    assert threads.default_cpu_threads(workers=1, cores=8, load=3.0) == 5
    assert threads.default_cpu_threads(workers=8, cores=2, load=0.0) == 1  # never 0


def test_cpu_run_sets_torch_threads(monkeypatch, restore_threads):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "system_load", lambda: 100.0)  # every core busy: one thread
    torch.set_num_threads(2)
    cluster = factory.make_cluster(ClusterConfig(gpus_per_node=0))
    assert cluster.cpu_threads == 1 and torch.get_num_threads() == 1


def test_cpu_threads_in_the_config_win(monkeypatch, restore_threads):
    monkeypatch.setattr(threads, "system_load", lambda: 100.0)
    cluster = factory.make_cluster(ClusterConfig(gpus_per_node=0, cpu_threads=2))
    assert cluster.cpu_threads == 2 and torch.get_num_threads() == 2


def test_separate_generation_gpus_on_a_cpu_cluster_is_a_config_error(gpus):
    gpus(0)
    cfg = GRPOConfig(generation=GenerationConfig(colocated=False, num_gpus=3))
    with pytest.raises(ConfigError) as err:
        check_resources(cfg)
    message = str(err.value)
    for field in ("generation.num_gpus=3", "generation.colocated=false", "cluster.gpus_per_node"):
        assert field in message
    assert "generation.num_gpus=0" in message  # the fix


def test_configs_without_generation_have_no_split_to_check():
    assert check_resources(SFTConfig()) is None
