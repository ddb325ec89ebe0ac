"""Data that is not an in-memory array: what the estimators take besides arrays.

``fit``, ``partial_fit``, ``continue_fit``, ``transform``, ``score_samples``, ``score`` and
``reconstruct`` take, besides arrays (numpy arrays, memory maps and torch tensors stay arrays):

* a map-style :class:`torch.utils.data.Dataset` (``__len__`` and ``__getitem__``): each item one
  sample, a tensor or array of any shape (``(n_features,)``, a ``(C, H, W)`` image, a ``(T, C)``
  window), or a tuple or list whose first element is the sample (the rest, such as a label, is
  ignored);
* a :class:`torch.utils.data.DataLoader` over such a dataset: aekit takes ``loader.dataset`` and
  loads it in **its own order** (the seeded permutation the array path uses), with the loader's
  workers: ``num_workers``, ``pin_memory``, ``worker_init_fn``, ``multiprocessing_context``,
  ``prefetch_factor`` and ``timeout`` are reused. Not ``in_order=False`` (batches come back in
  order, so outputs keep the source's row order), nor ``persistent_workers`` (workers start
  with each epoch, seeded from it, so that random augmentations in ``__getitem__`` are the same
  for the same seed and after a resume; the training loop seeds the main process's torch
  generator per epoch likewise, :meth:`aekit.training.Trainer._seeded`); its
  ``batch_size``, ``shuffle``, ``sampler`` and ``collate_fn`` are not (the estimator's
  ``batch_size`` holds, and aekit stacks the samples itself). The loader brings the workers,
  aekit brings the order: so a seed gives the same model as the same rows in an array, bit for
  bit on the CPU, and a resumed fit continues exactly;
* an iterable of batches (a list of arrays or tensors, a DataLoader over an
  ``IterableDataset``, any object whose ``__iter__`` starts a fresh pass): each batch a tensor or
  array ``(b, *sample_shape)``, or a tuple or list whose first element is one. Batches come in
  the iterable's own order (shuffling is the iterable's job). A one-shot iterator (a generator)
  is refused: it cannot be read for a second epoch.

A source is wrapped once, by the estimator's input validation, in a :class:`Source`: the shape
of its samples, a probe (its first :data:`PROBE_ROWS` samples as flat float32 rows, from which
``fit`` learns the width, the input shape and its "auto" choices), the per-batch checks, and
the batch providers of the training loop (:class:`DatasetBatches`, :class:`IterableBatches`),
which meet the same protocol as :class:`aekit.training.ArrayBatches`.

Every batch is checked as it arrives (in the loader's worker when there are workers): the same
sample shape as the first, finite values, and values in [0, 1] where the model needs them. An
array is checked once, up front, and never per batch.
"""

from __future__ import annotations

import copy
import functools
import math
import warnings
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset

from . import distributed as dist
from ._validation import check_unit_interval
from .errors import DataError

#: Samples a non-array source's probe holds: the first ones, in order (map-style: items 0, 1,
#: ...; iterables: the first batches).
PROBE_ROWS = 1024

#: Samples a worker loads at once for inference and for the probe (chunks are concatenated).
LOAD_ROWS = 256

#: The DataLoader settings aekit reuses from a loader it is given (not batch_size, shuffle,
#: sampler, batch_sampler, drop_last or collate_fn: aekit brings the order and the stacking).
LOADER_OPTIONS = (
    "num_workers",
    "pin_memory",
    "worker_init_fn",
    "multiprocessing_context",
    "prefetch_factor",
    "timeout",
)


class Batches(Protocol):
    """What :meth:`aekit.training.Trainer.run` reads batches from (``ArrayBatches``,
    :class:`DatasetBatches`, :class:`IterableBatches`)."""

    n: int | None  # rows per epoch (None: not known before the epoch is read)

    def __len__(self) -> int: ...  # batches per epoch (0: unknown; for the progress bar)

    def epoch(self, generator: torch.Generator | None) -> Iterator[Any]: ...

    # (rows, total): this process's part of each batch of ``total`` rows (data-parallel training)
    def shards(self, generator: torch.Generator | None, world: dist.World) -> Iterator[Any]: ...

    def subset(self, index: np.ndarray, batch_size: int) -> Batches: ...


