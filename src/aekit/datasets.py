"""Data in: the bundled and standard image datasets, the user's own files, splits and scaling.

:func:`load_dataset` is the one call most code needs: it reads a source with :func:`read_data`,
splits it into training and test rows, and scales both with a :class:`Scaler` fitted on the
training rows only. The scaler is returned, and is JSON-serialisable, so a run folder can store it
and apply the same scaling to new data later.

Sources
-------
``"digits"``
    scikit-learn's 8x8 digits (1797 images, pixel values 0..16), always available.
``"mnist"``, ``"fashion-mnist"``
    The four standard IDX files (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``), each gzipped (``.gz``) or not. The
    first directory holding all four is used, searched in this order:

    1. the ``data_dir`` argument (the files directly in it);
    2. ``$AEKIT_DATA/<name>`` when ``$AEKIT_DATA`` is set (always the ``<name>`` subfolder, never
       the files directly in ``$AEKIT_DATA``: MNIST and Fashion-MNIST use the same file names);
    3. ``~/.cache/aekit/<name>``;
    4. ``/usr/share/datasets/<name>`` (``apt-get install dataset-fashion-mnist`` on Debian/Ubuntu).

    If none has them and ``download=True``, the missing files are downloaded into the first
    directory of that list (``data_dir``, else ``$AEKIT_DATA/<name>``, else the cache), each checked
    against its published MD5 checksum and written atomically.
a ``.npy`` file
    2-D (tabular) or 3-D ``(n, H, W)`` / 4-D ``(n, C, H, W)`` images, channels first as PyTorch
    orders them (the estimators take the same); an unambiguously channels-last ``(n, H, W, C)``
    array (last axis 1, 3 or 4, second not) is refused with the fix, ``np.moveaxis(X, -1, 1)``.
a ``.npz`` file
    Key ``X`` as for ``.npy``, and an optional ``y`` of integer or string labels.
a ``.csv`` file
    Numbers, with an optional header row, and an optional label column (``label_column``).
a folder of images
    PNG or JPEG files, either directly in the folder (no labels) or one subfolder per class
    (hidden folders skipped), each at most :data:`MAX_IMAGE_PIXELS` pixels (checked from the
    file's header, before it is decoded); all of one size, or of any sizes with ``image_size``,
    which resizes each one as it is decoded. :class:`ImageFolder` is the same folder as a torch
    ``Dataset`` that decodes one image per item (for DataLoader workers);
    :func:`load_dataset` decodes it a batch at a time into a memory-mapped scratch file, so
    memory stays bounded however many images there are.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import math
import numbers
import os
import re
import struct
import sys
import tempfile
import zlib
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ._validation import check_finite, check_not_empty, image_shape_of
from .errors import DataError

if TYPE_CHECKING:  # imported on first use by __getattr__ below (it imports torch)
    from ._image_folder import ImageFolder

__all__ = [
    "KNOWN_DATASETS",
    "MAX_IMAGE_PIXELS",
    "Dataset",
    "ImageFolder",
    "RawData",
    "Scaler",
    "load_dataset",
    "read_data",
    "scaled_rows",
    "stored_data_paths",
]

KNOWN_DATASETS: tuple[str, ...] = ("digits", "fashion-mnist", "mnist")

#: The most pixels (width x height) an image in a folder may have: 4096 x 4096. Each image is
#: decoded whole (in a DataLoader worker) before it is resized, so larger images are refused from
#: their header, before they are decoded (which also keeps Pillow's decompression-bomb check, at
#: about 89 million pixels, from being reached).
MAX_IMAGE_PIXELS = 4096 * 4096

#: Where Debian's dataset packages put data (``<SYSTEM_DATA_DIR>/<name>``); searched last.
SYSTEM_DATA_DIR = Path("/usr/share/datasets")

_IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

#: name -> (mirrors tried in order, {file name: MD5 of the .gz file}); the MD5s are the ones
#: torchvision publishes (torchvision/datasets/mnist.py).
DOWNLOADS: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {
    "mnist": (
        ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
        {
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        },
    ),
    "fashion-mnist": (
        (
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ),
        {
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
    ),
}

_LABEL_NAMES = {
    "mnist": [str(i) for i in range(10)],
    "fashion-mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                      "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
}  # fmt: skip

# IDX type codes (the third byte of the magic number) -> big-endian numpy dtype.
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_SCALES = ("auto", "none", "divide", "standard", "minmax")
_USAGE = "give a path to a .npy, .npz, .csv file or a folder of images"


def __getattr__(name: str):
    # ImageFolder subclasses torch's Dataset, so it lives in a module that imports torch, loaded
    # on first use: reading a CSV (and `import aekit.datasets`) needs no torch.
    if name == "ImageFolder":
        from ._image_folder import ImageFolder

        return ImageFolder
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ---------------------------------------------------------------------------------------- scaling
@dataclass(eq=False)
class Scaler:
    """The scaling applied to the data; JSON-serialisable, so a run folder can store and reuse it.

    ``transform`` computes ``X / divisor`` ("divide") or ``(X - offset) / scale`` ("standard",
    "minmax"); "none" only converts to float32.

    Attributes
    ----------
    kind : {"none", "divide", "standard", "minmax"}
    divisor : float or None
        For "divide": 255 for 8-bit images, 16 for digits.
    offset : ndarray of shape (n_features,) or None
        Per-feature mean ("standard") or minimum ("minmax").
    scale : ndarray of shape (n_features,) or None
        Per-feature standard deviation ("standard") or max - min ("minmax"); zeros (constant
        features) are replaced by 1, so those features map to 0.
    """

    kind: str
    divisor: float | None = None
    offset: np.ndarray | None = None
    scale: np.ndarray | None = None

    KINDS = ("none", "divide", "standard", "minmax")

    @classmethod
    def fit(
        cls, kind: str, X: np.ndarray, divisor: float | None = None, rows: np.ndarray | None = None
    ) -> Scaler:
        """Fit a scaler of the given kind on ``X[rows]`` (default all rows) of shape
        (n_samples, n_features).

        The statistics are computed in float64 over chunks of rows (two passes for the standard
        deviation, as ``np.std``), so a memory-mapped ``X`` is never copied whole.
        """
        if kind not in cls.KINDS:
            raise DataError(f"unknown scaling {kind!r}; choose one of {', '.join(cls.KINDS)}")
        if kind == "none":
            return cls("none")
        if kind == "divide":
            if divisor is None or not np.isfinite(divisor) or divisor <= 0:
                raise DataError(f"scaling 'divide' needs a positive divisor, got {divisor!r}")
            return cls("divide", divisor=float(divisor))
        X = np.asarray(X)  # a view of a memory map stays one
        if X.ndim != 2:
            raise DataError(
                f"a scaler is fitted on 2-D data (n_samples, n_features), got {X.shape}"
            )
        check_not_empty(X if rows is None else X[rows[:1]], "the data to fit the scaler on")
        if kind == "standard":
            n, total = 0, np.zeros(X.shape[1])
            for chunk in _row_chunks(X, rows):
                total += chunk.sum(axis=0, dtype=np.float64)
                n += len(chunk)
            offset, squares = total / n, np.zeros(X.shape[1])
            for chunk in _row_chunks(X, rows):
                squares += np.square(chunk - offset).sum(axis=0)  # float64: offset is
            scale = np.sqrt(squares / n)
        else:
            low, high = _column_min_max(X, rows)
            offset, scale = low, high - low
        # As sklearn's _handle_zeros_in_scale: constant features get scale 1, not 0 or ~1e-17.
        scale[scale < 10 * np.finfo(np.float64).eps] = 1.0
        return cls(kind, offset=offset, scale=scale)

    def _check(self, X) -> np.ndarray:
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2:
            raise DataError(
                f"the scaler needs 2-D data (n_samples, n_features), got shape {X.shape}"
            )
        if self.offset is not None and X.shape[1] != len(self.offset):
            raise DataError(
                f"wrong number of features for this scaler: expected {len(self.offset)} (as in "
                f"the data it was fitted on), got {X.shape[1]}"
            )
        return X

    def transform(self, X) -> np.ndarray:
        """Scale ``X`` of shape (n_samples, n_features); returns a new float32 array."""
        X = self._check(X)
        if self.kind == "divide":
            return X / np.float32(self.divisor)
        if self.kind in ("standard", "minmax"):
            return (X - self.offset.astype(np.float32)) / self.scale.astype(np.float32)
        return X.copy()

    def inverse_transform(self, X) -> np.ndarray:
        """Undo :meth:`transform`: map scaled rows back to the source's units (float32)."""
        X = self._check(X)
        if self.kind == "divide":
            return X * np.float32(self.divisor)
        if self.kind in ("standard", "minmax"):
            return X * self.scale.astype(np.float32) + self.offset.astype(np.float32)
        return X.copy()

    def affine(self) -> tuple[np.ndarray | float, np.ndarray | float] | None:
        """``(offset, scale)`` with ``transform(X) == (X - offset) / scale`` (float32), or None
        for "none": the form an exported graph bakes in (:meth:`aekit.runs.Run.export`)."""
        if self.kind == "divide":
            return 0.0, float(self.divisor)
        if self.kind in ("standard", "minmax"):
            return self.offset.astype(np.float32), self.scale.astype(np.float32)
        return None

    def to_dict(self) -> dict:
        """The scaler as plain JSON types (str, float, lists of float, None)."""
        offset, scale, divisor = self.offset, self.scale, self.divisor
        return {
            "kind": self.kind,
            "divisor": None if divisor is None else float(divisor),
            "offset": None if offset is None else [float(v) for v in offset],
            "scale": None if scale is None else [float(v) for v in scale],
        }

    @classmethod
    def from_dict(cls, d) -> Scaler:
        """Rebuild a scaler from :meth:`to_dict`'s output; :class:`DataError` if malformed."""

        def bad(why):
            return DataError(f"malformed scaler (as stored by Scaler.to_dict): {why}")

        if not isinstance(d, dict):
            raise bad("expected a dict with keys kind, divisor, offset, scale")
        if extra := set(d) - {"kind", "divisor", "offset", "scale"}:
            raise bad(f"unknown keys {sorted(extra)}")
        kind = d.get("kind")
        if kind not in cls.KINDS:
            raise bad(f"'kind' must be one of {', '.join(cls.KINDS)}")
        if kind == "none":
            return cls("none")
        if kind == "divide":
            divisor = d.get("divisor")
            if type(divisor) not in (int, float) or not math.isfinite(divisor) or divisor <= 0:
                raise bad("'divide' needs a positive number 'divisor'")
            return cls("divide", divisor=float(divisor))
        try:
            offset, scale = (np.asarray(d.get(k), dtype=np.float64) for k in ("offset", "scale"))
        except (TypeError, ValueError):
            offset = scale = np.zeros(0)
        if offset.ndim != 1 or scale.ndim != 1 or not len(offset):
            raise bad(f"{kind!r} needs 'offset' and 'scale' as non-empty lists of numbers")
        if len(offset) != len(scale):
            raise bad(f"'offset' has {len(offset)} values but 'scale' has {len(scale)}")
        if not (np.isfinite(offset).all() and np.isfinite(scale).all() and scale.all()):
            raise bad("'offset' and 'scale' must be finite and 'scale' non-zero")
        return cls(kind, offset=offset, scale=scale)

    def __eq__(self, other) -> bool:
        return isinstance(other, Scaler) and self.to_dict() == other.to_dict()


