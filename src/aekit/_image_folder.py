"""A folder of images as a torch ``Dataset``, decoded lazily, one image per item.

Public as :class:`aekit.datasets.ImageFolder` (this module imports torch, so ``aekit.datasets``
loads it on first use). :func:`decode_rows` is how :func:`aekit.datasets.load_dataset` reads a
folder: batches of images decoded in DataLoader workers, written into a memory map.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset

from .datasets import _decode_image, _image_files, _image_size, _scan_image_headers
from .errors import DataError

__all__ = ["ImageFolder", "decode_rows"]


class ImageFolder(TorchDataset):
    """A folder of PNG or JPEG images, decoded one at a time with Pillow as items are read.

    The files are listed once, here: the images directly in ``root`` (no labels), or one
    subfolder per class (hidden folders skipped; classes in name order, files in name order
    within each), as :func:`aekit.datasets.read_data` reads a folder. Only paths are stored, so
    the dataset pickles cheaply into DataLoader worker processes.

    Parameters
    ----------
    root : path-like
    image_size : int or (height, width), optional
        Resize every image to this size (an int: a square; the image is stretched to it, not
        cropped) with Pillow's antialiased BILINEAR filter (as torchvision's ``Resize``; no
        ringing, unlike LANCZOS), after a reduction by an integer factor that keeps at least 3x
        the target size (``reducing_gap=3``; for JPEG in the decoder itself), which makes large
        photos fast to shrink. Without it, every image must have the same size (checked from
        the headers here).
    channels : {1, 3}, optional
        Convert each image to grayscale ("L", 1) or "RGB" (3). Default: 1 when every image is
        grayscale by the mode in its header, else 3.

    Attributes
    ----------
    files : list of str
        The images' paths, in item order.
    targets : ndarray of shape (n_images,), int64, or None
        Each image's class (an index into ``classes``); None for a folder without subfolders.
    classes : list of str or None
        The class subfolders' names.
    image_shape : tuple (channels, height, width)
        Of every item.

    Items
    -----
    ``dataset[i]`` is a float32 tensor of shape ``image_shape``, values in [0, 1] (the 8-bit
    value / 255, the same numbers :func:`~aekit.datasets.load_dataset` gives by default). An
    image that cannot be decoded, is over :data:`~aekit.datasets.MAX_IMAGE_PIXELS` (checked at
    open time, before decoding) or, without ``image_size``, has another size, raises
    :class:`~aekit.errors.DataError` naming the file.

    Examples
    --------
    >>> images = ImageFolder("photos/", image_size=64)            # doctest: +SKIP
    >>> loader = DataLoader(images, batch_size=256, num_workers=4)  # doctest: +SKIP
    """

    def __init__(self, root, image_size=None, channels: int | None = None):
        if channels not in (None, 1, 3) or isinstance(channels, bool):
            raise DataError(f"channels must be 1 (grayscale), 3 (RGB) or None, got {channels!r}")
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise DataError(f"{self.root} is not a folder of images")
        size = _image_size(image_size)
        self._resize = size is not None
        files, self.targets, self.classes = _image_files(self.root)
        if size is None or channels is None:  # headers only: sizes, modes (nothing decoded)
            (width, height), gray = _scan_image_headers(files, same_size=size is None)
            size = size or (height, width)
            channels = channels or (1 if gray else 3)
        self.files = [str(f) for f in files]  # (a Path costs about 0.8 KB: 80 MB per 100,000)
        self.image_shape = (channels, *size)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> torch.Tensor:
        return torch.from_numpy(self.decode(index).astype(np.float32)).div_(255)

    def decode(self, index: int) -> np.ndarray:
        """Item ``index`` as Pillow decodes it: uint8, of shape ``image_shape``."""
        channels, height, width = self.image_shape
        return _decode_image(self.files[index], "L" if channels == 1 else "RGB",
                             (height, width), self._resize)  # fmt: skip

    def __repr__(self) -> str:
        labels = f", {len(self.classes)} classes" if self.classes else ""
        return f"ImageFolder({str(self.root)!r}, {len(self)} images of {self.image_shape}{labels})"


class _Batches(TorchDataset):
    """Consecutive batches of an :class:`ImageFolder`'s images, each one item: a uint8 array
    of shape (batch, channels x height x width), or the :class:`DataError` of its first image
    that failed (returned, not raised, so the caller reports it as it is, without the
    DataLoader's worker traceback around it)."""

    def __init__(self, images: ImageFolder, batch: int):
        self.images, self.batch = images, batch

    def __len__(self) -> int:
        return math.ceil(len(self.images) / self.batch)

    def __getitem__(self, b: int):
        indices = range(b * self.batch, min(len(self.images), (b + 1) * self.batch))
        out = np.empty((len(indices), math.prod(self.images.image_shape)), dtype=np.uint8)
        try:
            for row, i in enumerate(indices):
                out[row] = self.images.decode(i).reshape(-1)
        except DataError as e:
            return e
        return out


def _as_is(item):
    return item


#: Bytes of decoded pixels per batch (at most 256 images): with 2 batches in flight per worker,
#: memory stays a few MB however many images there are.
_BATCH_BYTES = 2**22


def decode_rows(images: ImageFolder, out: np.ndarray, workers: int = 0) -> None:
    """Decode every image of ``images`` into the rows of ``out`` (uint8, shape (n_images,
    channels x height x width)), a batch at a time, in ``workers`` DataLoader processes (0: in
    this one)."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise DataError(f"workers must be an int >= 0 (0: decode in this process), got {workers!r}")
    batch = max(1, min(256, _BATCH_BYTES // max(1, out.shape[1])))
    batches = _Batches(images, batch)
    workers = min(workers, len(batches) - 1)  # one batch: no process to start
    if workers > 0:
        items = DataLoader(
            batches,
            batch_size=None,
            num_workers=workers,
            collate_fn=_as_is,
            generator=torch.Generator().manual_seed(0),
        )  # not the global one
    else:
        items = (batches[b] for b in range(len(batches)))
    for b, rows in enumerate(items):
        if isinstance(rows, DataError):
            raise rows
        out[b * batch : b * batch + len(rows)] = rows
