"""Type aliases of the public API's annotations (one place, so the signatures agree).

Importing this module imports numpy only (no torch): :mod:`aekit.anomaly`, :mod:`aekit.runs`
and :mod:`aekit.datasets` stay torch-free at import, and ``typing.get_type_hints`` resolves
every alias at run time. A torch ``Dataset`` meets :class:`MapDataset` (items by index) and a
``DataLoader`` is an ``Iterable``, so neither needs torch here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol, TypeAlias, TypedDict

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "ArrayLike",
    "Callbacks",
    "ContinueFitOptions",
    "FitOptions",
    "Input",
    "MapDataset",
    "RandomState",
]


class MapDataset(Protocol):
    """A map-style dataset (``torch.utils.data.Dataset``): one sample per index, a tensor or
    array, or a tuple whose first element is one (:mod:`aekit.sources`)."""

    def __getitem__(self, index: int, /) -> Any: ...


#: What ``fit``, ``transform``, ``score_samples``, ... take: an array-like (numpy array,
#: memory map, torch tensor, nested lists), a map-style Dataset, a DataLoader or another
#: iterable of batches whose ``__iter__`` starts a fresh pass (a one-shot generator type-checks
#: but is refused at run time). See :mod:`aekit.sources`.
Input: TypeAlias = ArrayLike | MapDataset | Iterable[Any]

#: A seed as scikit-learn takes it (:func:`aekit.runtime.seed_from`): an int, a legacy
#: ``numpy.random.RandomState`` (drawn from), or None (fresh entropy). A
#: ``numpy.random.Generator`` is refused, as by ``sklearn.utils.check_random_state``.
RandomState: TypeAlias = int | np.integer | np.random.RandomState | None

#: ``fit``'s callbacks: objects with any of ``on_train_begin``, ``on_epoch_end`` and
#: ``on_train_end`` (every hook is optional, so no protocol narrower than ``object``), such as
#: :class:`aekit.callbacks.Callback` subclasses; None for none.
Callbacks: TypeAlias = Iterable[object] | None


class FitOptions(TypedDict, total=False):
    """The keywords of ``fit`` and ``partial_fit`` (:class:`aekit.estimator.BaseAutoencoder`),
    for a mixin that passes them on (``**kwargs: Unpack[FitOptions]``)."""

    validation_data: Input | None
    callbacks: Callbacks


class ContinueFitOptions(TypedDict, total=False):
    """The keywords of ``continue_fit``, for a mixin that passes them on."""

    callbacks: Callbacks