# -- what a source is ---------------------------------------------------------------------------


def _is_array_like(X: Any) -> bool:
    if isinstance(X, np.ndarray | torch.Tensor | str | bytes | dict):
        return True
    if hasattr(X, "__array__") or hasattr(X, "__array_interface__"):
        return True  # pandas, numpy-like containers, scikit-learn's _NotAnArray
    try:
        import scipy.sparse as sp

        if sp.issparse(X):
            return True
    except ImportError:  # pragma: no cover - scikit-learn needs scipy
        pass
    if isinstance(X, list | tuple):
        # A list of 2-D arrays or tensors (or of tuples starting with one) is a list of batches;
        # anything else (lists of numbers, of rows) is an array-like for scikit-learn.
        first = X[0] if len(X) else None
        if isinstance(first, tuple | list) and len(first):
            first = first[0]
        return not (isinstance(first, np.ndarray | torch.Tensor) and first.ndim >= 2)
    return False


def is_source(X: Any) -> bool:
    """Whether ``X`` is a source other than an array: a :class:`Source`, a torch ``Dataset`` or
    ``DataLoader``, or another iterable that is not array-like."""
    if isinstance(X, Source | Dataset | DataLoader):
        return True
    if _is_array_like(X):
        return False
    return isinstance(X, Iterable)


def as_source(X: Any, name: str = "X") -> Source:
    """``X`` wrapped as a :class:`Source` (probed: its first samples read), or a DataError that
    says why it cannot be one. A Source is copied (same probe, no rule, no split)."""
    if isinstance(X, Source):
        return X.renamed(name)
    if isinstance(X, DataLoader):
        if isinstance(X.dataset, IterableDataset):
            return IterableSource(X, name)
        options = {k: getattr(X, k) for k in LOADER_OPTIONS if hasattr(X, k)}
        return MapSource(X.dataset, name, options)
    if isinstance(X, IterableDataset):
        raise DataError(
            f"{name} is an IterableDataset, whose items are single samples: give a "
            "DataLoader(dataset, batch_size=...) over it (an iterable of batches), or a "
            "map-style Dataset (with __len__ and __getitem__) that aekit can shuffle"
        )
    if isinstance(X, Dataset):
        return MapSource(X, name)
    if iter(X) is X:
        raise DataError(
            f"{name} is a one-shot iterator ({type(X).__name__}): aekit reads a source more than "
            "once (its first samples to learn their shape, then the pass itself; fit, once per "
            "epoch), and this can be read only once. Give an object whose __iter__ starts a new "
            "pass each time (a list of batches, a DataLoader, a class with __iter__), or a "
            "map-style torch Dataset"
        )
    return IterableSource(X, name)


def probe_rows(X: Any) -> np.ndarray:
    """The rows fit's data-dependent choices see: an array itself, or a source's probe."""
    return X.probe if isinstance(X, Source) else X


def n_rows(X: Any) -> int | None:
    """Rows of an array or a map-style source; None for an iterable (not counted yet)."""
    if isinstance(X, IterableSource):
        return X.n_rows
    return len(X)


def take_rows(X: Any, index: np.ndarray) -> np.ndarray:
    """Rows ``index`` of an array or a map-style source, as a float32 array in memory (a few
    rows: the labelled ones of a semi-supervised model, labelled validation rows)."""
    if isinstance(X, MapSource):
        return X.gather(np.asarray(index))
    if isinstance(X, Source):
        raise DataError(f"{X.name} is an iterable of batches: its rows cannot be taken by index")
    return np.ascontiguousarray(X[index])


