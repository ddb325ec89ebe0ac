"""THE training loop: every model in aekit trains through :class:`Trainer`.

A model declares what differs between families, and nothing else:

* its **phases**: a list of :class:`Phase`, each an objective and the parameters it updates. Each
  batch runs every phase in turn, each with its own optimiser (one phase for an autoencoder; two
  or, with the paper's separate generator phase, three for an adversarial autoencoder);
* an optional **validation** function giving the same losses, in the same units, on held-out rows.

The loop owns the rest: shuffled batches by indexing in-memory arrays (no per-sample ``Dataset``;
a torch Dataset or an iterable of batches comes through :mod:`aekit.sources`' providers),
optimisers and learning-rate schedules, per-epoch history, early stopping and the best weights,
non-finite loss detection, Ctrl-C, callbacks, progress on stderr, and its own state for exact
resumption. It knows ``nn.Module``s and phases, never estimators.

Objectives return a dict of scalar tensors: ``"loss"`` (minimised, per-sample units: summed over
features, averaged over the batch; a phase may minimise another key, a weighted sum of terms,
while ``"loss"`` and the other terms are logged: :attr:`Phase.minimise`) and any other metrics
to log. Randomness inside objectives
(noise, sampling) must come from the generator they are given.
"""

from __future__ import annotations

import contextlib
import copy
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from . import distributed as dist
from .errors import DataError, ParameterError, TrainingDivergedError
from .sources import Batches, Source, n_rows

Objective = Callable[[torch.Tensor, torch.Generator], dict[str, torch.Tensor]]

OPTIMIZERS = ("adam", "adamw", "sgd")
# Copies of the parameters each optimiser keeps as its state (Adam's two moment estimates, SGD's
# momentum buffer), for the estimators' memory check before training.
OPTIMIZER_STATE = {"adam": 2, "adamw": 2, "sgd": 1}
LR_SCHEDULES = ("auto", "none", "cosine", "step", "plateau")
PRECISIONS = ("fp32", "bf16")
# In data-parallel training, the ranks agree on a Ctrl-C or SIGTERM this often (one tiny
# all-reduce), and after each epoch.
SIGNAL_CHECK_STEPS = 50
# Full-size steps run eagerly before a step is captured in a CUDA graph: the optimiser state,
# cuBLAS workspaces and the caching allocator are set up by then (torch's recipe says "a few").
GRAPH_WARMUP_STEPS = 3


@dataclass
class Phase:
    """One optimisation step per batch: minimise ``objective(batch, generator)[minimise]``
    (``"loss"`` unless the phase says otherwise).

    Parameters
    ----------
    name : str
        Identifies the phase (and its optimiser state in checkpoints).
    objective : callable
        ``objective(x, generator) -> {"loss": scalar, **metrics}``.
    parameters : sequence of Parameter
        What this phase's optimiser updates.
    lr : float, optional
        This phase's learning rate (default: the trainer's).
    loss_key : str
        The name under which this phase's loss is logged in the history.
    after_step : callable, optional
        Called with no arguments, under ``torch.no_grad()``, after each optimiser step: a
        projection onto a constraint set (bounded decoder norms, clipped critic weights).
    optimizer_options : dict
        Extra arguments of this phase's optimiser, for example Adam's ``betas=(0.5, 0.999)`` for
        the adversarial phases of a GAN-like model (Radford et al. 2016).
    minimise : str
        The objective's key of the value to minimise. By default ``"loss"``; a phase whose
        objective is a weighted sum of terms names the sum here and logs its terms under their
        own keys (``"loss"`` the main one), so the history keeps the units of the validation
        loss (the adversarial autoencoder's reconstruction phase with the generator's term).
        The sum itself is not logged, but a non-finite sum stops training as a non-finite loss
        does (:class:`~aekit.errors.TrainingDivergedError`).
    """

    name: str
    objective: Objective
    parameters: Sequence[nn.Parameter]
    lr: float | None = None
    loss_key: str = "loss"
    after_step: Callable[[], None] | None = None
    optimizer_options: dict[str, Any] = field(default_factory=dict)
    minimise: str = "loss"


@dataclass
class TrainerConfig:
    """Optimisation settings shared by all phases: the estimator's parameters of the same names
    (those it declares ``trainer=True``), and SGD's momentum, which is not a parameter."""

    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9
    lr_schedule: str = "none"
    max_epochs: int = 100
    batch_size: int = 128
    early_stopping: bool = False
    patience: int = 10
    min_delta: float = 0.0
    restore_best: bool = True
    precision: str = "fp32"
    cuda_graphs: bool | str = "auto"  # where possible, falling back without a warning
    verbose: int = 0


# The flags that choose how an optimiser computes its step, not what it computes: they belong to
# the optimiser that loads a state, never to the one that saved it.
_IMPLEMENTATION_FLAGS = ("foreach", "fused", "capturable")


def fused_supported(params: Sequence[torch.Tensor]) -> bool:
    """Whether torch's fused optimiser kernels (one kernel for all of Adam's or SGD's update) take
    these parameters: plain floating-point tensors, all on the CPU or all on CUDA devices.

    torch 2.13 has fused Adam, AdamW and SGD for every floating dtype (float16, bfloat16,
    float32, float64) on the CPU and on CUDA, checked by running them. Its list of fused devices
    also names MPS (and XPU, HPU), where aekit has not run them: those keep the multi-tensor
    (``foreach``) implementation, as do complex or integer parameters and tensor subclasses.
    """
    params = list(params)
    if not params:
        return False
    kinds = {p.device.type for p in params}
    return (
        len(kinds) == 1
        and kinds <= {"cpu", "cuda"}
        and all(type(p) in (torch.Tensor, nn.Parameter) and p.is_floating_point() for p in params)
    )


