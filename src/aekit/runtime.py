"""Where and how training runs: devices and seeds (the process group of distributed training
will live here too). Small pure helpers, imported by the estimator and the families."""

from __future__ import annotations

import os

import numpy as np
import torch
from sklearn.utils import check_random_state

from . import distributed as dist
from .errors import ParameterError


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``"auto"`` picks CUDA, then MPS, then the CPU; an explicit device must be available."""
    if device is None or device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ParameterError(
            f"device={device!r} is not a device; use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"
        ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ParameterError(
            f"device={device!r} but CUDA is not available here (torch.cuda.is_available() is "
            "False); use device='cpu' or device='auto'"
        )
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ParameterError(
            f"device={device!r} but this machine has {torch.cuda.device_count()} CUDA "
            "device(s), numbered from 0"
        )
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ParameterError(f"device={device!r} but MPS is not available here; use device='cpu'")
    return dev


def available_memory(device) -> tuple[int | None, str]:
    """Bytes that can be allocated now on ``device``, and the device's name for messages: the
    free memory of a CUDA device; for the CPU, ``MemAvailable`` of ``/proc/meminfo`` (Linux),
    else the physical memory (``os.sysconf``); None where none of these can be read (MPS)."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free), f"{device} (free GPU memory)"
    if device.type != "cpu":
        return None, str(device)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024, "this machine (MemAvailable)"
    except (OSError, ValueError, IndexError):
        pass
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None, "this machine"
    return (int(total), "this machine (physical memory)") if total > 0 else (None, "this machine")


def format_bytes(n: float) -> str:
    """``"215.5 kB"``, ``"268.0 GB"``: decimal units, one decimal."""
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def seed_from(random_state) -> int:
    """An integer seed for torch from a scikit-learn ``random_state``.

    An int is used as is; a ``RandomState`` is drawn from (the caller's own object); ``None`` takes
    fresh entropy from the operating system, leaving numpy's global random state untouched.
    """
    if random_state is None:
        return int(np.random.SeedSequence().generate_state(1)[0]) & 0x7FFFFFFF
    if isinstance(random_state, int | np.integer):
        return int(random_state) & 0x7FFFFFFFFFFF
    return int(check_random_state(random_state).randint(0, 2**31 - 1))


def training_seed(random_state) -> int:
    """:func:`seed_from` for ``fit``: in data-parallel training, rank 0's seed on every rank (a
    seed of None draws fresh entropy, which would differ between the processes)."""
    return dist.broadcast_int(seed_from(random_state), dist.world())
