"""EnvironmentPool: inline, threaded and process steps, ordered merging, per-call timeouts, step
checks, merge_env_steps (the Ray mode is tested with the Ray cluster, in test_ray_cluster.py)."""

from __future__ import annotations

import threading
import time

import pytest
import torch
from nemo_rl.environments import (
    EnvironmentPool,
    RewardEnvironment,
    RewardEnvStep,
    RewardFunctionError,
    check_env_step,
    merge_env_steps,
)
from nemo_rl.environments.pool import EnvironmentTimeoutError, chunk_bounds
from nemo_rl.protocols import EnvStep


def convos(n: int) -> list[list[dict[str, str]]]:
    return [
        [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": str(i)}]
        for i in range(n)
    ]


class IndexEnv:
    """Rewards each sample with its response as a number; records the chunks it saw."""

    def __init__(self, barrier: threading.Barrier | None = None) -> None:
        self.chunks: list[list[int]] = []
        self.barrier = barrier
        self.lock = threading.Lock()

    def step(self, messages, metadata):
        if self.barrier is not None:
            self.barrier.wait()  # passes only if every chunk is stepped at the same time
        values = [float(m[-1]["content"]) for m in messages]
        with self.lock:
            self.chunks.append([int(v) for v in values])
        return EnvStep(
            rewards=torch.tensor(values),
            observations=[{"role": "user", "content": f"obs{int(v)}"} for v in values],
            done=[v % 2 == 0 for v in values],
            metadata=[{"seen": int(v)} for v in values],
        )


def test_chunk_bounds_are_contiguous_and_balanced():
    assert chunk_bounds(5, 3) == [(0, 2), (2, 4), (4, 5)]
    assert chunk_bounds(2, 4) == [(0, 1), (1, 2)]
    assert chunk_bounds(0, 4) == [(0, 0)]


def test_threads_mode_steps_chunks_concurrently_and_merges_in_order():
    env = IndexEnv(barrier=threading.Barrier(3, timeout=5))
    step = EnvironmentPool(env, mode="threads", max_workers=3).step(convos(5), [{}] * 5)
    assert sorted(env.chunks) == [[0, 1], [2, 3], [4]]
    assert step.rewards.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert step.done == [True, False, True, False, True]
    assert [o["content"] for o in step.observations] == [f"obs{i}" for i in range(5)]
    assert [m["seen"] for m in step.metadata] == [0, 1, 2, 3, 4]


def test_inline_mode_steps_the_whole_batch_once():
    env = IndexEnv()
    step = EnvironmentPool(env).step(convos(4), [{}] * 4)
    assert env.chunks == [[0, 1, 2, 3]] and step.batch_size == 4


def test_threaded_reward_environment_keeps_components_weights_and_sums_error_counts():
    def fails_on_odd(prompt, response):
        if int(response) % 2:
            raise ValueError("odd")
        return 1.0

    env = RewardEnvironment({"even": (fails_on_odd, 3.0)}, on_error="zero")
    step = EnvironmentPool(env, mode="threads", max_workers=2).step(convos(5), [{}] * 5)
    assert isinstance(step, RewardEnvStep)
    assert step.rewards["even"].tolist() == [1.0, 0.0, 1.0, 0.0, 1.0]
    assert step.total_reward().tolist() == [3.0, 0.0, 3.0, 0.0, 3.0]
    assert step.metrics == {"reward_errors": 2.0}


def test_a_chunk_error_reaches_the_caller():
    pool = EnvironmentPool(lambda prompt, response: 1.0 / int(response), "threads", 2)
    with pytest.raises(RewardFunctionError, match="sample 0"):
        pool.step(convos(4), [{}] * 4)


def test_environment_returning_the_wrong_batch_size_is_named():
    class Short:
        def step(self, messages, metadata):
            return EnvStep(torch.zeros(1), [None], [True])

    with pytest.raises(ValueError, match=r"Short.step returned 1 rewards, 1 observations, 1 done"):
        EnvironmentPool(Short(), "threads", 2).step(convos(4), [{}] * 4)
    with pytest.raises(TypeError, match="returned a dict"):
        check_env_step({"rewards": 1}, 1, "Bad")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"timeout_s": 0}, "positive number or None"),
        ({"mode": "thread"}, "unknown"),
        ({"max_workers": 0}, "use 1 or more"),
    ],
)
def test_bad_pool_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EnvironmentPool(IndexEnv(), **kwargs)


def test_merge_env_steps_rejects_mismatched_components():
    a = EnvStep({"acc": torch.ones(1)}, [None], [True])
    b = EnvStep({"fmt": torch.ones(1)}, [None], [True])
    with pytest.raises(ValueError, match=r"different reward components \(\['acc'\] vs \['fmt'\]\)"):
        merge_env_steps([a, b])
    with pytest.raises(ValueError, match="some return a reward tensor"):
        merge_env_steps([EnvStep(torch.ones(1), [None], [True]), a])
    merged = merge_env_steps([a, EnvStep({"acc": torch.zeros(2)}, [None, None], [True, False])])
    assert type(merged) is EnvStep and merged.rewards["acc"].tolist() == [1.0, 0.0, 0.0]
    assert merged.metadata == [{}, {}, {}]


class SleepyEnv:
    """Sleeps `seconds` per sample, then rewards each sample with its index in the chunk."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def step(self, messages, metadata):
        time.sleep(self.seconds * len(messages))
        return EnvStep(torch.tensor([float(m[-1]["content"]) for m in messages]),
                       [None] * len(messages), [True] * len(messages))


def test_threads_bound_concurrency_and_time_out_per_call():
    pool = EnvironmentPool(SleepyEnv(0.2), "threads", max_workers=4, timeout_s=5.0)
    started = time.monotonic()
    assert pool.step(convos(8), [{}] * 8).rewards.tolist() == [float(i) for i in range(8)]
    assert time.monotonic() - started < 1.5  # 4 chunks of 2 at once: ~0.4 s, not 1.6 s
    slow = EnvironmentPool(SleepyEnv(2.0), "threads", max_workers=2, timeout_s=0.3)
    started = time.monotonic()
    with pytest.raises(EnvironmentTimeoutError, match=r"timed out after 0.3s: chunk\(s\) \[0, 1\]"):
        slow.step(convos(2), [{}] * 2)
    assert time.monotonic() - started < 1.5
    slow.close()
    pool.close()


def test_processes_run_a_packaged_environment_in_order():
    pytest.importorskip("nemo_rl_envs")
    rows = [{"answer": str(i % 3)} for i in range(6)]
    with EnvironmentPool("exact_match", "processes", max_workers=2, timeout_s=120) as pool:
        step = pool.step(convos(6), rows)
        assert step.total_reward().tolist() == [float(str(i) == str(i % 3)) for i in range(6)]
    lock = threading.Lock()  # no pickler copes with a lock
    with pytest.raises(TypeError, match="cannot be pickled"):
        EnvironmentPool(lambda prompt, response: float(lock.locked()), "processes")