def _keep_implementation(optimizer: torch.optim.Optimizer, state_dict: dict) -> dict:
    """A load_state_dict pre-hook: the loaded param groups keep this optimiser's implementation
    flags (fused, foreach, capturable), whatever the saved ones were.

    Fused and foreach states have the same format (the moments per parameter and a ``step``
    tensor), but torch's ``load_state_dict`` copies the saved groups' flags, so a checkpoint
    written by a foreach Adam would turn a fused one back into foreach, and would leave ``step``
    where a fused step cannot use it (on the CPU, for CUDA parameters). With this optimiser's
    flags, torch places ``step`` as this optimiser needs it (float32 on the parameter's device
    when fused or capturable); for the others it is moved to the CPU, where they keep it.
    (Torch does not pickle optimiser hooks: an unpickled optimiser loads states as torch does.
    Those of :func:`aekit.load` and ``fit`` are new, and have the hook.)
    """
    groups = []
    for saved, current in zip(state_dict["param_groups"], optimizer.param_groups, strict=False):
        flags = {k: current[k] for k in _IMPLEMENTATION_FLAGS if k in current}
        groups.append({**saved, **flags})
    state = state_dict["state"]
    if not any(g.get("fused") or g.get("capturable") for g in optimizer.param_groups):
        state = {
            k: {
                name: v.cpu() if name == "step" and isinstance(v, torch.Tensor) else v
                for name, v in per_param.items()
            }
            for k, per_param in state.items()
        }
    return {**state_dict, "param_groups": groups, "state": state}


def make_optimizer(
    name: str, params, lr: float, weight_decay: float, momentum: float, **options: Any
):
    """``adam``, ``adamw`` or ``sgd`` (with momentum), with the fastest update torch has for the
    parameters: fused where :func:`fused_supported`, else multi-tensor (``foreach``).

    PyTorch's default is ``foreach`` on CUDA and a per-parameter loop on the CPU. The fused
    kernels do the whole update in one pass over each tensor: for the 784-400-20-400-784
    autoencoder on one CPU thread, one Adam step takes 0.67 ms fused and 2.5 ms foreach (SGD:
    0.48 and 0.83 ms), and a plain loop at batch 128 trains at about 25,000 samples/s with
    ``Adam(fused=True)`` against 19,200 with ``foreach=True`` (torch 2.13, 20,000 rows of
    Fashion-MNIST; ``benchmarks/train_speed.py`` measures the loops).
    ``fused`` or ``foreach`` in ``options`` (a phase's ``optimizer_options``) override the
    choice. A saved optimiser state loads into either implementation (see
    :func:`_keep_implementation`).
    """
    params = list(params)
    if "fused" not in options and "foreach" not in options:
        fused = fused_supported(params)
        options = {**options, "fused": fused or None, "foreach": None if fused else True}
    if name == "adam":
        opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, **options)
    elif name == "adamw":
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, **options)
    elif name == "sgd":
        options = {k: v for k, v in options.items() if k != "betas"}  # Adam's only
        opt = torch.optim.SGD(
            params, lr=lr, momentum=momentum, weight_decay=weight_decay, **options
        )
    else:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
    opt.register_load_state_dict_pre_hook(_keep_implementation)
    return opt


class CosineFactor:
    """Learning-rate factor ``(1 + cos(pi * min(t, T) / T)) / 2``: a cosine from 1 down to 0 over
    ``T`` epochs, then held at 0 (``partial_fit`` past ``T`` does not climb back up, as
    ``CosineAnnealingLR`` would). Each run sets ``T`` so that the cosine ends with the budget
    (:meth:`Trainer._budget_rates`): raising ``max_epochs`` to continue a finished run
    (``aekit train --resume --epochs N``) lays the rest of the cosine over the new budget,
    instead of training at 0. A class rather than a lambda, so trainers pickle."""

    def __init__(self, T: int):
        self.T = max(1, int(T))

    def __call__(self, epoch: int) -> float:
        return 0.5 * (1 + math.cos(math.pi * min(epoch, self.T) / self.T))


class CooldownFactor:
    """Learning-rate factor of the ``"auto"`` schedule: 1 for the first epochs, then a half
    cosine to 0 over the last ``fraction`` of ``T`` (at least one epoch), then held at 0: the
    "warmup-stable-decay" shape without the warm-up. Hägele et al. (2024) found a cooldown of
    20 % as good as a cosine over the whole run; it keeps the full rate for most of a short run,
    where a cosine over all of it learns less (on digits, 30 epochs: the anomaly ROC-AUC of a
    small autoencoder fell from 0.76-0.80 at a constant rate to 0.51-0.54 with the cosine, and
    was 0.70-0.79 with this cooldown). Each run sets ``T`` as for the cosine."""

    def __init__(self, T: int, fraction: float = 0.2):
        self.T = max(1, int(T))
        self.fraction = float(fraction)

    def __call__(self, epoch: int) -> float:
        decay = max(1, math.ceil(self.fraction * self.T))
        start = self.T - decay
        if epoch < start:
            return 1.0
        return 0.5 * (1 + math.cos(math.pi * min(epoch - start + 1, decay + 1) / (decay + 1)))


def make_scheduler(name: str, optimizer, max_epochs: int, patience: int):
    """Per-epoch learning-rate schedule: ``cosine`` (to 0 over ``max_epochs``, then 0), ``step``
    (x0.1 after a third and after two thirds of ``max_epochs``), ``plateau`` (x0.1 after
    ``max(2, patience // 2)`` epochs without improvement of the monitored loss), or ``none``.
    ``auto`` is a constant rate with a cosine cooldown over the last fifth of ``max_epochs``
    (:class:`CooldownFactor`); the trainer steps it only in runs within the budget
    (``Trainer.run(scheduled=True)``) and trains at the base rate in the others."""
    if name == "none":
        return None
    if name == "cosine":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, CosineFactor(max_epochs))
    if name == "auto":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, CooldownFactor(max_epochs))
    if name == "step":
        milestones = sorted({max(1, round(max_epochs / 3)), max(1, round(2 * max_epochs / 3))})
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma=0.1)
    if name == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, factor=0.1, patience=max(2, patience // 2)
        )
    raise ValueError(f"unknown lr_schedule {name!r}; choose one of {', '.join(LR_SCHEDULES)}")


