"""Where and how training runs: devices and seeds (the process group of distributed training
will live here too). Small pure helpers, imported by the estimator and the families."""

from __future__ import annotations

import contextlib
import math
import os
import time

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


# -- CPU threads for training --------------------------------------------------------------------

#: Environment variable fixing the torch CPU threads aekit trains with (a number >= 1).
THREADS_ENV = "AEKIT_THREADS"
#: Training work per batch, in MFLOP (6 x parameters x rows), under which training uses one
#: thread: below it a second thread gained 1.09-1.18x on an idle machine, while two threads ran
#: 6-29x slower when another process held a core (measured in :func:`default_training_threads`).
ONE_THREAD_MFLOP = 400.0

_chosen_threads: int | None = None  # set_threads(n)
_threads_at_import = torch.get_num_threads()


def set_threads(n: int | None) -> None:
    """Use ``n`` torch CPU threads (``torch.set_num_threads(n)``), for training too: aekit then
    leaves the count alone. ``None`` gives the choice back to aekit (torch's count is left as it
    is until the next training picks one). The CLI's ``--threads`` calls this."""
    global _chosen_threads
    if n is None:
        _chosen_threads = None
        return
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ParameterError(f"threads={n!r}: give a number of CPU threads >= 1 (or None)")
    _chosen_threads = int(n)
    torch.set_num_threads(int(n))


@contextlib.contextmanager
def using_threads(n: int):
    """:func:`set_threads` ``(n)`` for the block; the previous choice and torch's count are put
    back after it."""
    previous, before = _chosen_threads, torch.get_num_threads()
    set_threads(n)
    try:
        yield
    finally:
        set_threads(previous)
        torch.set_num_threads(before)


def _env_threads() -> int | None:
    value = os.environ.get(THREADS_ENV)
    if value is None or not value.strip():
        return None
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise ParameterError(f"{THREADS_ENV}={value!r}: give a number of CPU threads >= 1")
    return n


def _usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask where the system has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _physical_cores() -> int | None:
    """Distinct (package, core) pairs among the usable CPUs (Linux), or None."""
    try:
        cpus = os.sched_getaffinity(0)
        cores = set()
        for cpu in cpus:
            topo = f"/sys/devices/system/cpu/cpu{cpu}/topology"
            with open(f"{topo}/core_id") as a, open(f"{topo}/physical_package_id") as b:
                cores.add((a.read().strip(), b.read().strip()))
        return len(cores) or None
    except (AttributeError, OSError):
        return None


def user_threads() -> int | None:
    """The torch CPU thread count the user chose, or None where torch runs with its default.

    Chosen: :func:`set_threads` (the CLI's ``--threads``), ``$AEKIT_THREADS``, ``$OMP_NUM_THREADS``
    or ``$MKL_NUM_THREADS`` (which set torch's default), or ``torch.set_num_threads`` to a count
    torch would not pick itself: one that differs from the count when aekit was imported, or that
    is neither the number of usable CPUs nor of their physical cores (torch's defaults). A
    ``torch.set_num_threads(n)`` before importing aekit to exactly torch's default cannot be told
    from the default: use :func:`set_threads` or ``$AEKIT_THREADS`` to fix such a count.
    """
    if _chosen_threads is not None:
        return _chosen_threads
    env = _env_threads()
    if env is not None:
        return env
    current = torch.get_num_threads()
    if os.environ.get("OMP_NUM_THREADS") or os.environ.get("MKL_NUM_THREADS"):
        return current
    defaults = {_usable_cpus(), _physical_cores(), os.cpu_count()}
    if current != _threads_at_import or current not in defaults:
        return current
    return None