# ------------------------------------------------------------------------------------ containers
@dataclass(eq=False)
class RawData:
    """Rows as read from the source, unscaled, in the source's order.

    Attributes
    ----------
    X : ndarray of shape (n_samples, n_features), float32
        Images are flattened row-major from (channels, height, width). For a ``.npy`` file, a
        read-only memory map of the file in its own numeric dtype; for a folder of images, a
        uint8 memory map of a scratch file (both converted to float32 chunk by chunk by
        :func:`load_dataset` and :func:`scaled_rows`).
    y : ndarray of shape (n_samples,), int64, or None
        Labels 0..K-1; ``label_names[k]`` names class k. A row whose label is missing (a CSV
        label cell that is empty or NaN, NA, N/A, <NA>, null, None in any case; NaN or such a
        string in an ``.npz``'s ``y``) is -1, the estimators' default ``unlabeled_label``, so
        semi-supervised models read it as unlabelled; a source whose labels are all missing is
        an error. -1 in the file itself is a class like any other.
    image_shape : tuple (channels, height, width) or None
        Set when the rows are images.
    label_names : list of str or None
    n_standard_train : int or None
        For sources with a standard split (mnist, fashion-mnist: 60000): rows ``[:n]`` are the
        official training set, the rest the official test set.
    source : str
        The dataset name or the resolved path.
    pixel_max : float or None
        255 for 8-bit images, 16 for digits, None for tabular data and float images.
    """

    X: np.ndarray
    y: np.ndarray | None
    image_shape: tuple[int, int, int] | None
    label_names: list[str] | None
    n_standard_train: int | None
    source: str
    pixel_max: float | None


@dataclass(eq=False)
class Dataset:
    """Scaled training and test rows (float32, 2-D) with their labels and the fitted scaler.

    Attributes
    ----------
    name : str
        The dataset name, or the file's stem / folder's name.
    X_train, X_test : ndarray of shape (n_train, n_features), (n_test, n_features), float32
    y_train, y_test : ndarray of shape (n_train,), (n_test,), int64, or None
        Labels 0..K-1, -1 where the label is missing (see :class:`RawData`).
    image_shape : tuple (channels, height, width) or None
    scaler : Scaler
        Fitted on the training rows only and applied to both.
    label_names : list of str or None
    source : str
    """

    name: str
    X_train: np.ndarray
    X_test: np.ndarray
    y_train: np.ndarray | None
    y_test: np.ndarray | None
    image_shape: tuple[int, int, int] | None
    scaler: Scaler
    label_names: list[str] | None
    source: str