def sample_input_shape(sample_shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """``input_shape_`` learned from one sample's shape: ``(C, H, W)`` for a 3-D sample (an
    image), ``(T, C)`` for a 2-D sample (a window of a sequence), None for a flat row."""
    if len(sample_shape) in (2, 3):
        return tuple(int(s) for s in sample_shape)
    return None


# -- turning samples and batches into float32 rows, and checking them ----------------------------


def _first(item: Any) -> Any:
    return item[0] if isinstance(item, tuple | list) and len(item) else item


def _tensor(value: Any, what: str) -> torch.Tensor:
    """``value`` as a tensor, sharing an array's memory: it is only read (copied into the
    batch), so a read-only memory map's rows need no copy (and torch's warning about them
    does not apply)."""
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "The given NumPy array is not writable")
            t = torch.as_tensor(value)
    except (TypeError, RuntimeError, ValueError):
        raise DataError(
            f"{what} is a {type(value).__name__}, not a tensor or an array: return tensors from "
            "__getitem__ (for images, add torchvision.transforms.ToTensor() or PILToTensor())"
        ) from None
    if t.is_complex():  # complex values have no order
        raise DataError(f"{what} holds complex values; aekit takes real numbers")
    return t


class _Rule:
    """The value checks of a source's batches: finite always, [0, 1] when the model needs it
    (``reason``, ``instead`` and ``fix`` as :func:`aekit._validation.check_unit_interval`)."""

    def __init__(self, unit_interval: tuple[str, str, str | None] | None = None):
        self.unit_interval = unit_interval

    def problem(self, x: torch.Tensor) -> tuple | None:
        """The first bad value of flat rows ``x``: ``(kind, row, column, value, extra)`` or
        None (``extra``: the count of non-finite values, or the batch's range)."""
        with torch.no_grad():
            if not bool(torch.isfinite(x.sum())):  # NaN and inf propagate; overflow: look closer
                bad = ~torch.isfinite(x)
                if bool(bad.any()):
                    row, col = (int(i) for i in bad.nonzero()[0])
                    return ("finite", row, col, float(x[row, col]), int(bad.sum()))
            if self.unit_interval is not None and x.numel():
                lo, hi = torch.aminmax(x)
                if float(lo) < 0 or float(hi) > 1:
                    row, col = (int(i) for i in ((x < 0) | (x > 1)).nonzero()[0])
                    return ("range", row, col, float(x[row, col]), (float(lo), float(hi)))
        return None

    def message(self, problem: tuple, source: str, where: str) -> str:
        kind, _, col, value, extra = problem
        if kind == "finite":
            what = "NaN" if math.isnan(value) else "an infinite value (inf)"
            return (
                f"{source} contains {what} at {where}, feature {col} ({extra} non-finite "
                "value(s) in that batch). Remove those samples or impute the values (in the "
                "Dataset's __getitem__ or its transform) before using them."
            )
        reason, instead, fix = self.unit_interval
        return (
            f"{reason} needs values in [0, 1], but {source} holds {value:g} at {where}, feature "
            f"{col} (that batch ranges from {extra[0]:g} to {extra[1]:g}). "
            + (
                fix
                or "Scale the samples to [0, 1] (for images, divide by 255 or use "
                f"torchvision's ToTensor()), or use {instead}."
            )
        )


def _shape_message(source: str, where: str, shape: tuple, expected: tuple) -> str:
    return (
        f"{source}: the sample at {where} has shape {tuple(shape)}, but the first sample had "
        f"{tuple(expected)}: every sample needs the same shape (resize or crop images to one "
        "size in the Dataset's transform)"
    )


class _Indexed(Dataset):
    """``dataset[i]`` as ``(i, dataset[i])``: the collate step knows which items it stacks."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int):
        return i, self.dataset[i]


class _Collate:
    """Stack samples into flat float32 rows ``(b, n_features)`` and check them (in the loader's
    worker process, when there are workers); returns ``(rows, item indices, problem)``, the
    problem (or None) to be raised, with a clear message, by the main process."""

    def __init__(self, sample_shape: tuple[int, ...], rule: _Rule):
        self.sample_shape = tuple(sample_shape)
        self.n_features = math.prod(self.sample_shape)
        self.rule = rule

    def __call__(self, pairs):
        index = [int(i) for i, _ in pairs]
        x = torch.empty((len(pairs), self.n_features), dtype=torch.float32)
        for j, (i, item) in enumerate(pairs):
            try:
                s = _tensor(_first(item), f"item {i}")
            except DataError as e:
                return None, index, ("item", j, str(e))
            if tuple(s.shape) != self.sample_shape:
                return None, index, ("shape", j, tuple(s.shape))
            x[j].copy_(s.reshape(-1))  # any dtype to float32, rounding as numpy's astype
        return x, index, self.rule.problem(x)


def _forked(iterable: Iterable) -> Iterator[Any]:
    """Iterate ``iterable`` with torch's global random state put back at the end: a
    DataLoader draws its workers' base seed from it when a pass starts."""
    with torch.random.fork_rng(devices=[]):
        yield from iterable