class ArrayBatches:
    """Mini-batches of rows of an in-memory (or memory-mapped) array, by indexing (the
    :class:`aekit.sources.Batches` protocol, as the providers of other sources).

    ``index`` restricts the batches to those rows (a validation split without copying the data).
    With targets ``y`` (one per row of ``X``), each batch is a tuple ``(x, y)`` instead of ``x``.
    On the CPU, rows are gathered from the numpy array per batch, so a memory-mapped file larger
    than memory is never loaded whole. On a CUDA device the whole array is copied to the device
    once when it fits in a quarter of the free memory, and batches are gathered there; otherwise
    batches go through pinned memory.
    """

    def __init__(
        self,
        X: np.ndarray,
        batch_size: int,
        device: torch.device,
        index: np.ndarray | None = None,
        _on_device: torch.Tensor | None = None,
        y: np.ndarray | None = None,
    ):
        self.y = None if y is None else torch.as_tensor(y, device=device)  # no copy if a tensor
        self.index = None if index is None else np.asarray(index)
        self.n = len(X) if index is None else len(self.index)
        self.batch_size = max(1, int(batch_size))
        self.device = device
        self._np = X
        self._on_device = _on_device
        if _on_device is None and device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(device)
            if X.nbytes < free // 4:
                self._on_device = torch.tensor(X, device=device)

    def subset(self, index: np.ndarray, batch_size: int) -> ArrayBatches:
        """Batches over other rows of the same array, sharing its device copy."""
        return ArrayBatches(self._np, batch_size, self.device, index, self._on_device, self.y)

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def rows(self, idx: np.ndarray):
        if self.index is not None:
            idx = self.index[idx]
        x = self._x_rows(idx)
        if self.y is None:
            return x
        return x, self.y[torch.as_tensor(idx, device=self.y.device)]

    def _x_rows(self, idx: np.ndarray) -> torch.Tensor:
        if self._on_device is not None:
            return self._on_device[torch.as_tensor(idx, device=self.device)]
        batch = torch.from_numpy(self._np[idx])  # fancy indexing copies: writable, contiguous
        if self.device.type == "cpu":
            return batch
        if self.device.type == "cuda":
            return batch.pin_memory().to(self.device, non_blocking=True)
        return batch.to(self.device)  # MPS and others: pinned memory is CUDA-only

    def epoch(self, generator: torch.Generator | None):
        """Yield batches in an order drawn from ``generator`` (``None``: the original order)."""
        for x, _ in self.shards(generator, dist.ALONE):
            yield x

    def shards(self, generator: torch.Generator | None, world: dist.World):
        """Yield ``(rows, total)``: this process's part (:func:`aekit.distributed.part`) of
        each batch of ``total`` rows of the epoch; only those rows are read."""
        if generator is None:
            order = np.arange(self.n)
        else:
            order = torch.randperm(self.n, generator=generator).numpy()
        if self._on_device is not None:
            # Rows resident on the device: the epoch's order goes there once, and each batch is
            # one gather on the device, with no copy from the host per step.
            rows = order if self.index is None else self.index[order]
            on_device = torch.as_tensor(rows, device=self.device)
            y = self.y
            for start in range(0, self.n, self.batch_size):
                total = min(self.batch_size, self.n - start)
                lo, hi = dist.part(total, world)
                idx = on_device[start + lo : start + hi]
                x = self._on_device[idx]
                yield (x if y is None else (x, y[idx.to(y.device)])), total
            return
        for start in range(0, self.n, self.batch_size):
            idx = order[start : start + self.batch_size]
            lo, hi = dist.part(len(idx), world)
            yield self.rows(idx[lo:hi]), len(idx)


class _Progress:
    """Progress on stderr: a self-overwriting bar on a terminal, else a line per epoch."""

    def __init__(self, verbose: int, total_epochs: int):
        self.enabled = verbose > 0
        self.tty = self.enabled and sys.stderr.isatty()
        self.total = total_epochs

    def batch(self, epoch: int, step: int, n_steps: int, loss: float | None, rate: float):
        if not self.tty:
            return
        width = 24
        done = int(width * step / n_steps) if n_steps else 0  # 0: an iterable of unknown length
        loss_txt = f" loss {loss:.4g}" if loss is not None else ""
        sys.stderr.write(
            f"\repoch {epoch}/{self.total} [{'#' * done}{'.' * (width - done)}]"
            f"{loss_txt} {rate:,.0f} samples/s   "
        )
        sys.stderr.flush()

    def epoch_end(self, logs: dict[str, Any], rate: float):
        if not self.enabled:
            return
        parts = [f"epoch {logs['epoch']}/{self.total}"]
        parts += [f"{k} {v:.5g}" for k, v in logs.items() if k.endswith("loss")]
        parts.append(f"{rate:,.0f} samples/s")
        line = "  ".join(parts)
        # On a terminal, overwrite the bar and clear the rest of the line; elsewhere, plain lines.
        sys.stderr.write(f"\r{line}\x1b[K\n" if self.tty else f"{line}\n")
        sys.stderr.flush()


def _even_chunks(n: int, size: int, world: dist.World) -> int:
    """The validation chunk: ``size`` rows, or in data-parallel training the size of equal
    chunks of ``n`` rows no larger than ``size``, so that no chunk holds fewer rows than there
    are processes (a remainder of 1 row cannot be shared by 2)."""
    if not world.distributed or n % size == 0 or n % size >= world.size:
        return size
    k = math.ceil(n / size)
    return math.ceil(n / k)


def _batch_size(batch) -> int:
    return (batch[0] if isinstance(batch, tuple) else batch).shape[0]


@dataclass
class _Best:
    """The best monitored value so far and the weights that gave it (kept in memory)."""

    value: float = math.inf
    epoch: int = 0
    wait: int = 0
    state: dict | None = field(default=None, repr=False)
    restored_at: int | None = None  # the epoch count when ``state`` was last restored


class _CapturedStep:
    """Every phase of one training step, captured once in a CUDA graph and replayed.

    Static buffers hold the batch (copied in before each replay) and the stacked metrics (copied
    out after). ``key`` records what the capture baked in (the batch's shapes and every
    optimiser hyperparameter, such as the scheduled learning rate): a different key needs a new
    capture. Optimiser state replaced by ``load_state_dict`` (a resume, the best weights
    restored) invalidates it too (:meth:`Trainer._drop_graph`)."""

    def __init__(self, trainer: Trainer, x, key):
        self.key = key
        self.inputs = tuple(t.clone() for t in (x if isinstance(x, tuple) else (x,)))
        self.tuple = isinstance(x, tuple)
        self.graph = torch.cuda.CUDAGraph()
        self.graph.register_generator_state(trainer.noise_generator)
        batch = self.inputs if self.tuple else self.inputs[0]
        stream = trainer._side_stream()
        stream.wait_stream(torch.cuda.current_stream(trainer.device))
        with torch.cuda.stream(stream), torch.cuda.graph(self.graph, stream=stream):
            outs = [trainer._phase_step(phase, batch, None, 0, graphed=True)
                    for phase in trainer.phases]  # fmt: skip
            self.layout = [(phase, list(out)) for phase, out in zip(trainer.phases, outs,
                                                                     strict=True)]  # fmt: skip
            self.metrics = torch.stack(
                [v.detach().float().reshape(()) for out in outs for v in out.values()]
            )
        torch.cuda.current_stream(trainer.device).wait_stream(stream)

    def replay(self, x) -> list[tuple[Phase, dict[str, torch.Tensor]]]:
        for static, t in zip(self.inputs, x if self.tuple else (x,), strict=True):
            static.copy_(t, non_blocking=True)
        self.graph.replay()
        values = iter(self.metrics.clone())  # the next replay overwrites the static outputs
        return [(phase, {k: next(values) for k in keys}) for phase, keys in self.layout]