# ----------------------------------------------------------------------------------- public API
def load_dataset(
    name_or_path: str | os.PathLike[str],
    *,
    data_dir: str | os.PathLike[str] | None = None,
    scale: str | Scaler = "auto",
    test_fraction: float = 0.2,
    random_state: int | None = 0,
    label_column: str | int | None = None,
    download: bool = True,
    downloader: Callable[[str, str], None] | None = None,
    image_size: int | tuple[int, int] | None = None,
    workers: int = 0,
) -> Dataset:
    """Read a dataset, split it into training and test rows, and scale both.

    Parameters
    ----------
    name_or_path : str or path-like
        One of :data:`KNOWN_DATASETS`, or a ``.npy``/``.npz``/``.csv`` file or a folder of images.
    data_dir, label_column, download, downloader, image_size, workers
        As for :func:`read_data`.
    scale : {"auto", "none", "divide", "standard", "minmax"} or Scaler
        A fitted :class:`Scaler` (for example a run's stored one) is applied as it is.
        "auto": images with a known pixel maximum (8-bit images, digits) are divided by it, to
        [0, 1]; float images already in [0, 1] are left as they are; everything else is
        standardised per feature (mean 0, std 1). "divide" needs a known pixel maximum. The scaler
        is always fitted on the training rows only.
    test_fraction : float in [0, 1)
        Fraction of rows held out as the test set, drawn by
        ``sklearn.model_selection.train_test_split``, the same for the same ``random_state``;
        stratified by label when every class has two rows and both parts can hold one of each.
        0 keeps every row, in the source's order, in ``X_train`` (``X_test`` then has 0 rows).
        Ignored for sources with a standard split (mnist, fashion-mnist: 60000 training and
        10000 test rows).
    random_state : int or None
        Seed of the split.

    Returns
    -------
    Dataset
        For a ``.npy`` file (memory-mapped), ``X_train`` and ``X_test`` are float32 memory maps:
        of the file itself when it is float32 and neither split nor scaled (``scale="none"``,
        ``test_fraction=0``), else of a scratch file in the temporary folder (``$TMPDIR``),
        deleted when the arrays are. For a folder of images, memory maps of scratch files too
        (the images are decoded one batch at a time, so memory stays bounded however many
        there are; the disk holds one byte per value decoded and four per value scaled). In
        memory for every other source.
    """
    if not isinstance(scale, Scaler) and scale not in _SCALES:
        raise DataError(f"unknown scale {scale!r}; choose one of {', '.join(_SCALES)}")
    if not 0 <= test_fraction < 1:
        raise DataError(f"test_fraction must be in [0, 1), got {test_fraction!r}")
    raw = read_data(name_or_path, data_dir=data_dir, label_column=label_column,
                    download=download, downloader=downloader, image_size=image_size,
                    workers=workers)  # fmt: skip
    n = len(raw.X)
    if raw.n_standard_train is not None:
        train, test = np.arange(raw.n_standard_train), np.arange(raw.n_standard_train, n)
    elif test_fraction == 0:
        train, test = np.arange(n), np.arange(0)
    else:
        train, test = _split(n, raw.y, test_fraction, random_state, raw.source)
    # Rows are gathered by index, chunk by chunk, straight into the scaled arrays: the source is
    # never copied whole (raw.X[train] would copy it, and a memory-mapped .npy with it).
    train_rows = None if len(train) == n and (train == np.arange(n)).all() else train

    kind, divisor = scale, raw.pixel_max
    if isinstance(scale, Scaler):
        pass
    elif scale == "auto":
        if raw.image_shape is not None and raw.pixel_max is not None:
            kind = "divide"
        elif raw.image_shape is not None and _in_unit_interval(raw.X, train_rows):
            kind = "none"
        else:
            kind = "standard"
    elif scale == "divide" and divisor is None:
        raise DataError(
            f"scale='divide' divides by the pixel maximum of 8-bit images or digits, but "
            f"{raw.source} has none (it is not integer image data): use 'minmax' or 'standard'"
        )
    if isinstance(scale, Scaler):
        scaler = scale
    else:
        scaler = Scaler.fit(kind, raw.X, divisor=divisor, rows=train_rows)
    y = raw.y
    path = Path(raw.source)
    name = _known_name(name_or_path) or (path.name if path.is_dir() else path.stem)
    return Dataset(
        name=name,
        X_train=scaled_rows(raw.X, train_rows, scaler, raw.source),
        X_test=scaled_rows(raw.X, test, scaler, raw.source),
        y_train=None if y is None else y[train],
        y_test=None if y is None else y[test],
        image_shape=raw.image_shape,
        scaler=scaler,
        label_names=raw.label_names,
        source=raw.source,
    )


def read_data(
    name_or_path,
    *,
    data_dir=None,
    label_column: str | int | None = None,
    download: bool = True,
    downloader: Callable[[str, str], None] | None = None,
    image_size: int | tuple[int, int] | None = None,
    workers: int = 0,
) -> RawData:
    """Read a source's rows, unscaled and in the source's order.

    Parameters
    ----------
    name_or_path : str or path-like
        One of :data:`KNOWN_DATASETS` (a string, case-insensitive), or a path to a ``.npy``,
        ``.npz`` or ``.csv`` file or to a folder of images (see the module docstring).
    data_dir : path-like, optional
        For mnist and fashion-mnist: the directory holding the four IDX files, searched first.
    label_column : str or int, optional
        For CSV files: the column holding the labels, by header name or by 0-based index
        (negative counts from the end). A string of digits (``"4"``, as ``--label-column 4``
        gives it) is the header's column of that name if there is one, else an index. Its
        values may be integers or strings. The first row is a header when it holds a non-number
        outside the label column, or a non-number in the label column above a number.
    download : bool
        For mnist and fashion-mnist: download the files when no directory has them.
    downloader : callable ``(url, dest_path) -> None``, optional
        Writes the file at ``url`` to ``dest_path``; the default uses urllib with a 60 s timeout.
    image_size : int or (height, width), optional
        For a folder of images: resize every image to this size (an int: a square) as it is
        decoded, so the images may have any sizes (see :class:`ImageFolder`). Without it, every
        image must have the same size.
    workers : int
        For a folder of images: the DataLoader worker processes that decode the images (0:
        decode in this process). The images are decoded a batch at a time into a uint8 memory
        map of a scratch file in ``$TMPDIR``: memory stays bounded however many there are.

    Returns
    -------
    RawData
        For a folder of images, ``X`` is that uint8 memory map, and ``pixel_max`` 255.

    Raises
    ------
    DataError
        For an unknown name, a missing, unreadable or malformed file, or a failed download; the
        message names the file (and row, column, value where there is one) and the fix.
    """
    known = _known_name(name_or_path)
    if known is not None:
        if label_column is not None:
            raise DataError(f"label_column applies to CSV files only, not to {known!r}")
        if image_size is not None:
            raise DataError(
                f"image_size (--image-size) applies to folders of images only, not to {known!r}"
            )
        if known == "digits":
            return _read_digits()
        return _read_idx_dataset(known, data_dir, download, downloader or _urllib_download)
    path = Path(name_or_path).expanduser()
    if not path.exists():
        raise DataError(
            f"unknown dataset {str(name_or_path)!r}; known names: {', '.join(KNOWN_DATASETS)}; "
            f"or {_USAGE}"
        )
    suffix = path.suffix.lower()
    if label_column is not None and not (path.is_file() and suffix == ".csv"):
        raise DataError(f"label_column applies to CSV files only, not to {path}")
    if image_size is not None and not path.is_dir():
        raise DataError(
            f"image_size (--image-size) applies to folders of images only, not to {path}"
        )
    source = str(path.resolve())
    if path.is_dir():
        X, y, names, image_shape = _read_image_folder(path, image_size, workers)
        return RawData(X, y, image_shape, names, None, source, 255.0)
    if suffix == ".csv":
        X, y, names = _read_csv(path, label_column)
        return RawData(X, y, None, names, None, source, None)
    if suffix in (".npy", ".npz"):
        X, y, names = _read_numpy(path, suffix)
        X, image_shape, pixel_max = _from_array(X, source)
        return RawData(X, y, image_shape, names, None, source, pixel_max)
    raise DataError(
        f"{path}: unsupported file type {path.suffix!r}; supported: .npy, .npz, .csv, "
        f"or a folder of {', '.join(_IMAGE_SUFFIXES)} images"
    )


def stored_data_paths(source, data_dir=None) -> tuple[str | None, str | None]:
    """``(source, data_dir)`` as a run should record them, so that they mean the same thing from
    any working directory: a dataset name (one of :data:`KNOWN_DATASETS`, any case, as
    :func:`read_data` takes it) unchanged; a file or folder as an absolute path, ``~`` expanded
    and symbolic links resolved (as :attr:`RawData.source`), whether or not it exists yet;
    ``data_dir`` likewise absolute; None stays None."""

    def absolute(path) -> str:
        return str(Path(path).expanduser().resolve())

    if source is not None and _known_name(source) is None:
        source = absolute(source)
    return source, None if data_dir is None else absolute(data_dir)