class _EpochSampler:
    """A DataLoader's batch sampler whose index lists are set before each pass (one loader
    serves every epoch; the sampler runs in the main process)."""

    def __init__(self):
        self.batches: list[list[int]] = []

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


# -- sources ------------------------------------------------------------------------------------


class Source:
    """A validated non-array source: its samples' shape, its probe, and its batches."""

    name: str
    sample_shape: tuple[int, ...]
    probe: np.ndarray  # float32 (m, n_features): the first up to PROBE_ROWS samples
    rule: _Rule

    @property
    def n_features(self) -> int:
        return math.prod(self.sample_shape)

    def renamed(self, name: str) -> Source:
        """A copy for another use (another estimator, validation data): no [0, 1] rule, no
        split; the probe is shared, not read again."""
        out = copy.copy(self)
        out.name, out.rule = name, _Rule()
        return out

    def require_unit_interval(self, reason: str, instead: str, fix: str | None = None) -> None:
        """Check every batch and chunk read from here on: values in [0, 1]; and the probe now,
        when it was read (``fit``: before training starts)."""
        probe = self.__dict__.get("probe")
        if probe is not None:
            where = f"{self.name} (its first {len(probe)} samples)"
            check_unit_interval(probe, where, reason, instead, fix)
        self.rule = _Rule((reason, instead, fix))

    def batches(self, batch_size: int, device: torch.device, index=None, y=None) -> Batches:
        raise NotImplementedError  # pragma: no cover

    def chunks(self, rows: int) -> Iterator[np.ndarray]:
        """Consecutive flat float32 rows in the source's order, ``rows`` at a time (the last
        chunk shorter): the array path's inference chunks, so outputs are the same."""
        raise NotImplementedError  # pragma: no cover

    def extremes(self) -> np.ndarray:
        """The minimum and maximum of each feature over every row, as two float32 rows (what
        fit's data-dependent choices read: ``X.min()``, ``X.max(0)`` of these equal the whole
        data's). One pass over the source, then cached."""
        if getattr(self, "_extremes", None) is None:
            low = np.full(self.n_features, np.inf, dtype=np.float32)
            high = np.full(self.n_features, -np.inf, dtype=np.float32)
            for chunk in self.chunks(4096):
                if len(chunk):
                    np.minimum(low, chunk.min(0), out=low)
                    np.maximum(high, chunk.max(0), out=high)
            self._extremes = np.vstack([low, high])
        return self._extremes

    def to_array(self) -> np.ndarray:
        """Every sample as flat float32 rows in memory."""
        return np.concatenate(list(self.chunks(4096)))