def busy_cpus(samples: int = 3, interval: float = 0.002) -> int:
    """How many CPUs other processes keep busy now: the median, over ``samples`` readings
    ``interval`` seconds apart, of the runnable tasks (``/proc/loadavg``'s fourth field) less the
    one reading it. A median over a few milliseconds counts a process that computes, not this
    process's own threads finishing their last parallel region. Without ``/proc/loadavg``, the
    1-minute load average less one; 0 where the system reports neither."""
    counts = []
    for i in range(max(1, samples)):
        if i:
            time.sleep(interval)
        try:
            with open("/proc/loadavg") as f:
                counts.append(int(f.read().split()[3].split("/")[0]) - 1)
        except (OSError, ValueError, IndexError):
            break
    if counts:
        return max(0, sorted(counts)[len(counts) // 2])
    try:
        return max(0, math.floor(os.getloadavg()[0] - 0.5))
    except (AttributeError, OSError):  # no load average (Windows)
        return 0


def default_training_threads(mflop_per_batch: float, limit: int | None = None) -> int:
    """The torch CPU threads aekit trains with when the user has not chosen (:func:`user_threads`).

    One thread for a model whose training work per batch is under :data:`ONE_THREAD_MFLOP`
    (6 x parameters x batch size, in MFLOP); otherwise ``limit`` (default: torch's count now),
    but no more than the usable CPUs that other processes leave free (:func:`busy_cpus`).

    Why (``benchmarks/threads.py``; a 2-core Intel Xeon virtual machine, torch 2.13,
    Fashion-MNIST, autoencoders 784-h-d-h-784; details in docs/experiments.md). Torch's default
    here is two threads. With one busy process beside it, two threads trained the 784-400-20
    model 29x slower than one at batch 128 (351 against 10,197 samples/s) and 6x slower at 1024
    (2,174 against 13,491): every parallel region of every step waits for the thread that is
    not scheduled. On the idle machine two threads gained 1.45x and 1.68x for that model at
    batches 128 and 1024 (495 and 3,962 MFLOP per batch), but only 1.09x for 784-32-2 (39
    MFLOP), 1.10x for 784-128-8 (157 MFLOP) and 1.18x for 784-32-2 at batch 1024 (314 MFLOP).
    Under 400 MFLOP the gain is not worth the risk of another process arriving during
    training; above it, the free cores are counted at the start of each training call and again
    after each epoch (at most once a second). ``/proc/loadavg`` counts the whole system's tasks:
    in a container pinned to a few CPUs of a busy host this errs towards one thread.
    """
    if mflop_per_batch < ONE_THREAD_MFLOP:
        return 1
    limit = torch.get_num_threads() if limit is None else limit
    return max(1, min(limit, _usable_cpus() - busy_cpus()))


class TrainingThreads:
    """The thread count of one training call (see :func:`training_threads`); a training callback
    whose ``on_epoch_end`` counts the free cores again (at most once a second) and adjusts."""

    def __init__(self, mflop_per_batch: float, limit: int):
        self.mflop_per_batch, self.limit = float(mflop_per_batch), int(limit)
        self._checked = -math.inf

    def apply(self) -> int:
        n = default_training_threads(self.mflop_per_batch, self.limit)
        if n != torch.get_num_threads():
            torch.set_num_threads(n)
        self._checked = time.monotonic()
        return n

    def on_epoch_end(self, trainer, logs) -> None:
        if self.mflop_per_batch >= ONE_THREAD_MFLOP and time.monotonic() - self._checked >= 1.0:
            self.apply()


@contextlib.contextmanager
def training_threads(device: torch.device, mflop_per_batch: float):
    """Run the block (a training call) with :func:`default_training_threads` torch threads when
    training on the CPU and the user has not chosen a count; torch's count is put back after.
    Yields the :class:`TrainingThreads` to pass to the trainer as a callback, or None (nothing
    to adjust: another device, or the user's count)."""
    if torch.device(device).type != "cpu" or user_threads() is not None:
        yield None
        return
    before = torch.get_num_threads()
    threads = TrainingThreads(mflop_per_batch, before)
    threads.apply()
    try:
        yield threads
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