# ------------------------------------------------------------------------------ helpers: sources
def _known_name(name_or_path) -> str | None:
    if not isinstance(name_or_path, str):
        return None  # a Path is always a path
    key = name_or_path.strip().lower().replace("_", "-")
    return key if key in KNOWN_DATASETS else None


_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # a zip archive, an empty one


def _read_numpy(path: Path, suffix: str):
    """``(X, y, label_names)`` of a ``.npy`` (X memory-mapped) or ``.npz`` file, never
    unpickling anything; every way the file can fail to be a plain numeric array is a
    :class:`DataError` that says so, and none suggests ``allow_pickle``."""
    import zipfile

    try:
        with open(path, "rb") as f:
            head = f.read(len(_NPY_MAGIC))
    except OSError as e:
        raise DataError(f"cannot read {path}: {e}") from e
    npy = suffix == ".npy"
    if not head:
        raise _not_plain(path, suffix, "it is empty (0 bytes)", pickle=False)
    if npy and head.startswith(_ZIP_MAGICS):
        raise DataError(f"{path} is a zip archive (.npz), not a .npy file: rename it to .npz")
    if not npy and head == _NPY_MAGIC:
        raise DataError(f"{path} is a single array (.npy), not an .npz archive: rename it to .npy")
    if head[:1] == b"\x80":  # pickle protocol 2 and later start with 0x80
        raise _not_plain(path, suffix, "it is a Python pickle")
    if (head != _NPY_MAGIC) if npy else not head.startswith(_ZIP_MAGICS):
        signature = r"the .npy signature \x93NUMPY" if npy else "a zip archive's PK"
        raise _not_plain(
            path, suffix, f"it does not start with {signature} (its first bytes: {head.hex(' ')})"
        )

    def failure(e: Exception, key: str = "X") -> DataError:
        if "pickle" in str(e):  # numpy: object arrays need pickle, which aekit refuses
            where = f"its array {key!r}" if not npy else "it"
            return _not_plain(path, suffix, f"{where} holds Python objects (dtype object)", key)
        return _not_plain(path, suffix, f"it is damaged or truncated ({e})", key, pickle=False)

    errors = (OSError, ValueError, EOFError, zipfile.BadZipFile)
    if npy:
        try:
            try:  # memory-mapped: rows are read when used, never copied whole
                return np.load(path, mmap_mode="r", allow_pickle=False), None, None
            except ValueError:  # object arrays, truncated data: np.load says why without mmap
                return np.load(path, allow_pickle=False), None, None
        except errors as e:
            raise failure(e) from None
    arrays = {}
    try:  # our own file object: np.load leaves its own open when the zip is damaged
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as archive:
            if "X" not in archive.files:
                raise DataError(
                    f"{path} has no array named 'X' (keys found: {', '.join(archive.files)}); "
                    "save the features as X (and labels as y): np.savez(path, X=X, y=y)"
                )
            for key in ("X", "y"):
                if key in archive.files:
                    try:
                        arrays[key] = archive[key]
                    except errors as e:
                        raise failure(e, key) from None
                    if not isinstance(arrays[key], np.ndarray):  # a member that is not a .npy
                        raise _not_plain(path, suffix, f"its member {key}.npy is not an array")
    except DataError:
        raise
    except errors as e:
        raise failure(e) from None
    X, y, names = arrays["X"], None, None
    if "y" in arrays:
        y, names = _encode_labels(arrays["y"], f"{path} (y)")
        if len(y) != len(X):
            raise DataError(f"{path}: X has {len(X)} rows but y has {len(y)} labels")
    return X, y, names


def _not_plain(path: Path, suffix: str, why: str, key: str = "X", pickle: bool = True):
    """The error for a file that is not a plain numeric array (``pickle``: say that aekit never
    unpickles, where the file may need it)."""
    if suffix == ".npy":
        save = "np.save(path, np.asarray(X, dtype=np.float32), allow_pickle=False)"
    elif key == "y":
        save = "np.savez(path, X=X, y=np.asarray(y, dtype=str)), labels as strings or integers"
    else:
        save = "np.savez(path, X=np.asarray(X, dtype=np.float32), y=y)"
    never = (
        " aekit reads arrays of numbers only and never unpickles a file (unpickling can run any "
        "code), which object arrays would need."
        if pickle
        else ""
    )
    return DataError(
        f"{path} is not a plain numeric NumPy {suffix} file: {why}.{never} Save the data again "
        f"as a plain array: {save}"
    )


def _read_digits() -> RawData:
    from sklearn.datasets import load_digits

    digits = load_digits()
    X = digits.data.astype(np.float32)
    y = digits.target.astype(np.int64)
    return RawData(X, y, (1, 8, 8), [str(i) for i in range(10)], None, "digits", 16.0)


def _split(n, y, test_fraction, random_state, source):
    from sklearn.model_selection import train_test_split

    # Stratify when every class has two rows and both parts can hold one of each (sklearn's rule).
    n_test = math.ceil(test_fraction * n)
    counts = None if y is None else np.unique(y, return_counts=True)[1]
    stratified = counts is not None and counts.min() >= 2 and min(n_test, n - n_test) >= len(counts)
    try:
        return train_test_split(np.arange(n), test_size=test_fraction, random_state=random_state,
                                stratify=y if stratified else None)  # fmt: skip
    except ValueError as e:
        raise DataError(
            f"cannot split the {n} rows of {source} with test_fraction={test_fraction}: {e}. "
            "Use test_fraction=0 to keep every row for training."
        ) from e


#: Values per chunk when rows are gathered, converted or summed (16 MB as float32).
_CHUNK_VALUES = 2**22