class MapSource(Source):
    """A map-style Dataset, loaded by index in aekit's order (see the module doc)."""

    def __init__(self, dataset: Dataset, name: str = "X", options: dict | None = None):
        self.dataset, self.name = dataset, name
        self.options = dict(options or {})
        self.rule = _Rule()
        try:
            n = len(dataset)
        except TypeError:
            raise DataError(
                f"{name}: {type(dataset).__name__} has no __len__; a map-style Dataset needs "
                "__len__ and __getitem__ (or give an iterable of batches)"
            ) from None
        if n == 0:
            raise DataError(f"{name} is empty: the Dataset has no samples. Give at least one.")
        first = _tensor(_first(dataset[0]), f"{name} item 0")
        if first.ndim == 0:
            raise DataError(
                f"{name}: item 0 is a single number; each item must be a sample (a 1-D row, a "
                "(C, H, W) image, a (T, C) window), or a tuple whose first element is one"
            )
        self.sample_shape = tuple(int(s) for s in first.shape)

    @functools.cached_property
    def probe(self) -> np.ndarray:
        """The first samples (read when first needed: ``fit`` reads them, ``transform``
        needs only the shape of item 0)."""
        return self.gather(np.arange(min(len(self), PROBE_ROWS)))

    def __len__(self) -> int:
        return len(self.dataset)

    def loader(self, batch_sampler, device: torch.device | None = None) -> DataLoader:
        """A DataLoader over the dataset that reads the index lists ``batch_sampler`` gives,
        with the given loader's workers and this source's checks."""
        o = self.options
        workers = int(o.get("num_workers", 0))
        extra: dict[str, Any] = {}
        if workers:
            for key in (
                "prefetch_factor",
                "multiprocessing_context",
                "timeout",
            ):
                if o.get(key) is not None:
                    extra[key] = o[key]
        return DataLoader(
            _Indexed(self.dataset),
            batch_sampler=batch_sampler,
            collate_fn=_Collate(self.sample_shape, self.rule),
            num_workers=workers,
            # pinned memory helps a copy to a CUDA device only (elsewhere torch warns)
            pin_memory=bool(o.get("pin_memory")) and device is not None and device.type == "cuda",
            worker_init_fn=o.get("worker_init_fn"),
            # the loader draws its workers' base seed here, never from torch's global generator
            generator=torch.Generator().manual_seed(0),
            **extra,
        )

    def read(self, loader: DataLoader, step: int = 0):
        """``(rows, item indices)`` of each batch ``loader`` gives, raising a problem found by
        the checks (``step``: the number of the first batch, for the message; 0: none)."""
        for k, (x, index, problem) in enumerate(loader, start=step):
            if problem is not None:
                kind, j = problem[0], problem[1]
                where = f"item {index[j]}" + (f" (batch {k} of the epoch, from 1)" if step else "")
                if kind == "item":
                    raise DataError(f"{self.name}: {problem[2]}")
                if kind == "shape":
                    raise DataError(_shape_message(self.name, where, problem[2], self.sample_shape))
                raise DataError(self.rule.message(problem, self.name, where))
            yield x, index

    def gather(self, index: np.ndarray) -> np.ndarray:
        """Items ``index``, as flat float32 rows in memory (loaded in chunks by the workers)."""
        index = np.asarray(index, dtype=np.int64)
        sampler = _EpochSampler()
        sampler.batches = [
            index[s : s + LOAD_ROWS].tolist() for s in range(0, len(index), LOAD_ROWS)
        ]
        parts = [x.numpy() for x, _ in self.read(self.loader(sampler))]
        if not parts:
            return np.zeros((0, self.n_features), dtype=np.float32)
        return np.concatenate(parts)

    def chunks(self, rows: int) -> Iterator[np.ndarray]:
        n = len(self)
        sampler, ends = (
            _EpochSampler(),
            set(),
        )  # loads of at most LOAD_ROWS, none across a chunk end
        for c in range(0, n, rows):
            end = min(c + rows, n)
            sampler.batches += [
                list(range(s, min(s + LOAD_ROWS, end))) for s in range(c, end, LOAD_ROWS)
            ]
            ends.add(len(sampler.batches))
        parts = []
        for k, (x, _) in enumerate(self.read(self.loader(sampler)), start=1):
            parts.append(x.numpy())
            if k in ends:
                yield np.concatenate(parts)
                parts = []

    def batches(self, batch_size, device, index=None, y=None) -> DatasetBatches:
        return DatasetBatches(self, batch_size, device, index, y=y)


