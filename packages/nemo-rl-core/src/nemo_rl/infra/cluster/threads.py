"""How many torch threads a CPU run uses, chosen on purpose rather than left to torch.

torch starts one intra-op thread per core. On a machine whose cores are already busy (a shared
box, a CI runner, several workers on one host) those threads wait on each other at every
operator, and a tiny model's step was measured 5-30x slower with two threads than with one on a
loaded 2-core machine. So a CPU run takes the cores this process may use (its affinity mask),
less the ones the 1-minute load average says are busy, divided among the workers of this host,
and at least one. `cluster.cpu_threads` overrides the choice; so does `OMP_NUM_THREADS`, when
set, for the default.

Example:
    >>> default_cpu_threads(workers=1, cores=8, load=0.0)
    8
    >>> default_cpu_threads(workers=2, cores=8, load=0.0), default_cpu_threads(1, cores=2, load=6.5)
    (4, 1)
"""

from __future__ import annotations

import os

import torch


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, where the OS has one).

    Example:
        >>> available_cores() >= 1
        True
    """
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # macOS and Windows have no affinity mask
        return os.cpu_count() or 1


def system_load() -> float:
    """The 1-minute load average (runnable processes), or 0.0 where the OS has none."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0.0


def default_cpu_threads(
    workers: int = 1, cores: int | None = None, load: float | None = None
) -> int:
    """Threads for each of `workers` processes on this host: the free cores shared out, >= 1.

    `cores` and `load` default to `available_cores()` and `system_load()`. A core counts as free
    when the load average leaves it idle; the load is capped at the cores, since a load above them
    already means none is free.

    Example:
        >>> default_cpu_threads(workers=4, cores=2, load=0.0)
        1
    """
    cores = available_cores() if cores is None else cores
    load = system_load() if load is None else load
    free = cores - min(float(cores), max(0.0, load))
    return max(1, min(cores, int(free + 0.5)) // max(1, workers))


def cpu_threads_for(configured: int | None, workers: int = 1) -> int:
    """The thread count a CPU process should use: `configured` when set, else OMP_NUM_THREADS
    when the user exported it, else `default_cpu_threads(workers)`.

    Example:
        >>> cpu_threads_for(3)
        3
    """
    if configured is not None:
        return configured
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    return default_cpu_threads(workers)


def apply_cpu_threads(threads: int) -> int:
    """Set torch's intra-op thread count for this process; returns it.

    Example:
        >>> before = torch.get_num_threads()
        >>> apply_cpu_threads(1)
        1
        >>> _ = apply_cpu_threads(before)
    """
    torch.set_num_threads(threads)
    return threads
