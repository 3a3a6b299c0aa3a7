"""The CPU thread count of training, fixed per run so that float reductions repeat exactly."""

from __future__ import annotations

import math
import os
import re

CPU_QUANTITY = re.compile(r"^(\d+(?:\.\d+)?)(m?)$")


def cpu_thread_count(cpu_quantity: str, *, processes: int = 1) -> int:
    """Return the intra-op thread count for a Kubernetes CPU quantity such as "4", "2.5" or "500m".

    It is the whole CPUs of the quantity, capped by the CPUs this process may run on and
    divided among the training ``processes``, and at least 1. Threads beyond the CPU limit
    would only wait on each other.
    """
    match = CPU_QUANTITY.match(cpu_quantity.strip())
    if match is None:
        raise ValueError(f"invalid CPU quantity {cpu_quantity!r}: use a number of CPUs such as 4 or millicores such as 500m")
    cpus = float(match.group(1)) / (1000 if match.group(2) else 1)
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(math.floor(cpus), available) // processes)


def checkpoint_thread_count(metadata: dict, *, processes: int) -> int | None:
    """Return the thread count a checkpoint trained with, or None when it does not apply to ``processes``.

    Reusing the count makes resumed steps repeat exactly. After a change of process count
    the steps differ anyway, and the old count would over- or under-fill the CPUs.
    Checkpoints written before the process count was recorded count as one process.
    """
    saved = metadata.get("cpuThreads")
    saved_processes = metadata.get("batchSettings", {}).get("processes", 1)
    return saved if saved and saved_processes == processes else None
