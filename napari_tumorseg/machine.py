"""The machine a command ran on, for the record beside every timing and trained model.

One description for the benchmarks, the model cards and the experiments, so
their figures can be read against each other. Load average is part of it: on
a machine busy with other work, wall times count that work too.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any


def cpu_name() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo), else what Python's platform module knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity), else every core."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def load_average() -> list[float] | None:
    """Runnable processes averaged over 1, 5 and 15 minutes; None where the system does not say."""
    if not hasattr(os, "getloadavg"):
        return None
    return [round(value, 2) for value in os.getloadavg()]


def describe_machine(device: Any = None) -> dict[str, Any]:
    """CPU, cores, operating system, Python, torch (threads, GPU) and the load right now.

    Args:
        device: the torch device the work ran on, if any (its GPU is named).
    """
    described: dict[str, Any] = {
        "cpu": cpu_name(),
        "cpu_cores": os.cpu_count(),
        "usable_cores": usable_cores(),
        "machine": platform.machine(),
        "platform": platform.platform(terse=True),
        "python": platform.python_version(),
        "load_average": load_average(),
    }
    try:
        import torch
    except ImportError:  # the synthetic generator and the readers run without torch
        return described
    described.update(torch=torch.__version__, torch_threads=torch.get_num_threads())
    if device is not None:
        described["device"] = str(device)
    if torch.cuda.is_available():
        cuda = torch.device(device) if device is not None and str(device).startswith("cuda") else torch.device("cuda")
        described["gpu"] = torch.cuda.get_device_name(cuda)
    else:
        described["gpu"] = None
    return described
