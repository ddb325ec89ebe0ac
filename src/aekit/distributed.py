"""Data-parallel training over a torch process group: who this process is, which rows of each
global batch it takes, and the random draws and batch statistics that make N processes train
exactly like one.

The model: ``batch_size`` is the *global* batch. Every process (rank) reads the same epoch
permutation and takes its part of every batch (:func:`part`: rows ``[r*b//N, (r+1)*b//N)`` of a
batch of ``b`` rows). For the result not to depend on the number of processes,

* noise is drawn for the **global** batch on every rank, from generators seeded alike, and each
  rank keeps its own rows of it (:func:`randn`, :func:`rand`, :func:`randint`, :func:`bernoulli`
  inside :func:`shard`): the same masks, samples and prior draws whatever the world size;
* a loss's batch statistic (a mean over rows that is then transformed, such as a sparsity target's
  mean activation, or free bits' per-dimension KL) is the global one, all-reduced with autograd
  (:func:`batch_mean`);
* the trainer weights each rank's loss by its share of the batch's rows and averages the
  gradients (:func:`average_gradients`), so each step follows the gradient of the global batch's
  mean loss.

Outside :func:`shard` (one process, inference, sampling) the draw functions are the plain torch
calls. The process group is torch's own: ``torchrun`` starts the processes (``aekit train`` calls
:func:`init_from_env`), or the caller's framework (Ray Train, Spark's TorchDistributor) has set
one up already, and :func:`world` finds it.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from .errors import DataError


@dataclass(frozen=True)
class World:
    """This process's place among the training processes (``size == 1``: alone)."""

    rank: int = 0
    size: int = 1
    group: Any = None  # the torch ProcessGroup (None: the default group)

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def device(self) -> torch.device:
        """Where this group's collectives take their tensors (NCCL: the current GPU)."""
        if self.distributed and torch.distributed.get_backend(self.group) == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes files and prints progress."""
        return self.rank == 0


ALONE = World()


def world() -> World:
    """The default process group, when one is initialised with more than one process."""
    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized()):
        return ALONE
    size = dist.get_world_size()
    return World(dist.get_rank(), size) if size > 1 else ALONE


def env_world_size() -> int:
    """``WORLD_SIZE`` as ``torchrun`` sets it (1 without it)."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def init_from_env(device: str | None = None) -> World:
    """Join the process group that ``torchrun`` describes in the environment (``RANK``,
    ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``, ``LOCAL_RANK``): NCCL for CUDA tensors
    and gloo for CPU ones on a GPU machine, gloo alone elsewhere. A group already initialised
    is used as it is; without ``WORLD_SIZE > 1`` it does nothing. Selects the GPU
    ``LOCAL_RANK`` on a CUDA machine."""
    dist = torch.distributed
    if env_world_size() <= 1 or not dist.is_available():
        return world()
    if not dist.is_initialized():
        cuda = torch.cuda.is_available() and (device in (None, "auto") or "cuda" in str(device))
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        # NCCL for CUDA tensors, gloo for CPU ones: a model kept on the CPU (device="cpu") on a
        # GPU machine trains too, and the small host-side agreements need no GPU.
        dist.init_process_group("cpu:gloo,cuda:nccl" if cuda else "gloo")
    return world()


def part(total: int, w: World) -> tuple[int, int]:
    """Rows ``[start, stop)`` of a global batch of ``total`` rows that rank ``w.rank`` takes."""
    if w.size > 1 and total < w.size:
        raise DataError(
            f"a batch of {total} row(s) cannot be shared by {w.size} processes: batch_size is "
            "the global batch, and the last batch of an epoch holds the rows left over. Choose "
            f"a batch_size (and a number of rows) that leave at least {w.size} rows in every "
            "batch, or train with fewer processes"
        )
    return w.rank * total // w.size, (w.rank + 1) * total // w.size


@dataclass(frozen=True)
class _Shard:
    start: int
    stop: int
    total: int
    world: World


_SHARD: contextvars.ContextVar[_Shard | None] = contextvars.ContextVar("aekit_shard", default=None)


@contextlib.contextmanager
def shard(total: int, w: World) -> Iterator[None]:
    """Within: this rank holds its :func:`part` of a global batch of ``total`` rows, and the
    draw functions draw for all ``total`` rows and keep this rank's (a no-op for one process)."""
    if not w.distributed:
        yield
        return
    start, stop = part(total, w)
    token = _SHARD.set(_Shard(start, stop, total, w))
    try:
        yield
    finally:
        _SHARD.reset(token)


