"""Folders of images of any size: ImageFolder (one image decoded per item, in DataLoader workers
too), load_dataset's bounded path (batches into a scratch memory map) and the CLI's
--image-size."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from aekit import datasets
from aekit.cli import main
from aekit.datasets import ImageFolder, load_dataset, read_data
from aekit.errors import DataError


def save_image(path: Path, array: np.ndarray, **kw) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **kw)


def by_hand(path: Path, mode: str, size: tuple[int, int]) -> np.ndarray:
    """What the items should be: Pillow's own convert and antialiased BILINEAR resize to
    (height, width), as uint8 (channels, height, width)."""
    from PIL import Image

    with Image.open(path) as im:
        out = im.convert(mode).resize((size[1], size[0]), Image.Resampling.BILINEAR)
    a = np.asarray(out)
    return a.reshape(*a.shape[:2], -1).transpose(2, 0, 1)


@pytest.fixture
def mixed(tmp_path):
    """Two classes of random images of mixed sizes and modes: 'cat' RGB PNGs, 'dog' grayscale
    PNGs and one RGB JPEG; 7 images in all."""
    rng = np.random.default_rng(0)
    root = tmp_path / "mixed"
    for i, (h, w) in enumerate([(10, 14), (20, 9), (7, 7), (31, 40)]):
        save_image(root / "cat" / f"{i}.png", rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    for i, (h, w) in enumerate([(12, 12), (5, 30)]):
        save_image(root / "dog" / f"{i}.png", rng.integers(0, 256, (h, w), dtype=np.uint8))
    save_image(root / "dog" / "z.jpg", rng.integers(0, 256, (25, 17, 3), dtype=np.uint8))
    (root / ".hidden").mkdir()
    save_image(root / ".hidden" / "x.png", np.zeros((3, 3), np.uint8))
    return root


def test_items_are_resized_float_tensors_in_unit_interval(mixed):
    import torch

    images = ImageFolder(mixed, image_size=(8, 12))
    assert len(images) == 7 and images.image_shape == (3, 8, 12)
    assert images.classes == ["cat", "dog"]
    assert images.targets.dtype == np.int64 and images.targets.tolist() == [0] * 4 + [1] * 3
    for i, f in enumerate(images.files):
        item = images[i]
        assert isinstance(item, torch.Tensor) and item.dtype == torch.float32
        assert item.shape == (3, 8, 12) and item.min() >= 0 and item.max() <= 1
        expected = by_hand(f, "RGB", (8, 12)).astype(np.float32) / np.float32(255)
        np.testing.assert_array_equal(item.numpy(), expected)
    assert ImageFolder(mixed, image_size=5).image_shape == (3, 5, 5)  # an int: a square


def test_channels_rule_and_choice(mixed, tmp_path):
    gray = tmp_path / "gray"
    save_image(gray / "a.png", np.full((6, 4), 200, np.uint8))
    save_image(gray / "b.png", np.full((3, 9), 10, np.uint8))
    assert ImageFolder(gray, image_size=4).image_shape == (1, 4, 4)  # every header grayscale
    assert ImageFolder(gray, image_size=4, channels=3)[0].shape == (3, 4, 4)
    assert ImageFolder(mixed, image_size=4).image_shape == (3, 4, 4)  # one RGB: all RGB
    forced = ImageFolder(mixed, image_size=4, channels=1)
    np.testing.assert_array_equal(forced.decode(0), by_hand(forced.files[0], "L", (4, 4)))
    assert forced.targets is not None and ImageFolder(gray, image_size=4).targets is None
    with pytest.raises(DataError, match="channels must be 1"):
        ImageFolder(gray, channels=2)


def test_without_image_size_sizes_must_match_and_the_message_has_the_fix(mixed, tmp_path):
    with pytest.raises(DataError, match=r"different sizes: .*--image-size 64"):
        ImageFolder(mixed)
    same = tmp_path / "same"
    for i in range(3):
        save_image(same / f"{i}.png", np.full((5, 4), i, np.uint8))
    images = ImageFolder(same)
    assert images.image_shape == (1, 5, 4) and images[2].mul(255).round().max() == 2
    with pytest.raises(DataError, match="image_size must be a positive int"):
        ImageFolder(same, image_size=0)


def test_a_bad_image_is_named_when_its_item_is_read(tmp_path, monkeypatch):
    """With image_size and channels given, no header is read up front: the file is named when
    its item is decoded, and the size guard applies per image, at open time."""
    root = tmp_path / "bad"
    save_image(root / "a.png", np.zeros((4, 6), np.uint8))
    (root / "broken.png").write_bytes(b"\x89PNG not really")
    images = ImageFolder(root, image_size=4, channels=1)
    assert images[0].shape == (1, 4, 4)
    with pytest.raises(DataError, match=r"cannot decode image .*broken\.png"):
        images[1]
    monkeypatch.setattr(datasets, "MAX_IMAGE_PIXELS", 20)
    with pytest.raises(DataError, match=r"a\.png is 6x4 pixels .* at most 20 pixels"):
        images[0]


def test_pickles_and_works_in_dataloader_workers(mixed):
    import torch
    from torch.utils.data import DataLoader

    images = ImageFolder(mixed, image_size=6)
    copy = pickle.loads(pickle.dumps(images))
    assert copy.files == images.files and torch.equal(copy[3], images[3])
    batches = list(DataLoader(images, batch_size=3, num_workers=2))
    assert [len(b) for b in batches] == [3, 3, 1]
    torch.testing.assert_close(torch.cat(batches), torch.stack([images[i] for i in range(7)]))


def test_large_jpegs_are_drafted_and_resized_close_to_a_full_resize(tmp_path):
    """A 640x480 JPEG shrunk to 32x32 is decoded at 1/4 scale (DCT scaling, still > 3x the
    target) then resized: on average within 1 level of 255 of a full-size BILINEAR resize
    (measured: mean 0.17, max 1; 0.37 and 2 for pure noise)."""
    y, x = np.mgrid[0:480, 0:640]
    smooth = (127 + 100 * np.sin(x / 37.0) * np.cos(y / 23.0)).astype(np.uint8)
    save_image(tmp_path / "big" / "a.jpg", np.stack([smooth, 255 - smooth, smooth // 2], -1),
               quality=95)  # fmt: skip
    images = ImageFolder(tmp_path / "big", image_size=32)
    full = by_hand(images.files[0], "RGB", (32, 32)).astype(float)
    assert np.abs(images.decode(0) - full).mean() < 1


def test_load_dataset_decodes_into_memory_maps_as_pillow_does(mixed):
    data = load_dataset(mixed, image_size=(8, 12), test_fraction=0, workers=2)
    assert data.image_shape == (3, 8, 12) and data.scaler.kind == "divide"
    assert isinstance(data.X_train, np.memmap) and data.X_train.dtype == np.float32
    assert data.label_names == ["cat", "dog"] and data.y_train.tolist() == [0] * 4 + [1] * 3
    files = ImageFolder(mixed, image_size=1).files
    expected = np.stack([by_hand(f, "RGB", (8, 12)).reshape(-1) for f in files])
    np.testing.assert_array_equal(data.X_train, expected.astype(np.float32) / np.float32(255))
    raw = read_data(mixed, image_size=(8, 12))  # workers=0: in this process, the same rows
    assert raw.X.dtype == np.uint8 and isinstance(raw.X, np.memmap) and raw.pixel_max == 255
    np.testing.assert_array_equal(raw.X, expected)
    split = load_dataset(mixed, image_size=(8, 12), workers=2)
    assert len(split.X_train) + len(split.X_test) == 7
    with pytest.raises(DataError, match=r"image_size \(--image-size\) applies to folders"):
        read_data("digits", image_size=8)


def test_a_decoding_error_in_a_worker_names_the_file(tmp_path, monkeypatch):
    root, rng = tmp_path / "bad", np.random.default_rng(0)
    for i in range(6):
        save_image(root / f"{i}.png", rng.integers(0, 256, (16, 16), dtype=np.uint8))
    monkeypatch.setattr("aekit._image_folder._BATCH_BYTES", 2 * 16)  # two images per batch
    ImageFolder(root)  # (headers fine)
    (root / "3.png").write_bytes((root / "3.png").read_bytes()[:100])  # truncated pixel data
    with pytest.raises(DataError, match=r"cannot decode image .*3\.png") as e:
        load_dataset(root, image_size=4, workers=2)
    assert "worker" not in str(e.value)  # our message, not the DataLoader's traceback around it


# --- the command line -------------------------------------------------------------------------


def test_cli_trains_on_mixed_sizes_with_image_size_and_encodes(mixed, tmp_path, capsys):
    run = tmp_path / "run"
    code = main(["train", "ae", "--data", str(mixed), "--image-size", "16", "--epochs", "1",
                 "--hidden", "8", "--latent", "2", "--no-plots", "-q", "--seed", "0",
                 "--workers", "2", "--out", str(run)])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    data = json.loads((run / "data.json").read_text())
    assert data["spec"]["image_size"] == [16, 16] and data["image_shape"] == [3, 16, 16]
    assert main(["encode", str(run), "--out", str(tmp_path / "codes.npy")]) == 0
    assert np.load(tmp_path / "codes.npy").shape == (7, 2)
    # New images of other sizes are resized as the run's were.
    save_image(tmp_path / "new" / "a.png", np.zeros((50, 3, 3), np.uint8))
    assert main(["encode", str(run), "--data", str(tmp_path / "new"), "--workers", "0",
                 "--out", str(tmp_path / "new.npy")]) == 0  # fmt: skip
    assert np.load(tmp_path / "new.npy").shape == (1, 2)
    capsys.readouterr()


@pytest.mark.parametrize("size", ["0", "abc", "4x", "2x3x4"])
def test_cli_refuses_a_bad_image_size(size, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "ae", "--data", "digits", "--image-size", size, "--out", str(tmp_path)])
    assert e.value.code == 2 and "--image-size" in capsys.readouterr().err


def test_cli_image_size_on_a_table_exits_2(tmp_path, capsys):
    code = main(["train", "ae", "--data", "digits", "--image-size", "8", "--epochs", "1",
                 "--out", str(tmp_path / "r")])  # fmt: skip
    assert code == 2 and "applies to folders of images only" in capsys.readouterr().err
