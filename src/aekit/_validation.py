"""Checks on arrays whose messages say where the problem is and what to do about it."""

from __future__ import annotations

import numpy as np

from .errors import DataError


def _first_index(mask: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(mask)), mask.shape))


def check_finite(X: np.ndarray, source: str = "X") -> None:
    """Raise :class:`DataError` naming the first NaN or infinite value (row and column, 0-based).

    The message contains "NaN" or "inf" as scikit-learn's checks expect.
    """
    if X.dtype.kind not in "fc":
        return
    # Fast path, one pass without a temporary array: NaN and inf propagate into the sum. A finite
    # sum means every value is finite; an overflowing sum only sends us to the exact check.
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.sum(X)):
            return
    bad = ~np.isfinite(X)
    if not bad.any():
        return
    pos = _first_index(bad)
    value = X[pos]
    kind = "NaN" if np.isnan(value) else "infinite value (inf)"
    n_bad = int(bad.sum())
    where = f"row {pos[0]}, column {pos[1]}" if len(pos) == 2 else f"index {pos}"
    raise DataError(
        f"{source} contains {kind} at {where} ({n_bad} non-finite value(s) in all). "
        "Remove those rows or impute the values (for example with "
        "sklearn.impute.SimpleImputer) before using the data."
    )


def check_unit_interval(
    X: np.ndarray,
    source: str = "X",
    reason: str = "loss='bce'",
    instead: str = "loss='mse'",
    fix: str | None = None,
) -> None:
    """Raise :class:`DataError` if any value lies outside [0, 1], naming the first one, why
    [0, 1] is needed (``reason``) and what to do (``fix``; by default, scale the data or use the
    setting for other data, ``instead``)."""
    if X.size == 0 or (X.min() >= 0 and X.max() <= 1):
        return
    outside = (X < 0) | (X > 1)
    pos = _first_index(outside)
    where = f"row {pos[0]}, column {pos[1]}" if len(pos) == 2 else f"index {pos}"
    raise DataError(
        f"{reason} needs values in [0, 1], but {source} ranges from {float(X.min()):g} to "
        f"{float(X.max()):g} (first value outside at {where}: {float(X[pos]):g}). "
        + (
            fix
            or "Scale the data to [0, 1] first (sklearn.preprocessing.MinMaxScaler, or --scale "
            f"minmax on the command line), or use {instead}."
        )
    )


def check_not_empty(X: np.ndarray, source: str = "X") -> None:
    """Raise :class:`DataError` when there are no rows or no columns."""
    if X.ndim == 0 or X.shape[0] == 0:
        raise DataError(f"{source} is empty: it has no rows. Give at least one sample.")
    if X.ndim >= 2 and int(np.prod(X.shape[1:])) == 0:
        raise DataError(f"{source} has {X.shape[0]} rows but no columns (features).")


#: Channel counts a channels-last image array is recognised by: gray, RGB, RGBA.
_CHANNELS = (1, 3, 4)


def image_shape_of(shape: tuple[int, ...], source: str = "X", then: str = "") -> tuple | None:
    """The ``(channels, height, width)`` of each image in an array of shape ``shape``, the one
    rule for the estimators' input and the data files.

    3-D ``(n, height, width)`` arrays are gray images, ``(1, height, width)``; 4-D arrays are
    ``(n, channels, height, width)``, as PyTorch orders them; other shapes give None (2-D rows:
    not images). A 4-D shape whose last axis is 1, 3 or 4 and whose second is not, such as
    ``(n, 28, 28, 3)``, is channels-last ``(n, height, width, channels)`` (as Pillow, matplotlib
    and TensorFlow give images), unambiguously: it is refused with a :class:`DataError` saying
    how to reorder it, never read with the axes mixed up. ``then``: what to do after reordering
    (for a file: save it again), added to the message.
    """
    if len(shape) == 3:
        return (1, int(shape[1]), int(shape[2]))
    if len(shape) != 4:
        return None
    if shape[-1] in _CHANNELS and shape[1] not in _CHANNELS:
        raise DataError(
            f"{source} has shape {tuple(shape)}, which looks like channels-last images (n, "
            "height, width, channels); aekit takes (n, channels, height, width), as PyTorch "
            "does: reorder the axes with np.moveaxis(X, -1, 1) (the same as "
            f"X.transpose(0, 3, 1, 2)){then}"
        )
    return tuple(int(s) for s in shape[1:])