def _global(shape: Sequence[int], rows_dim: int) -> tuple[list[int], _Shard | None]:
    s = _SHARD.get()
    shape = [int(d) for d in shape]
    if s is None:
        return shape, None
    if shape[rows_dim] != s.stop - s.start:
        raise RuntimeError(
            f"a draw of shape {tuple(shape)} has {shape[rows_dim]} rows in dimension {rows_dim}, "
            f"but this process holds {s.stop - s.start} rows of the batch: the draw functions "
            "of aekit.distributed are for noise with one entry per row of the batch"
        )
    shape[rows_dim] = s.total
    return shape, s


def _mine(t: torch.Tensor, s: _Shard | None, rows_dim: int) -> torch.Tensor:
    return t if s is None else t.narrow(rows_dim, s.start, s.stop - s.start)


def global_rows(n: int) -> int:
    """The global batch's row count for a draw of ``n`` rows (``n`` outside :func:`shard`), for
    a draw made by other code (a user's prior): draw that many, then keep :func:`local_rows`."""
    full, _ = _global((n,), 0)
    return full[0]


def local_rows(t: torch.Tensor, rows_dim: int = 0) -> torch.Tensor:
    """This rank's rows of ``t``, drawn for the global batch (``t`` outside :func:`shard`)."""
    return _mine(t, _SHARD.get(), rows_dim)


def randn(shape, *, generator: torch.Generator, rows_dim: int = 0, **kwargs) -> torch.Tensor:
    """``torch.randn(shape, generator=...)`` with one entry per row of the batch along
    ``rows_dim``: drawn for the global batch and sliced inside :func:`shard`."""
    full, s = _global(shape, rows_dim)
    return _mine(torch.randn(full, generator=generator, **kwargs), s, rows_dim)


def rand(shape, *, generator: torch.Generator, rows_dim: int = 0, **kwargs) -> torch.Tensor:
    """``torch.rand``, as :func:`randn`."""
    full, s = _global(shape, rows_dim)
    return _mine(torch.rand(full, generator=generator, **kwargs), s, rows_dim)


def randint(high: int, shape, *, generator: torch.Generator, rows_dim: int = 0, **kwargs):
    """``torch.randint(high, shape)``, as :func:`randn`."""
    full, s = _global(shape, rows_dim)
    return _mine(torch.randint(high, full, generator=generator, **kwargs), s, rows_dim)


def bernoulli(p: torch.Tensor, *, generator: torch.Generator) -> torch.Tensor:
    """A 0/1 draw with probabilities ``p`` (rows first): ``rand < p``, so that one process and
    several draw the same values (``torch.bernoulli`` could not draw for rows it does not hold)."""
    u = rand(p.shape, generator=generator, device=p.device, dtype=p.dtype)
    return (u < p).to(p.dtype)


def batch_mean(t: torch.Tensor) -> torch.Tensor:
    """``t.mean(0)`` over the rows of the global batch: inside :func:`shard`, the rows' sum is
    all-reduced with autograd (its backward all-reduces the gradient), so a nonlinear function of
    the batch mean gets the same value and gradient as in one process."""
    s = _SHARD.get()
    if s is None:
        return t.mean(0)
    return _SumOverRanks.apply(t.sum(0), s.world.group) / s.total


class _SumOverRanks(torch.autograd.Function):
    """The sum of a tensor over the ranks; its gradient is the sum of the ranks' gradients
    (every rank's loss depends on every rank's rows through the sum)."""

    @staticmethod
    def forward(ctx, t: torch.Tensor, group: Any) -> torch.Tensor:
        ctx.group = group
        t = t.clone(memory_format=torch.contiguous_format)
        torch.distributed.all_reduce(t, group=group)
        return t

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        grad = grad.clone(memory_format=torch.contiguous_format)
        torch.distributed.all_reduce(grad, group=ctx.group)
        return grad, None


def share() -> float:
    """The weight of this rank's mean loss in the global batch's, times the world size:
    ``rows held * N / total`` (1 outside :func:`shard`). Gradients averaged over the N ranks
    then equal the gradient of the global batch's mean loss."""
    s = _SHARD.get()
    if s is None:
        return 1.0
    return (s.stop - s.start) * s.world.size / s.total