class DatasetBatches:
    """Mini-batches of a map-style dataset, in exactly :class:`~aekit.training.ArrayBatches`'
    order: one ``torch.randperm(n, generator=...)`` per epoch, consecutive slices of it as
    batches (of ``index``, when given), loaded through one DataLoader with the source's workers.
    The same rows as an array give the same batches, so the same weights."""

    def __init__(
        self,
        source: MapSource,
        batch_size: int,
        device: torch.device,
        index: np.ndarray | None = None,
        y: np.ndarray | torch.Tensor | None = None,
    ):
        self.source = source
        self.y = None if y is None else torch.as_tensor(y, device=device)
        self.index = None if index is None else np.asarray(index)
        self.n = len(source) if index is None else len(self.index)
        self.batch_size = max(1, int(batch_size))
        self.device = device
        self._sampler = _EpochSampler()
        self._loader = source.loader(self._sampler, device)

    def subset(self, index: np.ndarray, batch_size: int) -> DatasetBatches:
        """Batches over other items of the same dataset (a validation split)."""
        return DatasetBatches(self.source, batch_size, self.device, index, self.y)

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def epoch(self, generator: torch.Generator | None):
        """Yield batches in an order drawn from ``generator`` (``None``: the original order)."""
        for x, _ in self.shards(generator, dist.ALONE):
            yield x

    def shards(self, generator: torch.Generator | None, world: dist.World):
        """``(rows, total)``: this process's part of each batch of ``total`` rows."""
        if generator is None:
            order = np.arange(self.n)
        else:
            order = torch.randperm(self.n, generator=generator).numpy()
        if self.index is not None:
            order = self.index[order]
        batches = [order[s : s + self.batch_size] for s in range(0, self.n, self.batch_size)]
        totals = [len(b) for b in batches]
        self._sampler.batches = [b[slice(*dist.part(len(b), world))].tolist() for b in batches]
        # The workers' seeds (random augmentations in __getitem__) follow the epoch's order: the
        # same in a resumed fit, and never drawn from the shuffle generator (which the array
        # path does not draw from either).
        # (Each rank its own: random augmentations draw for the items a rank reads.)
        seed = int(order[:8].astype(np.int64).sum()) + len(order) + 7_919 * world.rank
        self._loader.generator.manual_seed(seed)
        cuda = self.device.type == "cuda"
        for total, (x, index) in zip(totals, self.source.read(self._loader, step=1), strict=True):
            x = x.to(self.device, non_blocking=cuda and x.is_pinned())
            if self.y is None:
                yield x, total
            else:
                yield (x, self.y[torch.as_tensor(index, device=self.y.device)]), total


