"""The lines a run prints before its first step: where it writes, what it runs on, what it
resumes. They must be seen: a run on the wrong device or in the wrong directory is the first
thing a user needs to notice.

Example:
    >>> from nemo_rl.config import ClusterConfig
    >>> describe_cluster_config(ClusterConfig(gpus_per_node=0, cpu_threads=2))
    'cluster: 1 node(s) x 0 GPU(s) (CPU), launcher inline, world size 1, 2 CPU thread(s) per process'
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from nemo_rl.config import ClusterConfig

log = logging.getLogger("nemo_rl")


def describe_cluster_config(config: ClusterConfig) -> str:
    """What a cluster config resolves to on this machine (printed by --dry-run); starts nothing.

    Example: see the module docstring.
    """
    from nemo_rl.infra.cluster.threads import cpu_threads_for

    resolved = config.resolve()
    gpus = resolved.gpus_per_node
    notes = [n for n in ("" if gpus else "CPU", "auto-detected" if config.detected else "") if n]
    kind = f"{gpus} GPU(s)" + (f" ({', '.join(notes)})" if notes else "")
    world = resolved.world_size
    launcher = config.launcher if world == 1 or config.launcher != "inline" else "inline -> local"
    line = f"cluster: {config.num_nodes} node(s) x {kind}, launcher {launcher}, world size {world}"
    if not gpus:
        threads = cpu_threads_for(config.cpu_threads, resolved.workers_per_node)
        line += f", {threads} CPU thread(s) per process"
    return line


def describe_device(cluster: Any) -> str:
    """The device line of the run header, e.g. `device: cuda:0 NVIDIA H200, world size 1` or
    `device: cpu, 2 threads, world size 1`.

    Example:
        >>> from nemo_rl.infra.cluster import InlineCluster
        >>> describe_device(InlineCluster(device="cpu"))
        'device: cpu, world size 1'
    """
    world = cluster.world_size
    if getattr(cluster, "device_type", "cpu") == "cuda":
        import torch

        index = cluster.device.index or 0 if hasattr(cluster, "device") else 0
        name = torch.cuda.get_device_name(index)
        where = f"cuda:{index} {name}" if world == 1 else f"cuda:0-{world - 1} {name}"
        return f"device: {where}, world size {world}"
    threads = getattr(cluster, "cpu_threads", None)
    per = "" if threads is None else f", {threads} thread(s)" + (" per worker" if world > 1 else "")
    return f"device: cpu{per}, world size {world}"


def describe_parameters(policy: Any, lora: Any = None) -> str:
    """The parameter line of the run header: how many parameters train (LoRA trains only its
    adapters); empty for a backend that does not count them.

    Example:
        >>> class Backend:
        ...     def parameter_counts(self):
        ...         return {"trainable": 16384, "total": 1_000_000}
        >>> describe_parameters(Backend())
        'parameters: 16,384 of 1,000,000 train (1.64%)'
    """
    counts = getattr(policy, "parameter_counts", None)
    if counts is None:
        return ""
    numbers = counts()
    trainable, total = numbers["trainable"], numbers["total"]
    line = f"parameters: {trainable:,} of {total:,} train ({100 * trainable / max(total, 1):.2f}%)"
    if lora is not None and lora.enabled:
        line += f", LoRA rank {lora.rank}, alpha {lora.alpha:g}"
    return line


def announce(line: str, console: Any = None) -> None:
    """Show `line` to the user: on the progress console when there is one, through logging when
    the application configured it (the CLI does), else on stderr (a plain script)."""
    if console is not None:
        console.print(line, markup=False, highlight=False)
    elif log.isEnabledFor(logging.INFO) and logging.getLogger().handlers:
        log.info(line)
    else:
        print(line, file=sys.stderr, flush=True)