class Trainer:
    """Runs a module's phases over mini-batches, epoch after epoch, with state that can be saved.

    Parameters
    ----------
    module : nn.Module
        Everything that is trained (its ``train()``/``eval()`` modes are switched here).
    phases : list of Phase
    config : TrainerConfig
    device : torch.device
    seed : int
        Seeds the two generators the trainer owns: one on the CPU for the order of the batches, one
        on ``device`` handed to the objectives for their noise.
    validate : callable, optional
        ``validate(x) -> {"loss": ..., **metrics}`` on a batch of held-out rows, under
        ``torch.no_grad()`` in eval mode; logged with a ``val_`` prefix. Defaults to the first
        phase's objective.
    """

    def __init__(
        self,
        module: nn.Module,
        phases: Sequence[Phase],
        config: TrainerConfig,
        *,
        device: torch.device,
        seed: int,
        validate: Callable[[torch.Tensor], dict[str, torch.Tensor]] | None = None,
    ):
        if not phases:
            raise ValueError("a model needs at least one training phase")
        keys = [p.loss_key for p in phases]
        if len(set(keys)) != len(keys) or len({p.name for p in phases}) != len(phases):
            raise ValueError(f"phases need distinct names and loss_keys, got {keys}")
        self.module = module
        self.phases = list(phases)
        self.config = config
        self.device = device
        self.validate = validate
        self.seed = int(seed)
        self.shuffle_generator = torch.Generator().manual_seed(seed)
        self.noise_generator = torch.Generator(device=device).manual_seed(seed + 1)
        self.optimizers = {
            p.name: make_optimizer(
                config.optimizer,
                p.parameters,
                self._base_lr(p),
                config.weight_decay,
                config.momentum,
                **p.optimizer_options,
            )
            for p in self.phases
        }
        self.schedulers = {
            name: make_scheduler(config.lr_schedule, opt, config.max_epochs, config.patience)
            for name, opt in self.optimizers.items()
        }
        self.world = dist.ALONE  # the process group of the current run (see run)
        self._graph: _CapturedStep | None = None
        self._graph_off: str | None = None  # why steps are not captured (None: they may be)
        self._eager_full_steps = 0  # full-size eager steps so far (the graph's warm-up)
        self._settings = ""  # the optimisers' settings at the start of this epoch
        self._stream: torch.cuda.Stream | None = None  # of the warm-up and captures
        self._signalled = None  # (signal, previous handler) held in data-parallel training
        self._beyond_budget = False  # an "auto" run past max_epochs: base rates (see run)
        self.epoch = 0  # epochs completed over the module's whole life
        self.best = _Best()
        self.stop_training = False  # callbacks may set this

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (in memory: clones, joblib) without the CUDA graph and stream, which cannot
        be: the next run captures again."""
        state = self.__dict__.copy()
        state["_graph"] = state["_stream"] = state["_signalled"] = None
        state["_eager_full_steps"] = 0  # a new process warms up again before it captures
        return state

    def reconfigure(self, config: TrainerConfig) -> None:
        """Take new settings between runs (``set_params`` then ``partial_fit``): batch size,
        learning rate, weight decay, early stopping, verbosity. The optimiser and the schedule's
        kind are fixed once training has started."""
        old = self.config
        if (config.optimizer, config.lr_schedule) != (old.optimizer, old.lr_schedule):
            raise ParameterError(
                "optimizer and lr_schedule cannot change once training has started (was "
                f"{old.optimizer!r}/{old.lr_schedule!r}, now {config.optimizer!r}/"
                f"{config.lr_schedule!r}); call fit to train from scratch"
            )
        for phase in self.phases:
            for group in self.optimizers[phase.name].param_groups:
                group["weight_decay"] = config.weight_decay
            if phase.lr is None:
                self._rescale_lr(phase.name, old.lr, config.lr)
        self.config = config

    def set_phase_lr(self, name: str, lr: float | None) -> None:
        """Give phase ``name`` its own learning rate (None: the trainer's), keeping the schedule's
        current factor (``set_params`` of a phase's rate between ``partial_fit`` calls)."""
        phase = next(p for p in self.phases if p.name == name)
        old = self._base_lr(phase)
        phase.lr = lr
        self._rescale_lr(name, old, self._base_lr(phase))

    def _base_lr(self, phase: Phase) -> float:
        return phase.lr if phase.lr is not None else self.config.lr

    def _rescale_lr(self, name: str, old: float, new: float) -> None:
        """Move phase ``name``'s base rate from ``old`` to ``new``, keeping the schedule's
        current factor."""
        if new == old:
            return
        for group in self.optimizers[name].param_groups:
            group["lr"] = group["lr"] * new / old
        sched = self.schedulers[name]
        if hasattr(sched, "base_lrs"):
            sched.base_lrs = [new for _ in sched.base_lrs]

    def _budget_rates(self) -> None:
        """Set the rates of the schedules over ``max_epochs`` (``"cosine"``, ``"auto"``) for this
        run. The schedule ends where the budget does: its length ``T`` is the epochs it has
        counted plus the epochs ``max_epochs`` leaves. That is ``max_epochs`` for a fit and for
        a checkpoint's resume, but it is shorter when the schedule counted fewer epochs than
        the trainer (``partial_fit`` epochs of ``"auto"``, which it does not count, or a
        ``restore_best`` after Ctrl-C that set it back to the best epoch), and longer after
        ``max_epochs`` was raised. For ``"auto"`` beyond the budget (``partial_fit``), the base
        rates: a rate held at 0 would silently stop a stream from learning."""
        if self.config.lr_schedule not in ("cosine", "auto"):
            return
        left = max(0, int(self.config.max_epochs) - self.epoch)
        for name, sched in self.schedulers.items():
            for group, base, factor in zip(self.optimizers[name].param_groups, sched.base_lrs,
                                           sched.lr_lambdas, strict=True):  # fmt: skip
                factor.T = max(1, sched.last_epoch + left)
                group["lr"] = base if self._beyond_budget else base * factor(sched.last_epoch)

    # -- the loop ------------------------------------------------------------------------------

    def run(
        self,
        X: np.ndarray | Source,
        X_val: np.ndarray | Source | None = None,
        *,
        epochs: int,
        history: list[dict[str, Any]],
        callbacks: Sequence[Any] = (),
        early_stopping: bool | None = None,
        index: np.ndarray | None = None,
        val_index: np.ndarray | None = None,
        y: np.ndarray | None = None,
        y_val: np.ndarray | None = None,
        stage: str | None = None,
        scheduled: bool = True,
    ) -> str:
        """Train for up to ``epochs`` more epochs, appending one dict per epoch to ``history``.

        The training rows are ``X`` (or ``X[index]``); the validation rows ``X_val``, or
        ``X[val_index]`` (a split of one array without copying it). ``X`` and ``X_val`` are
        arrays, or sources (:class:`aekit.sources.Source`: a torch Dataset, an iterable of batches),
        whose batch providers meet :class:`ArrayBatches`' protocol. With targets ``y`` (and
        ``y_val`` for ``X_val``), the objectives receive ``(x, y)`` batches. ``stage`` labels each
        epoch's dict (multi-stage training such as greedy pre-training). ``scheduled`` says
        whether these epochs belong to the budget of ``max_epochs`` (``fit``, ``continue_fit``)
        or come beyond it (``partial_fit``): the ``"auto"`` schedule follows its cooldown in
        the first case and trains at the constant base rate in the second, without advancing.

        Returns why training stopped: ``"max_epochs"``, ``"early_stopping"``, ``"callback"`` or
        ``"interrupted"`` (Ctrl-C: the best weights are restored and the history kept). A loss that
        turns NaN or infinite restores the best weights and raises
        :class:`~aekit.errors.TrainingDivergedError` naming the epoch, step and learning rate.
        """
        cfg = self.config
        early_stopping = cfg.early_stopping if early_stopping is None else early_stopping
        # Data-parallel training in the process group the caller (torchrun, Ray, ...) set up:
        # every rank checks it has the same rows and starts from rank 0's weights, as
        # DistributedDataParallel does. (Only here: loading a model on one rank is no collective.)
        self.world = dist.world()
        batches = self._batches(X, cfg.batch_size, index, y)
        val_batches = None
        val_size = max(cfg.batch_size, 1024)
        if val_index is not None and len(val_index):
            val_size = _even_chunks(len(val_index), val_size, self.world)
            val_batches = batches.subset(val_index, val_size)
        elif X_val is not None and (isinstance(X_val, Source) or len(X_val)):
            if n_rows(X_val):  # (an iterable's batches come as they are)
                val_size = _even_chunks(n_rows(X_val), val_size, self.world)
            val_batches = self._batches(X_val, val_size, None, y_val)
        if batches.n is not None:  # an iterable counts its rows in the first epoch
            dist.agree(batches.n, self.world, "numbers of training rows")
        if val_batches is not None and val_batches.n is not None:
            dist.agree(val_batches.n, self.world, "numbers of validation rows")
        dist.broadcast_module(self.module, self.world)
        self._graphs_for_this_run()
        self._beyond_budget = cfg.lr_schedule == "auto" and not scheduled
        self._budget_rates()
        # Only rank 0 reports progress (and, in the callbacks, writes files).
        progress = _Progress(cfg.verbose if self.world.is_main else 0, self.epoch + epochs)
        self.stop_training = False
        if self.best.state is None:  # "best so far" before any epoch: the starting weights
            self.best.state = self._snapshot()
        self._call(callbacks, "on_train_begin")
        reason = "max_epochs"
        try:
            with dist.global_batch_norm(self.module, self.world), self._agreed_signals():
                reason = self._epochs(epochs, batches, val_batches, progress, history, callbacks,
                                      early_stopping, stage)  # fmt: skip
        except KeyboardInterrupt:
            reason = "interrupted"
            self.restore_best()
            if cfg.verbose:
                sys.stderr.write(
                    f"\ninterrupted: kept the best weights (epoch {self.best.epoch}) "
                    f"and the history of {len(history)} epoch(s)\n"
                )
        except TrainingDivergedError:
            self.restore_best()
            raise
        if reason == "early_stopping" and cfg.restore_best:
            self.restore_best()
        self._call(callbacks, "on_train_end", reason)
        return reason

    @contextlib.contextmanager
    def _agreed_signals(self):
        """In data-parallel training, Ctrl-C and SIGTERM stop every rank at the same step: the
        signal only sets a flag, which the ranks agree on every few steps and after each epoch
        (:meth:`_stop_if_signalled`). A rank that stopped alone would leave the others waiting
        in a collective, and rank 0 could not save the best weights."""
        import signal
        import threading

        self._signalled = None
        if not self.world.distributed or threading.current_thread() is not threading.main_thread():
            yield
            return
        kinds = (signal.SIGINT, signal.SIGTERM)
        previous = {s: signal.getsignal(s) for s in kinds}

        def hold(signum, frame):
            self._signalled = (signum, previous[signum])

        for s in kinds:
            signal.signal(s, hold)
        try:
            yield
        finally:
            for s in kinds:
                signal.signal(s, previous[s])

    def _stop_if_signalled(self) -> None:
        """Raise KeyboardInterrupt on every rank when any rank got a signal (a collective)."""
        if not dist.any_rank(self._signalled is not None, self.world):
            return
        if self._signalled is not None:
            signum, handler = self._signalled
            self._signalled = None
            if callable(handler):  # the caller's handler (the CLI records SIGTERM's code)
                handler(signum, None)
        raise KeyboardInterrupt

    def _epochs(self, epochs, batches, val_batches, progress, history, callbacks,
                early_stopping, stage) -> str:  # fmt: skip
        """The epochs of :meth:`run`; returns why they stopped (Ctrl-C and divergence aside)."""
        cfg = self.config
        reason = "max_epochs"
        for _ in range(epochs):
            logs = self._train_epoch(batches, progress)
            if stage is not None:
                logs = {"stage": stage, **logs}
            if val_batches is not None:
                logs.update(self._validate_epoch(val_batches))
            monitor = logs.get("val_loss", logs["loss"])
            if not math.isfinite(monitor):
                lr = self.optimizers[self.phases[0].name].param_groups[0]["lr"]
                raise TrainingDivergedError(
                    f"the validation loss is {monitor} at epoch {self.epoch} (learning rate "
                    f"{lr:g}) while the training loss is finite: the validation rows hold "
                    "values the model cannot reconstruct (far outside the training data's "
                    "range?). Check validation_data and its scaling. The best weights so "
                    f"far (epoch {self.best.epoch}) were kept.",
                    epoch=self.epoch,
                    step=0,
                    lr=lr,
                )
            for sched in self.schedulers.values():
                if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
                    sched.step(monitor)
                elif sched is not None and not self._beyond_budget:
                    sched.step()
            improved = monitor < self.best.value - cfg.min_delta
            if improved:  # the weights and the optimiser state, restored together
                self.best = _Best(monitor, self.epoch, 0, self._snapshot())
            else:
                self.best.wait += 1
            logs["best_epoch"] = self.best.epoch
            history.append(logs)
            progress.epoch_end(logs, logs["samples_per_second"])
            self._call(callbacks, "on_epoch_end", logs)
            if self.world.distributed:  # a callback on one rank (a time limit) stops all
                self.stop_training = dist.any_rank(self.stop_training, self.world)
                self._stop_if_signalled()
            if early_stopping and self.best.wait >= cfg.patience:
                reason = "early_stopping"
                break
            if self.stop_training:
                reason = "callback"
                break
        return reason

    def _batches(self, X, batch_size: int, index, y) -> Batches:
        """The batch provider of an array (:class:`ArrayBatches`) or of a source."""
        if isinstance(X, Source):
            return X.batches(batch_size, self.device, index=index, y=y)
        return ArrayBatches(X, batch_size, self.device, index, y=y)

    def _one_row_batch(self, batches: Batches, step: int, rows: int) -> DataError:
        """The error for a batch too small for batch normalisation in training (torch's
        "Expected more than 1 value per channel"), with its cause and fix."""
        n, size = getattr(batches, "n", None), self.config.batch_size
        why = (f"{n} rows with batch_size={size} leave a last batch of {n % size}"
               if n and n % size == rows else "the source gave a batch that small")  # fmt: skip
        return DataError(
            f"batch {step} of epoch {self.epoch + 1} has {rows} row, and batch normalisation "
            f"needs at least 2 per batch in training: {why}. Choose a batch_size that leaves at "
            "least 2 rows in the last batch (or leave a row out)"
        )

    @contextlib.contextmanager
    def _seeded(self, offset: int):
        """The global torch random state, forked and seeded from the trainer's seed and
        ``offset`` (an epoch number): what draws from it in an epoch (a user's ``nn.Dropout``,
        random augmentations in a Dataset's ``__getitem__``) is the same for the same seed,
        after a resume too, and the caller's global state is put back afterwards."""
        devices = []
        if self.device.type == "cuda":  # "cuda" alone is the current GPU (LOCAL_RANK's)
            index = self.device.index
            devices = [torch.cuda.current_device() if index is None else index]
        with torch.random.fork_rng(devices=devices):
            # Each rank its own stream (rank 0's is one process's): a user's dropout draws for
            # the rows a rank holds, not the same masks on every rank.
            rank = self.world.rank * 7_919
            torch.manual_seed((self.seed * 1_000_003 + offset + rank) % 2**63)
            yield

    def _train_epoch(self, batches: Batches, progress: _Progress) -> dict[str, Any]:
        with self._seeded(self.epoch):
            return self._run_train_epoch(batches, progress)

    def _phase_step(
        self, phase: Phase, x, batches: Batches | None, step: int, graphed: bool = False
    ) -> dict[str, torch.Tensor]:
        """One optimisation step of ``phase`` on batch ``x`` (this rank's rows of it).
        ``graphed``: gradients are zeroed in place, as a captured step (and any step between
        its replays) must."""
        opt = self.optimizers[phase.name]
        opt.zero_grad(set_to_none=not graphed)
        try:
            with self._autocast():
                out = phase.objective(x, self.noise_generator)
        except ValueError as e:
            if "more than 1 value per channel" not in str(e) or batches is None:
                raise
            raise self._one_row_batch(batches, step, _batch_size(x)) from e
        loss = out[phase.minimise]
        if self.world.distributed:  # this rank's share of the global batch's mean loss
            (loss * dist.share()).backward()
            dist.average_gradients(phase.parameters, self.world)
        else:
            loss.backward()
        opt.step()
        if phase.after_step is not None:
            with torch.no_grad():
                phase.after_step()
        # Detached: no step's autograd graph outlives it (a graph kept alive into the next step
        # keeps its AccumulateGrad nodes, bound to the stream they were made on).
        return {k: v.detach() for k, v in out.items()}

    def _autocast(self):
        """bfloat16 autocast for ``precision="bf16"`` (the weights stay float32)."""
        if self.config.precision != "bf16":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def _train_step(self, x, batches: Batches, step: int):
        """Every phase on batch ``x``: ``[(phase, metrics)]``, replayed from a CUDA graph when
        ``cuda_graphs`` allows, else eagerly."""
        if self._graph_off is None and _batch_size(x) == self.config.batch_size:
            done = self._graphed_step(x)
            if done is not None:
                return done
        # While a graph may replay, the gradients stay the tensors it writes: setting them to
        # None would free memory the graph still writes into (the allocator hands it out again).
        keep = self._graph_off is None
        return [(p, self._phase_step(p, x, batches, step, graphed=keep)) for p in self.phases]

    def _optimizer_settings(self) -> str:
        """Every optimiser hyperparameter a captured step bakes in (the scheduled rates too)."""
        return repr(
            [
                [(k, v) for k, v in sorted(g.items()) if k != "params"]
                for opt in self.optimizers.values()
                for g in opt.param_groups
            ]
        )

    def _graphed_step(self, x):
        """A full-size step through the CUDA graph (captured first when needed); None where the
        step runs eagerly instead: from a failed capture on."""
        if self._eager_full_steps < GRAPH_WARMUP_STEPS:
            self._eager_full_steps += 1
            # The warm-up runs on the side stream of the captures, as torch's recipe asks.
            side = self._side_stream()
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                out = [(p, self._phase_step(p, x, None, 0, graphed=True)) for p in self.phases]
            torch.cuda.current_stream(self.device).wait_stream(side)
            return out
        # The settings change between epochs only (schedules, set_params): read once per epoch.
        key = (tuple(t.shape for t in x) if isinstance(x, tuple) else x.shape, self._settings,
               self.config.precision)  # fmt: skip
        if self._graph is None or self._graph.key != key:
            self._graph = None  # its memory goes back before the new capture
            try:
                self._graph = _CapturedStep(self, x, key)
            except Exception as e:  # any failure to capture means: run eagerly
                detail = str(e).splitlines()[0][:300] if str(e) else ""
                self._no_graphs(
                    f"this model's training step cannot be captured in a CUDA graph "
                    f"({type(e).__name__}: {detail}); a step that copies from the host or "
                    "synchronises (a table moved to the GPU in every step, .item(), shapes "
                    "that depend on the data) cannot be"
                )
                return None
        return self._graph.replay(x)

    def _side_stream(self) -> torch.cuda.Stream:
        """The one stream that warm-up steps and captures run on."""
        if self._stream is None:
            self._stream = torch.cuda.Stream(self.device)
        return self._stream

    def _no_graphs(self, why: str) -> None:
        """Steps run eagerly from now on, and the user is told why: a warning where they asked
        for graphs, a note on stderr (``verbose``) where "auto" found them impossible."""
        import warnings

        self._graph, self._graph_off = None, why
        if self.config.cuda_graphs is True:
            warnings.warn(f"cuda_graphs=True: training runs eagerly: {why}", UserWarning,
                          stacklevel=5)  # fmt: skip
        elif self.config.verbose and self.world.is_main:
            sys.stderr.write(f"note: training runs eagerly, without CUDA graphs: {why}\n")

    def _drop_graph(self) -> None:
        """Forget the captured step: the optimiser state it refers to was replaced."""
        self._graph = None

    def _graphs_for_this_run(self) -> None:
        """Decide, at the start of a run, whether steps may be captured (``cuda_graphs``), and
        make the optimisers capturable where they will be."""
        auto = self.config.cuda_graphs == "auto"
        if not self.config.cuda_graphs or (auto and self.device.type != "cuda"):
            self._graph, self._graph_off = None, "cuda_graphs=False"
            return
        why = None
        if self.device.type != "cuda":
            why = f"CUDA graphs need a CUDA device, and this model trains on {self.device}"
        elif self.world.distributed:
            why = "data-parallel training is not captured in CUDA graphs yet"
        elif self.config.optimizer == "sgd":
            why = "the sgd optimiser cannot be captured (adam and adamw can)"
        if why is not None:
            if auto:  # "auto" asked for graphs only where they work: nothing to say
                self._graph, self._graph_off = None, why
            else:
                self._no_graphs(why)
            return
        if self._graph_off == "cuda_graphs=False":
            self._graph_off = None
        if self._graph_off is not None:  # a capture failed before: stays eager
            return
        # A new capture for every run: a model may hand the objectives new tensors between
        # runs (the semi-supervised AAE's labelled rows), which a replay would not see.
        self._graph = None
        for opt in self.optimizers.values():
            # The warm-up and the last, smaller batch step the capturable optimiser eagerly, on
            # purpose: torch's warning that this is slower than capturable=False does not apply.
            opt._warned_capturable_if_run_uncaptured = True
            for group in opt.param_groups:
                group["capturable"] = True
            for state in opt.state.values():  # a step count kept on the host moves along
                if isinstance(state.get("step"), torch.Tensor):
                    state["step"] = state["step"].to(self.device)

    def _run_train_epoch(self, batches: Batches, progress: _Progress) -> dict[str, Any]:
        self.module.train()
        start = time.perf_counter()
        # Per-step values are only collected here (no arithmetic per step: tiny tensor ops cost
        # as much as a small model's batch); they are weighted and summed once at the end.
        records: dict[str, list[torch.Tensor]] = {}
        step_losses: list[torch.Tensor] = []
        sizes: list[int] = []
        n_steps = len(batches)
        shown = 0.0
        world = self.world
        totals: list[int] = []
        self._settings = self._optimizer_settings() if self._graph_off is None else ""
        for step, (x, total) in enumerate(batches.shards(self.shuffle_generator, world), 1):
            sizes.append(_batch_size(x))
            totals.append(total)
            with dist.shard(total, world):
                for phase, out in self._train_step(x, batches, step):
                    for key, value in out.items():
                        if key == phase.minimise != "loss":
                            continue  # a weighted sum: its terms are logged instead
                        name = phase.loss_key if key == "loss" else key
                        records.setdefault(name, []).append(value.detach())
                    # what the step minimised: a non-finite value in any of its terms stops
                    step_losses.append(out[phase.minimise].detach())
            if world.distributed and step % SIGNAL_CHECK_STEPS == 0:
                self._stop_if_signalled()
            if step == 1:  # every phase must log under its own names
                for name, values in records.items():
                    if len(values) != 1:
                        raise ValueError(
                            f"two phases log {name!r}: give each phase's metrics distinct names"
                        )
            if progress.tty and (now := time.perf_counter()) - shown >= 0.1:
                shown = now  # at most 10 updates a second: reading the loss synchronises
                rate = sum(totals) / max(now - start, 1e-9)
                first = records[self.phases[0].loss_key][0]
                progress.batch(self.epoch + 1, step, n_steps, float(first), rate)
        # One synchronisation per epoch: the step losses are checked here, not at every step.
        # Each value is this rank's mean over its rows; weighted by those rows and summed over
        # the ranks, it becomes the global batch's mean, the same on every rank.
        weights = torch.tensor(sizes, dtype=torch.float64)
        seen = sum(totals)
        if world.distributed:
            per_step = torch.tensor(totals, dtype=torch.float64)
            losses = torch.stack(step_losses).double().cpu().view(len(sizes), -1)
            losses = dist.all_sum(losses * weights[:, None], world).cpu() / per_step[:, None]
            losses = losses.view(-1)
        else:
            losses = torch.stack(step_losses).cpu()
        finite = torch.isfinite(losses)
        if not bool(finite.all()):
            first = int((~finite).nonzero()[0, 0])
            step, phase = divmod(first, len(self.phases))
            lr = self.optimizers[self.phases[phase].name].param_groups[0]["lr"]
            raise TrainingDivergedError(
                f"the {self.phases[phase].name} loss became {float(losses[first])} at epoch "
                f"{self.epoch + 1}, step {step + 1} (learning rate {lr:g}). The best weights so "
                f"far (epoch {self.best.epoch}) were kept. Lower the learning rate, scale the "
                "data (very large values make losses overflow), or clip extreme values.",
                epoch=self.epoch + 1,
                step=step + 1,
                lr=lr,
            )
        self.epoch += 1
        seconds = time.perf_counter() - start
        logs: dict[str, Any] = {"epoch": self.epoch}
        names = list(records)
        sums = torch.stack([torch.stack(records[k]).cpu().double() @ weights for k in names])
        sums = dist.all_sum(sums, world).cpu()  # every rank logs, and decides, alike
        for name, value in zip(names, sums.tolist(), strict=True):
            logs[name] = value / seen
        logs["lr"] = self.optimizers[self.phases[0].name].param_groups[0]["lr"]
        logs["seconds"] = seconds
        logs["samples_per_second"] = seen / max(seconds, 1e-9)
        return logs

    @torch.no_grad()
    def _validate_epoch(self, batches: Batches) -> dict[str, float]:
        with self._seeded(-1):  # the same draws in every epoch's validation
            return self._run_validate_epoch(batches)

    def _run_validate_epoch(self, batches: Batches) -> dict[str, float]:
        self.module.eval()
        validate = self.validate
        if validate is None:
            objective = self.phases[0].objective
            generator = torch.Generator(device=self.device).manual_seed(0)

            def validate(x):
                return objective(x, generator)

        sums: dict[str, torch.Tensor] = {}
        seen = 0
        for x, total in batches.shards(None, self.world):  # each rank its part of every batch
            n = _batch_size(x)
            with dist.shard(total, self.world), self._autocast():
                values = validate(x)
            for key, value in values.items():
                v = value.detach().double() * n
                sums[key] = sums[key] + v if key in sums else v
            seen += total
        if not seen:  # an iterable's split that held out no batch: no validation loss
            return {}
        names = list(sums)
        totals = dist.all_sum(torch.stack([sums[k] for k in names]), self.world).cpu()
        return {f"val_{k}": v / seen for k, v in zip(names, totals.tolist(), strict=True)}

    # -- best weights, callbacks -------------------------------------------------------------

    def _snapshot(self) -> dict:
        return {
            "module": {k: v.detach().clone() for k, v in self.module.state_dict().items()},
            "optimizers": {k: copy.deepcopy(o.state_dict()) for k, o in self.optimizers.items()},
            "schedulers": {
                k: copy.deepcopy(s.state_dict()) for k, s in self.schedulers.items() if s
            },
            "base_lrs": {p.name: self._base_lr(p) for p in self.phases},
        }

    def restore_best(self) -> None:
        """Return to the best epoch so far (by the monitored loss): its weights, and its optimiser
        and schedule state, so that training can continue from there (after a divergence, the
        optimiser's moment estimates would otherwise hold inf and freeze the weights)."""
        state = self.best.state
        if state is None:
            return
        self._drop_graph()
        self.best.restored_at = self.epoch  # until the next epoch, the weights are the best's
        self.module.load_state_dict(state["module"])
        for k, opt in self.optimizers.items():
            opt.load_state_dict(copy.deepcopy(state["optimizers"][k]))
        for k, sched in self.schedulers.items():
            if sched is not None:
                sched.load_state_dict(copy.deepcopy(state["schedulers"][k]))
        for phase in self.phases:  # a rate set since the snapshot (set_params) is kept
            then = state.get("base_lrs", {}).get(phase.name)
            if then is not None:
                self._rescale_lr(phase.name, then, self._base_lr(phase))

    def _call(self, callbacks: Sequence[Any], hook: str, *args) -> None:
        for cb in callbacks:
            fn = getattr(cb, hook, None)
            if fn is not None:
                fn(self, *args)

    # -- saving and restoring the trainer's own state -----------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue training exactly: optimisers, schedules, generators,
        epoch count and the early-stopping bookkeeping, with the best epoch's weights and
        optimiser state (``best_state``) when the best epoch is an earlier one and they have
        not been restored (otherwise they are the current ones, which the caller saves anyway):
        early stopping (or Ctrl-C) after a resume then returns to the same best epoch as a run
        that was never stopped."""
        state = {
            "epoch": self.epoch,
            "best": {"value": self.best.value, "epoch": self.best.epoch, "wait": self.best.wait},
            "optimizers": {k: opt.state_dict() for k, opt in self.optimizers.items()},
            "schedulers": {k: s.state_dict() for k, s in self.schedulers.items() if s is not None},
            "shuffle_generator": self.shuffle_generator.get_state(),
            "noise_generator": self.noise_generator.get_state(),
        }
        current = self.best.epoch == self.epoch or self.best.restored_at == self.epoch
        if self.best.state is not None and not current:
            state["best_state"] = self.best.state
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._drop_graph()
        self.epoch = int(state["epoch"])
        b = state["best"]
        # Without best_state (the best epoch is the current one, or a save of an older aekit),
        # run() takes the current weights as the best so far.
        self.best = _Best(float(b["value"]), int(b["epoch"]), int(b["wait"]),
                          state.get("best_state"))  # fmt: skip
        for k, opt in self.optimizers.items():
            opt.load_state_dict(copy.deepcopy(state["optimizers"][k]))
        for k, s in self.schedulers.items():
            if s is not None and k in state["schedulers"]:
                s.load_state_dict(state["schedulers"][k])
        self.shuffle_generator.set_state(state["shuffle_generator"].to(torch.uint8))
        self.noise_generator.set_state(state["noise_generator"].to(torch.uint8))