class IterableSource(Source):
    """An iterable of batches, read in its own order (see the module doc).

    With a validation split (:meth:`split`), whole batches are held out: batch number ``i``
    (0-based, counted in each pass) is held out when a uniform draw seeded by ``(seed, i)`` is
    below the fraction, so the same batches are held out in every epoch, without a counting
    pass. The validation batches are read in a second pass over the iterable after each epoch.
    A draw that holds out no batch (an iterable of few batches) leaves no validation loss, as an
    array too small to split does.
    """

    def __init__(self, iterable: Iterable, name: str = "X"):
        self.iterable, self.name = iterable, name
        self.rule = _Rule()
        self.holdout: tuple[float, int] | None = None
        self.part = "all"  # "train" or "validation" of a split
        self.n_rows: int | None = None  # rows of one pass of this part, once counted
        rows, have, shape = [], 0, None
        for k, batch in enumerate(_forked(iterable)):
            x = self._rows(batch, k, shape)
            shape = self.sample_shape  # set by the first batch
            rows.append(x.numpy())
            have += len(x)
            if have >= PROBE_ROWS:
                break
        if not have:
            raise DataError(f"{name} is empty: the iterable gave no batch (or only empty ones)")
        self.probe = np.concatenate(rows)[:PROBE_ROWS]

    def split(self, fraction: float, seed: int) -> tuple[IterableSource, IterableSource]:
        """The training and validation parts, whole batches held out (see the class doc)."""
        train, val = copy.copy(self), self.renamed(self.name)
        val.rule = self.rule  # the same checks on both parts
        train.holdout = val.holdout = (float(fraction), int(seed))
        train.part, val.part = "train", "validation"
        train.n_rows = val.n_rows = None
        return train, val

    def renamed(self, name: str) -> IterableSource:
        out = super().renamed(name)
        out.holdout, out.part, out.n_rows = None, "all", None
        return out

    def held_out(self, k: int) -> bool:
        """Whether batch ``k`` belongs to the validation part."""
        fraction, seed = self.holdout
        return bool(np.random.default_rng((seed, k)).random() < fraction)

    def _rows(self, batch: Any, k: int, shape: tuple | None) -> torch.Tensor:
        """Flat float32 rows of batch ``k`` (a copy), checked."""
        t = _tensor(_first(batch), f"{self.name} batch {k + 1}")
        if t.ndim < 2 and shape is None:
            raise DataError(
                f"{self.name}: batch 1 has shape {tuple(t.shape)}; each batch must be (b, "
                "*sample_shape), at least 2-D, or a tuple whose first element is one (give a "
                "Dataset of samples instead, or batch them with a DataLoader)"
            )
        if shape is None:
            self.sample_shape = shape = tuple(int(s) for s in t.shape[1:])
        if t.ndim < 1 or tuple(t.shape[1:]) != shape:
            raise DataError(
                _shape_message(self.name, f"batch {k + 1}", tuple(t.shape[1:]), shape)
                + f" (batch {k + 1} has shape {tuple(t.shape)})"
            )
        x = t.reshape(len(t), -1).to(device="cpu", dtype=torch.float32, copy=True)
        problem = self.rule.problem(x)
        if problem is not None:
            raise DataError(
                self.rule.message(problem, self.name, f"batch {k + 1} (from 1), row {problem[1]}")
            )
        return x

    def passes(self) -> Iterator[torch.Tensor]:
        """One pass over this part's batches, as checked flat float32 rows (counting them)."""
        seen = 0
        for k, batch in enumerate(_forked(self.iterable)):
            if self.holdout is not None and self.held_out(k) != (self.part == "validation"):
                continue
            x = self._rows(batch, k, self.sample_shape)
            seen += len(x)
            yield x
        if not seen and self.part != "validation":  # no held-out batch: no validation loss
            if self.part == "train":
                why = "every batch was held out for validation; give more batches, a lower "
                why += "validation_fraction, or validation_data"
            else:
                why = "this pass over the iterable gave no batch"
            raise DataError(f"{self.name}: no batch to read: {why}")
        self.n_rows = seen

    def chunks(self, rows: int) -> Iterator[np.ndarray]:
        parts, have = [], 0
        for x in self.passes():
            parts.append(x.numpy())
            have += len(x)
            while have >= rows:
                joined = np.concatenate(parts)
                yield joined[:rows]
                parts, have = [joined[rows:]], have - rows
        if have:
            yield np.concatenate(parts)

    def batches(self, batch_size, device, index=None, y=None) -> IterableBatches:
        if index is not None or y is not None:
            raise DataError(
                f"{self.name} is an iterable of batches: it cannot be indexed by row or paired "
                "with labels (give a map-style Dataset and y, one label per item)"
            )
        return IterableBatches(self, device)


class IterableBatches:
    """The batches of an iterable, as they come (``generator`` is not used: the order is the
    iterable's); its training part, when split."""

    def __init__(self, source: IterableSource, device: torch.device):
        self.source, self.device = source, device

    @property
    def n(self) -> int | None:
        return self.source.n_rows

    def __len__(self) -> int:
        try:  # batches per pass, when the iterable knows (the progress bar only)
            return len(self.source.iterable)  # type: ignore[arg-type]
        except TypeError:
            return 0

    def subset(self, index: np.ndarray, batch_size: int):
        raise DataError(
            f"{self.source.name} is an iterable of batches: its validation part is whole "
            "batches (IterableSource.split), not rows by index"
        )

    def epoch(self, generator: torch.Generator | None):
        for x in self.source.passes():
            yield x.to(self.device)

    def shards(self, generator: torch.Generator | None, world: dist.World):
        """``(rows, total)``: every process reads every batch, and keeps its part."""
        for x in self.source.passes():
            lo, hi = dist.part(len(x), world)
            yield x[lo:hi].to(self.device), len(x)