def average_gradients(params: Sequence[torch.nn.Parameter], w: World) -> None:
    """All-reduce the gradients of ``params`` to their mean over the ranks, in one flat buffer
    (one collective per phase: these models are small, so latency, not bandwidth, decides)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads or not w.distributed:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    torch.distributed.all_reduce(flat, group=w.group)
    flat /= w.size
    offset = 0
    for g in grads:
        n = g.numel()
        g.copy_(flat[offset : offset + n].view_as(g))
        offset += n


def all_sum(t: torch.Tensor, w: World) -> torch.Tensor:
    """The sum of ``t`` over the ranks (``t`` itself for one process)."""
    if not w.distributed:
        return t
    t = t.to(w.device, copy=True)
    torch.distributed.all_reduce(t, group=w.group)
    return t


def any_rank(flag: bool, w: World) -> bool:
    """Whether ``flag`` is True on any rank (``flag`` itself for one process; a collective)."""
    if not w.distributed:
        return bool(flag)
    return bool(all_sum(torch.tensor([float(flag)]), w).item() > 0)


def broadcast_module(module: torch.nn.Module, w: World) -> None:
    """Rank 0's parameters and buffers on every rank (as DistributedDataParallel does at start)."""
    if not w.distributed:
        return
    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            torch.distributed.broadcast(t.data, src=0, group=w.group)


def agree(value: int, w: World, what: str) -> None:
    """Raise on every rank when the ranks hold different ``value``s of ``what`` (for example
    the number of training rows: every rank must pass the same full data)."""
    if not w.distributed:
        return
    t = torch.tensor([value, -value], dtype=torch.float64, device=w.device)
    torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX, group=w.group)
    high, low = int(t[0]), -int(t[1])
    if high != low:
        raise DataError(
            f"the {w.size} training processes were given different {what} ({low} to {high}): "
            "in data-parallel training every process passes the same full data, and each "
            "reads its own share of every batch"
        )


def broadcast_int(value: int, w: World) -> int:
    """Rank 0's ``value`` on every rank (a seed drawn from fresh entropy, for one)."""
    if not w.distributed:
        return value
    t = torch.tensor([value], dtype=torch.int64, device=w.device)
    torch.distributed.broadcast(t, src=0, group=w.group)
    return int(t[0])


# -- batch normalisation over the global batch ---------------------------------------------------


def _global_batch_norm(self: torch.nn.modules.batchnorm._BatchNorm, x: torch.Tensor):
    """``forward`` of a BatchNorm layer with the statistics of the global batch: what
    ``nn.SyncBatchNorm`` computes, on any backend (gloo on the CPU too), with the trainer's
    rows per rank. Outside a shard, or in eval mode, the layer's own forward."""
    s = _SHARD.get()
    if s is None or not self.training:
        return type(self).forward(self, x)
    dims = [0, *range(2, x.dim())]
    per_row = x[:1].numel() // x.shape[1]  # values of one channel in one row
    count = s.total * per_row
    shape = [1, -1] + [1] * (x.dim() - 2)
    mean = _SumOverRanks.apply(x.sum(dims), s.world.group) / count
    centred = x - mean.view(shape)
    var = _SumOverRanks.apply(centred.pow(2).sum(dims), s.world.group) / count
    out = centred * torch.rsqrt(var.view(shape) + self.eps)
    if self.affine:
        out = out * self.weight.view(shape) + self.bias.view(shape)
    if self.track_running_stats:
        with torch.no_grad():
            self.num_batches_tracked += 1
            m = self.momentum
            if m is None:  # a cumulative moving average
                m = 1.0 / float(self.num_batches_tracked)
            unbiased = var.detach() * count / max(count - 1, 1)
            self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
            self.running_var.mul_(1 - m).add_(unbiased, alpha=m)
    return out


@contextlib.contextmanager
def global_batch_norm(module: torch.nn.Module, w: World) -> Iterator[None]:
    """Within: the BatchNorm layers of ``module`` normalise with the global batch's statistics
    (all-reduced with autograd), so N processes train as one. The layers are left as they are
    (their class, their state dict); only their ``forward`` is replaced, and put back after."""
    layers = [
        m
        for m in module.modules()
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
        and not isinstance(m, torch.nn.SyncBatchNorm)
    ]
    if not w.distributed or not layers:
        yield
        return
    for m in layers:
        m.forward = _global_batch_norm.__get__(m)
    try:
        yield
    finally:
        for m in layers:
            del m.forward