def _row_chunks(X: np.ndarray, rows: np.ndarray | None = None):
    """``X[rows]`` (default all rows) as consecutive chunks of about ``_CHUNK_VALUES`` values."""
    n = len(X) if rows is None else len(rows)
    step = max(1, _CHUNK_VALUES // max(1, math.prod(X.shape[1:])))
    for start in range(0, n, step):
        yield X[start : start + step] if rows is None else X[rows[start : start + step]]


def _column_min_max(X: np.ndarray, rows: np.ndarray | None = None):
    """Per-column minimum and maximum of ``X[rows]`` as float64, chunk by chunk."""
    low = np.full(X.shape[1], np.inf)
    high = np.full(X.shape[1], -np.inf)
    for chunk in _row_chunks(X, rows):
        np.minimum(low, chunk.min(axis=0), out=low)
        np.maximum(high, chunk.max(axis=0), out=high)
    return low, high


def _in_unit_interval(X: np.ndarray, rows: np.ndarray | None = None) -> bool:
    low, high = _column_min_max(X, rows)
    return bool(low.min() >= 0 and high.max() <= 1)


def _is_mapped(X) -> bool:
    """Whether ``X`` is (a view of) a memory-mapped file."""
    import mmap

    while X is not None:
        if isinstance(X, np.memmap | mmap.mmap):
            return True
        X = getattr(X, "base", None)
    return False


def scaled_rows(
    X: np.ndarray, rows: np.ndarray | None, scaler: Scaler, source: str = "X"
) -> np.ndarray:
    """``scaler.transform(X[rows])`` (default all rows) as float32, without copying ``X`` whole.

    Rows are gathered, converted and scaled chunk by chunk into the result: a new array for an
    in-memory ``X``; for a memory-mapped ``X`` a memory map of a scratch file in the temporary
    folder (``$TMPDIR``), unlinked at once and freed with the array, so the result costs disk and
    page cache, not anonymous memory. A float32 memory map taken whole and unscaled is returned
    as it is.
    """
    mapped = _is_mapped(X)
    if rows is None and scaler.kind == "none" and X.dtype == np.float32 and X.ndim == 2:
        return X
    m = len(X) if rows is None else len(rows)
    shape = (m, math.prod(X.shape[1:]))
    out = _scratch(shape, source) if mapped and m else np.empty(shape, dtype=np.float32)
    start = 0
    for chunk in _row_chunks(X, rows):
        out[start : start + len(chunk)] = scaler.transform(chunk)
        start += len(chunk)
    return out


def _scratch(shape: tuple[int, int], source: str, dtype=np.float32, what: str = "") -> np.ndarray:
    """A writable memory map (float32, or ``dtype``) of an anonymous (already unlinked) file in
    ``$TMPDIR``; ``what`` says what goes there, for the error when the disk has no room."""
    import shutil

    folder = tempfile.gettempdir()
    need = math.prod(shape) * np.dtype(dtype).itemsize
    if what:  # decoded images
        fix = "a smaller --image-size (image_size=)"
    else:
        what = f"is memory-mapped, and its {shape[0]} x {shape[1]} scaled rows"
        fix = ("float32 data that needs no copy (--scale none --test-fraction 0: the file is "
               "used as it is)")  # fmt: skip

    def no_room(free: int) -> DataError:
        return DataError(
            f"{source} {what} go to a scratch file of {need / 1e6:.1f} MB in {folder}, which "
            f"has {free / 1e6:.1f} MB free. Set TMPDIR to a folder with room, or give {fix}."
        )

    free = shutil.disk_usage(folder).free
    if need > free - min(2**28, free // 10):  # leave room for everything else
        raise no_room(free)
    with tempfile.TemporaryFile(prefix="aekit-rows-", dir=folder) as f:
        if need and hasattr(os, "posix_fallocate"):
            try:  # reserve the blocks now: a sparse file on a disk that fills up later would
                os.posix_fallocate(f.fileno(), 0, need)  # kill the process (SIGBUS) on write
            except OSError as e:
                if e.errno == errno.ENOSPC:
                    raise no_room(shutil.disk_usage(folder).free) from None
                if e.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                    raise  # (a file system that cannot reserve space stays sparse)
        return np.memmap(f, dtype=dtype, mode="w+", shape=shape)  # the map keeps the file


def _from_array(X: np.ndarray, source: str):
    """Flatten an array of rows or images; returns (X float32 2-D, image_shape, pixel_max)."""
    if X.dtype.kind not in "biuf":
        raise DataError(f"{source} holds values of type {X.dtype}; expected numbers")
    if X.ndim not in (2, 3, 4):
        raise DataError(
            f"{source} has shape {X.shape}; expected 2-D (n_samples, n_features), "
            "3-D (n_images, height, width) or 4-D (n_images, channels, height, width)"
        )
    check_not_empty(X, source)
    image_shape = image_shape_of(X.shape, source, then=", and save it again")
    pixel_max = 255.0 if image_shape and X.dtype == np.uint8 else None
    X = X.reshape(len(X), -1)  # a view, for a C-ordered memory map too
    check_finite(X, source)  # one pass, no temporary array, unless a value is not finite
    if X.dtype.kind == "f" and X.dtype.itemsize > 4:  # float64 values must fit float32's range
        _check_fits_float32(X, source)
    if not _is_mapped(X):  # (a memory map's rows become float32 as they are gathered)
        X = X.astype(np.float32)
    return X, image_shape, pixel_max


def _check_fits_float32(X: np.ndarray, source: str) -> None:
    """Values beyond float32's range would become infinite when the rows are gathered as
    float32: name the first one (chunk by chunk, no whole-size temporary)."""
    limit, start = float(np.finfo(np.float32).max), 0
    for chunk in _row_chunks(X):
        big = np.abs(chunk) > limit
        start += len(chunk)
        if big.any():
            start -= len(chunk)
            i, j = np.unravel_index(int(np.argmax(big)), big.shape)
            raise DataError(
                f"{source} holds {float(chunk[i, j])!r} at row {start + i}, column {j}: beyond "
                "float32's range (+-3.4e38), which aekit computes in; rescale the data first"
            )


def _encode_labels(y, source: str):
    """Map labels (ints or strings) to 0..K-1, and a missing label (NaN; an empty string, "nan",
    "NA", ...: see ``_MISSING_LABELS``) to -1, the estimators' default ``unlabeled_label``. The
    names are the sorted unique values present, as strings. No label at all is an error."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise DataError(f"{source}: labels must be 1-D, got shape {y.shape}")
    if y.dtype.kind == "S":
        y = y.astype(str)
    if y.dtype.kind == "f":
        missing = np.isnan(y)
        present = y[~missing]
        if not np.isfinite(present).all() or (present != np.round(present)).any():
            raise DataError(f"{source}: labels must be integers or strings, got non-integer floats")
    elif y.dtype.kind == "U":
        missing = np.isin(np.char.lower(np.char.strip(y)), list(_MISSING_LABELS))
    elif y.dtype.kind in "biu":
        missing = np.zeros(len(y), dtype=bool)
    else:
        raise DataError(f"{source}: labels must be integers or strings, got {y.dtype}")
    if len(y) and missing.all():
        raise DataError(
            f"{source}: every label is missing (NaN, or empty or {_MISSING_WORDS}), so there are "
            "no labels at all; fill them in, or leave the labels out"
        )
    present = y[~missing]
    values, codes = np.unique(present.astype(np.int64) if y.dtype.kind == "f" else present,
                              return_inverse=True)  # fmt: skip
    out = np.full(len(y), -1, dtype=np.int64)
    out[~missing] = codes.reshape(-1)
    return out, [str(v) for v in values]


# ---------------------------------------------------------------------------------- helpers: CSV
#: Cells pandas parses per chunk: bounds its tokenizer's buffers (tens of bytes a cell) while the
#: rows land in one float32 array, so the peak stays near that array's size, not twice float64's.
_CSV_CHUNK_CELLS = 2_000_000


def _read_csv(path: Path, label_column):
    """``(X float32, y, label_names)`` of a CSV file.

    The numbers are parsed by pandas' C reader, chunk by chunk, straight into one float32 array
    (no Python object per cell; the peak is about that array plus one chunk). The csv module
    reads only the first two rows (header or not). Whenever pandas cannot parse a chunk into
    finite numbers of the right shape, the file is read again with the csv module, which is
    the authority: it names the physical line, the column and the value of the first bad cell,
    or, where pandas only refused what Python reads (an integer beyond 64 bits), returns the
    rows itself.
    """
    import csv

    def csv_rows():  # (physical line number at the end of the row, fields), blank lines skipped
        try:
            with open(path, newline="", encoding="utf-8-sig") as f:
                reader = csv.reader(f)
                for row in reader:
                    if row and not (len(row) == 1 and not row[0].strip()):  # as pandas skips
                        yield reader.line_num, row
        except UnicodeDecodeError as e:
            raise DataError(f"{path} is not UTF-8 text: {e}") from e
        except csv.Error as e:
            raise DataError(f"{path}: malformed CSV: {e}") from e

    rows = csv_rows()
    first_line, first = next(rows, (0, None))
    second = next(rows, (0, None))[1]
    rows.close()
    if first is None:
        raise DataError(f"{path} has no data rows (the file is empty)")
    width = len(first)
    index = _column_index(label_column)  # an int, or a string of digits ("4", "-1")
    hint = index % width if index is not None and -width <= index < width else None
    # The first row is a header when it holds a non-number outside the label column, or a
    # non-number in the label column above a number ("label" above the label 3).
    header = None
    if any(not _is_number(c) for j, c in enumerate(first) if j != hint) or (
        hint is not None
        and not _is_number(first[hint])
        and second is not None
        and len(second) > hint
        and _is_number(second[hint])
    ):
        header = [c.strip() for c in first]

    def column(j):
        return f"column {header[j]!r} (index {j})" if header else f"column index {j}"

    columns = ", ".join(f"{j}: {h!r}" for j, h in enumerate(header)) if header else ""
    label = None
    if isinstance(label_column, str) and header is not None and label_column in header:
        label = header.index(label_column)  # a header named "4" wins over index 4
    elif index is not None:
        if not -width <= index < width:
            named = (
                f"; no column is named {label_column!r} either"
                if isinstance(label_column, str) and header
                else ""
            )
            raise DataError(
                f"label_column {label_column!r} is out of range for {path}, which has {width} "
                f"columns (0-based indices 0..{width - 1}, or -{width}..-1 from the end)"
                + (f": {columns}" if header else "")
                + named
            )
        label = index % width
    elif isinstance(label_column, str):
        if header is None:
            raise DataError(
                f"label_column={label_column!r} names a column, but {path} has no header row; "
                f"give its 0-based index instead (the file has {width} columns)"
            )
        raise DataError(
            f"label_column {label_column!r} not found in {path}; columns: {columns}. Give a "
            "column's name or its 0-based index."
        )
    elif label_column is not None:
        raise DataError(
            f"label_column must be a column's name (str) or its 0-based index (int), got "
            f"{label_column!r} of type {type(label_column).__name__}"
        )
    keep = [j for j in range(width) if j != label]
    if not keep:
        raise DataError(f"{path} has no feature columns (only the label column)")

    def data_rows():  # (line, fields) of the data rows, each checked for its number of fields
        for line, row in csv_rows():
            if header is not None and line == first_line:
                continue
            if len(row) != width:
                raise DataError(
                    f"{path}, line {line}: {len(row)} fields, expected {width} "
                    f"(as in line {first_line})"
                )
            yield line, row

    def bad_cell(line, j, cell):  # the error for a cell that is not a float32 number, or None
        if not _is_plain_number(cell):
            what = "empty cell" if not cell.strip() else f"{cell!r} is not a number"
            return DataError(
                f"{path}, line {line}, {column(j)}: {what}. Remove or encode non-numeric "
                "columns, or pass label_column= (--label-column on the command line) for a "
                "column of labels."
            )
        value = float(cell)
        if math.isfinite(value) and abs(value) > _FLOAT32_MAX:
            return DataError(
                f"{path}, line {line}, {column(j)}: {cell.strip()!r} is beyond float32's range "
                "(+-3.4e38), which aekit computes in; rescale that column first (for example "
                "divide it by a power of ten)"
            )
        if not math.isfinite(value):
            count = sum(  # every non-finite cell of the file, for the message (error path only)
                1
                for _, r in csv_rows()
                if len(r) == width
                for k in keep
                if _is_number(r[k]) and not math.isfinite(float(r[k]))
            )
            return DataError(
                f"{path}, line {line}, {column(j)}: {cell.strip()!r} is NaN or inf "
                f"({count} non-finite value(s) in all). Remove those rows or impute the "
                "values (for example with sklearn.impute.SimpleImputer) first."
            )
        return None

    X = np.empty((_count_lines(path) + 1, len(keep)), dtype=np.float32)  # rows <= lines + 1
    read = _read_csv_with_pandas(path, X, width, keep, label, header is not None)
    if read is None:  # the csv module, row by row: the first bad cell's message, or the rows
        n, values = 0, []
        for i, (line, row) in enumerate(data_rows()):
            cells = [row[j] for j in keep]
            try:  # the whole row at once; cell by cell only to name the bad one
                numbers = [float(c) for c in cells]
                text = "".join(cells)
                good = text.isascii() and "_" not in text
                good = good and all(-_FLOAT32_MAX <= v <= _FLOAT32_MAX for v in numbers)  # no NaN
            except ValueError:
                good = False
            if not good:
                for j in keep:
                    if (error := bad_cell(line, j, row[j])) is not None:
                        raise error from None
            if i == len(X):  # (cannot happen: a record ends at a line end, or at the end)
                X = np.concatenate([X, np.empty_like(X[:1])])
            X[i] = numbers
            if label is not None:
                values.append(row[label])
            n = i + 1
    else:
        n, values = read
        if label == width - 1 and any(v == "" for v in values):
            # pandas pads a short row with empty fields: "1,2" and "1,2," read alike when the
            # label is the last column, so count the fields of every row (once, with the csv
            # module) before calling such a row unlabelled.
            for _ in data_rows():
                pass
    if n < len(X):  # give back the rows that blank lines and the header did not fill
        try:
            X.resize((n, len(keep)), refcheck=True)  # in place: no copy of the rows read
        except ValueError:  # (something else holds a reference to it)
            X = X[:n].copy()
    if not n:
        raise DataError(f"{path} has no data rows (only a header)")
    y = names = None
    if label is not None:
        values = [v.strip() for v in values]
        missing = [_is_missing_label(v) for v in values]
        if all(missing):
            raise DataError(
                f"{path}, {column(label)}: every label is missing (all {len(values)} cells are "
                f"empty or {_MISSING_WORDS}), so there are no labels at all. Fill in the labels, "
                "or delete the column and leave out label_column (--label-column)."
            )
        try:  # numbers sort as numbers ("2" < "10"), other labels as strings; missing: NaN
            numbers = [math.nan if m else float(v) for v, m in zip(values, missing, strict=True)]
            y, names = _encode_labels(np.array(numbers), str(path))
        except ValueError:
            y, names = _encode_labels(np.array(values), str(path))
    return X, y, names


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _read_csv_with_pandas(path: Path, X: np.ndarray, width: int, keep: list[int], label, header):
    """Fill ``X``'s first rows with the feature columns ``keep`` of a CSV file, parsed by pandas'
    C reader chunk by chunk (its first non-blank row skipped if it is a ``header``); returns
    ``(rows read, raw label strings)``, or None when pandas cannot read the rows as finite
    float32 numbers, ``width`` fields each (the caller then reads the file with the csv module,
    which names the line, or reads what pandas refused)."""
    import warnings

    import pandas as pd

    labels, n = [], 0
    try:
        with warnings.catch_warnings():
            # A first row longer than the header is cut short with only a warning: refuse it.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            with (
                pd.read_csv(
                    path,
                    # pandas finds the header as the csv module does (the first non-blank
                    # row); skiprows counts blank lines unlike it (with CR line ends).
                    header=0 if header else None,
                    names=range(width),  # by position: the header's names may repeat
                    index_col=False,  # never a longer first row taken as an index
                    na_filter=False,  # "nan", "NA", "" are not numbers: refused, then named
                    dtype=None if label is None else {label: object},
                    chunksize=max(1, _CSV_CHUNK_CELLS // width),
                    encoding="utf-8-sig",
                    engine="c",
                ) as chunks,
                np.errstate(over="ignore", invalid="ignore"),  # beyond float32: inf, named later
            ):
                for chunk in chunks:
                    features = chunk if label is None else chunk.iloc[:, keep]
                    m = len(chunk)
                    if (
                        chunk.shape[1] != width
                        or any(getattr(t, "kind", "O") not in "iuf" for t in features.dtypes)
                        or n + m > len(X)
                    ):
                        return None
                    rows = X[n : n + m]
                    rows[...] = features.to_numpy()
                    if not np.isfinite(rows).all():
                        return None
                    if label is not None:
                        labels.extend(chunk[label].tolist())
                    n += m
    except (ValueError, KeyError, IndexError, pd.errors.ParserWarning):
        return None  # (ParserError, EmptyDataError and UnicodeDecodeError are ValueErrors)
    return n, labels


def _count_lines(path: Path) -> int:
    """The line ends (``\\n``, ``\\r\\n`` or a lone ``\\r``) in a file: a CSV file has at most
    one record more than that."""
    n, last = 0, b""
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            n += block.count(b"\n")
            if b"\r" in block:  # (one fast search; the two counts cost twice the first)
                n += block.count(b"\r") - block.count(b"\r\n")
            n -= last == b"\r" and block[:1] == b"\n"  # a \r\n split between two blocks
            last = block[-1:]
    return n


#: Label cells that mean "no label" (compared case-insensitively, after stripping spaces), besides
#: an empty cell: what NumPy, pandas, R and SQL exports write for a missing value.
_MISSING_LABELS = frozenset({"", "nan", "na", "n/a", "<na>", "null", "none"})
_MISSING_WORDS = "NaN, NA, N/A, <NA>, null or None"


def _is_missing_label(value: str) -> bool:
    return value.strip().lower() in _MISSING_LABELS


def _column_index(label_column) -> int | None:
    """``label_column`` as a 0-based column index: an int (not a bool), or a string of ASCII
    digits with an optional sign, as ``--label-column 4`` gives it; None otherwise."""
    if isinstance(label_column, numbers.Integral) and not isinstance(label_column, bool):
        return int(label_column)
    if isinstance(label_column, str) and re.fullmatch(r"\s*[-+]?[0-9]+\s*", label_column):
        return int(label_column)
    return None


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _is_plain_number(cell: str) -> bool:
    """A number as the C readers (pandas, numpy) take it: ``float()`` also reads ``1_000`` and
    non-ASCII digits, which they refuse; refused here too, so that a file reads the same
    whichever path reads it, and the error names the cell."""
    return _is_number(cell) and "_" not in cell and cell.isascii()


# ------------------------------------------------------------------------------- helpers: images
#: Pillow's resampling filter for ``image_size``: BILINEAR, which Pillow applies as a convolution
#: whose support widens with the reduction factor (antialiased, like torchvision's default
#: ``Resize``), without LANCZOS's ringing at edges; ``reducing_gap`` first shrinks a much larger
#: image by an integer box filter (and a JPEG in its decoder, by DCT scaling), which Pillow
#: documents as indistinguishable from a full resampling from 3.0 on, and much faster for photos.
_RESAMPLE = "BILINEAR"
_REDUCING_GAP = 3.0


def _image_files(folder: Path) -> tuple[list[Path], np.ndarray | None, list[str] | None]:
    """``(files, labels, class names)`` of a folder of images: the images directly in it (no
    labels), or one subfolder per class (hidden ones skipped), each sorted by name."""

    def images_in(d: Path) -> list[Path]:
        return sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in _IMAGE_SUFFIXES)

    try:
        top = images_in(folder)
        subdirs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
        classes = [(d.name, files) for d in subdirs if (files := images_in(d))]
    except OSError as e:
        raise DataError(f"cannot list the images in {folder}: {e}") from e
    if top and classes:
        raise DataError(
            f"{folder} holds both images ({top[0].name}, ...) and class subfolders "
            f"({classes[0][0]}, ...); put all images directly in the folder (no labels) or all "
            "in one subfolder per class"
        )
    if not top and not classes:
        raise DataError(
            f"no images ({', '.join(_IMAGE_SUFFIXES)}) found in {folder} or its subfolders"
        )
    if not classes:
        return top, None, None
    y = np.repeat(np.arange(len(classes), dtype=np.int64), [len(fs) for _, fs in classes])
    return [f for _, fs in classes for f in fs], y, [name for name, _ in classes]


def _image_size(image_size) -> tuple[int, int] | None:
    """``image_size`` as ``(height, width)``: an int is a square; a pair is (height, width)."""
    if image_size is None:
        return None
    pair = (image_size, image_size) if isinstance(image_size, numbers.Integral) else image_size
    try:
        h, w = pair
        ok = all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in (h, w))
    except (TypeError, ValueError):
        ok = False
    if not ok or isinstance(image_size, bool) or not (h >= 1 and w >= 1):
        raise DataError(
            f"image_size must be a positive int (a square) or a pair (height, width) of them, "
            f"got {image_size!r}"
        )
    if h * w > MAX_IMAGE_PIXELS:
        raise DataError(f"image_size {h}x{w} is over {MAX_IMAGE_PIXELS:,} pixels; give a smaller "
                        "one")  # fmt: skip
    return int(h), int(w)


def _scan_image_headers(files: list[Path], same_size: bool):
    """From the files' headers only (nothing decoded): each size, refused when too large, and
    ``(size (width, height) of the first image, whether every image is grayscale)``; with
    ``same_size``, images of different sizes are an error naming both and the fix."""
    size, gray = None, True
    for f in files:
        with _open_image(f) as im:
            mode, this_size = im.mode, im.size
        if this_size[0] * this_size[1] > MAX_IMAGE_PIXELS:
            raise _too_large(f, this_size)
        gray = gray and mode in ("1", "L", "LA")
        if size is None:
            size, first = this_size, f
        elif same_size and this_size != size:
            raise DataError(
                f"images have different sizes: {first} is {size[0]}x{size[1]} but {f} is "
                f"{this_size[0]}x{this_size[1]} (width x height); resize them to one size first, "
                "or let aekit resize each one as it reads it: --image-size 64 (in Python: "
                "image_size=64, or (height, width))"
            )
    return size, gray


def _decode_image(f: str | Path, mode: str, size: tuple[int, int], resize: bool) -> np.ndarray:
    """One image decoded as uint8 ``(channels, height, width)``: converted to ``mode`` ("L" or
    "RGB") and, with ``resize``, resized to ``size`` (height, width) (any aspect ratio: the image
    is stretched, not cropped); without, it must already be that size. Errors name the file."""
    from PIL import Image

    height, width = size
    with _open_image(f) as im:
        if im.size[0] * im.size[1] > MAX_IMAGE_PIXELS:  # the guard, per image, before decoding
            raise _too_large(f, im.size)
        if not resize and im.size != (width, height):
            raise DataError(
                f"image {f} is {im.size[0]}x{im.size[1]} (width x height), but the folder's "
                f"images are {width}x{height}; resize them to one size first, or let aekit "
                "resize each one as it reads it: --image-size 64 (in Python: image_size=64)"
            )
        try:
            box = None
            if resize and im.format == "JPEG":  # decode at 1/2, 1/4, 1/8 scale when that
                want = (round(width * _REDUCING_GAP), round(height * _REDUCING_GAP))  # is
                drafted = im.draft(None, want)  # still REDUCING_GAP times the size (thumbnail)
                box = None if drafted is None else drafted[1]
            out = im.convert(mode)
            if resize and out.size != (width, height):
                out = out.resize((width, height), getattr(Image.Resampling, _RESAMPLE), box=box,
                                 reducing_gap=_REDUCING_GAP)  # fmt: skip
            array = np.asarray(out)
        except (OSError, ValueError, SyntaxError) as e:
            raise DataError(f"cannot decode image {f}: {e}") from e
    return np.ascontiguousarray(array.reshape(height, width, -1).transpose(2, 0, 1))


def _read_image_folder(folder: Path, image_size=None, workers: int = 0):
    """``(X, y, names, image_shape)``: every image decoded (by :class:`ImageFolder`, in a
    DataLoader with ``workers`` processes) into a uint8 memory map of a scratch file, one
    flattened ``(channels, height, width)`` row per image: disk, not anonymous memory."""
    from ._image_folder import ImageFolder, decode_rows

    images = ImageFolder(folder, image_size=image_size)
    out = _scratch((len(images), math.prod(images.image_shape)), str(folder), dtype=np.uint8,
                   what=f"holds {len(images)} images; decoded, they")  # fmt: skip
    decode_rows(images, out, workers)
    return out, images.targets, images.classes, images.image_shape


@contextmanager
def _open_image(f: str | Path):
    """``PIL.Image.open(f)``, with a file Pillow cannot identify or refuses as a possible
    decompression bomb (its warning too, not only its error) turned into a :class:`DataError`."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(f)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise _too_large(f, _unchecked_size(f), str(e)) from None
    except (OSError, UnidentifiedImageError, ValueError) as e:
        raise DataError(f"cannot decode image {f}: {e}") from e
    with im:
        yield im


def _unchecked_size(f: str | Path) -> tuple[int, int] | None:
    """(width, height) from a PNG's or JPEG's header, which Pillow's ``Image.open`` does not
    return for an image beyond its decompression-bomb limit; None for other files."""
    from PIL import JpegImagePlugin, PngImagePlugin

    for kind in (PngImagePlugin.PngImageFile, JpegImagePlugin.JpegImageFile):
        try:  # the plugin classes read the header only, without the size check
            with kind(f) as im:
                return im.size
        except (SyntaxError, OSError, ValueError, IndexError, TypeError, struct.error):
            continue
    return None


def _too_large(f: str | Path, size: tuple[int, int] | None, pillow: str = "") -> DataError:
    """The error for an image over :data:`MAX_IMAGE_PIXELS` (or, ``pillow`` its message, over
    Pillow's decompression-bomb limit)."""
    side = math.isqrt(MAX_IMAGE_PIXELS)
    square = f" ({side}x{side})" if side * side == MAX_IMAGE_PIXELS else ""
    if size is None:  # not a PNG or JPEG inside: Pillow's message has the number of pixels
        what = f"too large ({pillow})"
    else:
        what = f"{size[0]}x{size[1]} pixels ({size[0] * size[1]:,}; width x height)"
        what += ", which Pillow refuses as a possible decompression bomb" if pillow else ""
    return DataError(
        f"image {f} is {what}; aekit reads images of at most {MAX_IMAGE_PIXELS:,} pixels{square}: "
        "each image is decoded whole, in memory, before it is resized. Resize the images to a "
        "smaller size first (for example with Pillow: im.resize((256, 256)))."
    )


# ---------------------------------------------------------------------------------- helpers: IDX
def _read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (gzipped or not): magic 0x00 0x00 <type> <ndim>, big-endian uint32 dims."""
    try:
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"cannot read {path}: {e}; delete the damaged file and get it again") from e
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES or data[3] < 1:
        raise DataError(
            f"{path} is not an IDX file: it starts with bytes {data[:4].hex(' ')!r}, expected "
            "00 00, a type code (08 for unsigned bytes) and the number of dimensions"
        )
    ndim, dtype = data[3], np.dtype(_IDX_TYPES[data[2]])
    header = 4 + 4 * ndim
    dims = struct.unpack(f">{ndim}I", data[4:header]) if len(data) >= header else None
    expected = header + math.prod(dims) * dtype.itemsize if dims else header
    if len(data) != expected:
        promise = f"shape {dims} of {dtype.name}" if dims else f"{ndim} dimensions"
        raise DataError(
            f"{path} is truncated or damaged: its header promises {promise}, {expected} bytes "
            f"(uncompressed), but it holds {len(data)} bytes; delete it and get it again"
        )
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)


def _find_idx(directory: Path, stem: str) -> Path | None:
    for candidate in (directory / stem, directory / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _search_dirs(name: str, data_dir) -> list[Path]:
    dirs = [] if data_dir is None else [Path(data_dir).expanduser()]
    if os.environ.get("AEKIT_DATA"):
        dirs.append(Path(os.environ["AEKIT_DATA"]).expanduser() / name)
    return [*dirs, Path.home() / ".cache" / "aekit" / name, SYSTEM_DATA_DIR / name]


def _read_idx_dataset(name: str, data_dir, download: bool, downloader) -> RawData:
    dirs = _search_dirs(name, data_dir)
    found = next((d for d in dirs if all(_find_idx(d, s) for s in _IDX_FILES)), None)
    if found is None:
        if not download:
            raise DataError(
                _not_found_message(name, dirs, " (download=False: nothing was downloaded)")
            )
        found = dirs[0]
        _download(name, found, dirs, downloader)
    train_x, train_y, test_x, test_y = (_read_idx(_find_idx(found, s)) for s in _IDX_FILES)
    for images, labels, stem in ((train_x, train_y, "train"), (test_x, test_y, "t10k")):
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DataError(
                f"{found}: {stem}-images has shape {images.shape} and {stem}-labels has shape "
                f"{labels.shape}; expected (n, height, width) images and n labels"
            )
    if train_x.shape[1:] != test_x.shape[1:]:
        raise DataError(f"{found}: train images are {train_x.shape[1:]}, t10k {test_x.shape[1:]}")
    names = _LABEL_NAMES[name]
    y = np.concatenate([train_y, test_y]).astype(np.int64)
    if len(y) and (y.min() < 0 or y.max() >= len(names)):
        raise DataError(f"{found}: labels range {y.min()}..{y.max()}, expected 0..{len(names) - 1}")
    X = np.concatenate([train_x, test_x]).reshape(len(y), -1).astype(np.float32)
    check_not_empty(X, str(found))
    check_finite(X, str(found))
    image_shape = (1, *(int(s) for s in train_x.shape[1:]))
    pixel_max = 255.0 if train_x.dtype == np.uint8 else None
    return RawData(X, y, image_shape, list(names), len(train_x), str(found.resolve()), pixel_max)


def _urllib_download(url: str, dest_path: str) -> None:
    import shutil
    import urllib.request

    with urllib.request.urlopen(url, timeout=60) as response, open(dest_path, "wb") as f:
        shutil.copyfileobj(response, f)


def _download(name: str, dest: Path, dirs: list[Path], downloader) -> None:
    """Fetch the missing files into ``dest``, checking each one's MD5; write each atomically."""
    import http.client

    mirrors, checksums = DOWNLOADS[name]
    for stem in _IDX_FILES:
        if _find_idx(dest, stem):
            continue
        file, failures = f"{stem}.gz", []
        for mirror in mirrors:
            url = mirror + file
            tmp = None
            try:
                dest.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=dest, prefix=f".{file}.", suffix=".part")
                os.close(fd)
                print(f"aekit: downloading {url} to {dest}", file=sys.stderr)
                downloader(url, tmp)
                with open(tmp, "rb") as f:
                    md5 = hashlib.md5(f.read(), usedforsecurity=False).hexdigest()
                if md5 != checksums[file]:
                    failures.append(
                        f"{url}: checksum mismatch: MD5 {md5}, expected {checksums[file]}"
                    )
                    continue
                os.replace(tmp, dest / file)
                tmp = None
                break
            except (OSError, http.client.HTTPException) as e:  # URLError is an OSError
                failures.append(f"{url}: {e}")
            finally:
                if tmp is not None and os.path.exists(tmp):
                    os.remove(tmp)
        else:
            why = ", and downloading it failed (" + "; ".join(failures) + ")"
            raise DataError(_not_found_message(name, dirs, why))


def _not_found_message(name: str, dirs: list[Path], why: str) -> str:
    def state(d: Path) -> str:
        if not d.is_dir():
            return "does not exist"
        missing = [s for s in _IDX_FILES if not _find_idx(d, s)]
        return "missing " + ", ".join(missing)

    searched = "; ".join(f"{d} ({state(d)})" for d in dirs)
    mirror = DOWNLOADS[name][0][0]
    apt = (
        " On Debian/Ubuntu, `sudo apt-get install dataset-fashion-mnist` installs them into "
        f"{SYSTEM_DATA_DIR / name}."
        if name == "fashion-mnist"
        else ""
    )
    return (
        f"{name} was not found{why}. Searched: {searched}. "
        f"Put the four files {', '.join(_IDX_FILES)} (each gzipped as .gz or not; from "
        f"{mirror}) in one of those directories, for example {dirs[-2]}, or in a directory "
        f"given by --data-dir (data_dir=), or in $AEKIT_DATA/{name} with $AEKIT_DATA set.{apt}"
    )
