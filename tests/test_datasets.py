"""Tests of aekit.datasets: every source, the splits, the scaling, and the error messages.

No test touches the network: downloads go through a stub downloader, and the home directory,
``$AEKIT_DATA`` and the system-wide data directory point into ``tmp_path`` for every test.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import struct
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest

from aekit import datasets
from aekit.datasets import KNOWN_DATASETS, Dataset, RawData, Scaler, load_dataset, read_data
from aekit.errors import DataError

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Keep the real ~/.cache, $AEKIT_DATA and /usr/share/datasets out of every test."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("AEKIT_DATA", raising=False)
    monkeypatch.setattr(datasets, "SYSTEM_DATA_DIR", tmp_path / "system")
    return tmp_path


# ------------------------------------------------------------------------------------------ IDX
def idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(">u1").tobytes()


def write_fake_mnist(directory: Path, gz: bool, seed: int = 0, n_train: int = 7, n_test: int = 3):
    """Write the four IDX files with 5x4 images (not 28x28); return (images, labels) by split."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 5, 4), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            data = idx_bytes(array)
            name = f"{split}-{kind}-ubyte"
            if gz:
                (directory / f"{name}.gz").write_bytes(gzip.compress(data))
            else:
                (directory / name).write_bytes(data)
        out[split] = (images, labels)
    return out


@pytest.mark.parametrize("gz", [False, True])
def test_idx_via_data_dir_gives_values_labels_and_standard_split(tmp_path, gz):
    truth = write_fake_mnist(tmp_path / "m", gz=gz)
    raw = read_data("mnist", data_dir=tmp_path / "m", download=False)
    images = np.concatenate([truth["train"][0], truth["t10k"][0]])
    labels = np.concatenate([truth["train"][1], truth["t10k"][1]])
    assert raw.X.dtype == np.float32 and raw.y.dtype == np.int64
    np.testing.assert_array_equal(raw.X, images.reshape(10, 20))
    np.testing.assert_array_equal(raw.y, labels)
    assert raw.image_shape == (1, 5, 4) and raw.n_standard_train == 7 and raw.pixel_max == 255
    assert raw.label_names == [str(i) for i in range(10)]

    # test_fraction is ignored: the standard split is kept, in the files' order.
    data = load_dataset("MNIST", data_dir=tmp_path / "m", test_fraction=0.5, download=False)
    assert data.name == "mnist" and data.scaler.kind == "divide" and data.scaler.divisor == 255
    np.testing.assert_allclose(data.X_train, truth["train"][0].reshape(7, 20) / 255, rtol=1e-6)
    np.testing.assert_allclose(data.X_test, truth["t10k"][0].reshape(3, 20) / 255, rtol=1e-6)
    np.testing.assert_array_equal(data.y_train, truth["train"][1])
    np.testing.assert_array_equal(data.y_test, truth["t10k"][1])


def test_fashion_mnist_label_names(tmp_path):
    write_fake_mnist(tmp_path / "f", gz=True)
    raw = read_data("fashion-mnist", data_dir=tmp_path / "f")
    assert raw.label_names[0] == "T-shirt/top" and raw.label_names[9] == "Ankle boot"
    assert len(raw.label_names) == 10


def test_search_order_data_dir_env_cache_system(tmp_path, monkeypatch):
    home_cache = tmp_path / "home" / ".cache" / "aekit" / "mnist"
    locations = {
        "system": tmp_path / "system" / "mnist",
        "cache": home_cache,
        "env": tmp_path / "env" / "mnist",
        "arg": tmp_path / "arg",
    }
    first_pixel = {}
    for seed, (where, directory) in enumerate(locations.items()):
        truth = write_fake_mnist(directory, gz=bool(seed % 2), seed=seed)
        first_pixel[where] = float(truth["train"][0][0, 0, 0])
    assert len(set(first_pixel.values())) == 4  # the seeds give four distinguishable datasets

    def loaded_from():
        raw = read_data("mnist", data_dir=data_dir, download=False)
        return raw.source, float(raw.X[0, 0])

    monkeypatch.setenv("AEKIT_DATA", str(tmp_path / "env"))
    data_dir = locations["arg"]
    assert loaded_from() == (str(locations["arg"].resolve()), first_pixel["arg"])
    data_dir = None
    assert loaded_from() == (str(locations["env"].resolve()), first_pixel["env"])
    monkeypatch.delenv("AEKIT_DATA")
    assert loaded_from() == (str(locations["cache"].resolve()), first_pixel["cache"])
    for f in home_cache.iterdir():
        f.unlink()
    assert loaded_from() == (str(locations["system"].resolve()), first_pixel["system"])


def test_aekit_data_files_directly_in_it_are_not_used(tmp_path, monkeypatch):
    write_fake_mnist(tmp_path / "env", gz=False)  # not in the mnist/ subfolder
    monkeypatch.setenv("AEKIT_DATA", str(tmp_path / "env"))
    with pytest.raises(DataError, match="mnist was not found"):
        read_data("mnist", download=False)


def test_truncated_idx_names_the_file_and_sizes(tmp_path):
    write_fake_mnist(tmp_path / "m", gz=False)
    f = tmp_path / "m" / "train-images-idx3-ubyte"
    f.write_bytes(f.read_bytes()[:-5])
    with pytest.raises(DataError) as info:
        read_data("mnist", data_dir=tmp_path / "m")
    message = str(info.value)
    expected = 4 + 3 * 4 + 7 * 5 * 4
    assert str(f) in message and "truncated" in message
    assert f"{expected} bytes" in message and f"{expected - 5} bytes" in message


def test_truncated_gzip_names_the_file(tmp_path):
    write_fake_mnist(tmp_path / "m", gz=True)
    f = tmp_path / "m" / "t10k-images-idx3-ubyte.gz"
    f.write_bytes(f.read_bytes()[:-10])
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte\.gz"):
        read_data("mnist", data_dir=tmp_path / "m")


def test_bad_magic_number(tmp_path):
    write_fake_mnist(tmp_path / "m", gz=False)
    f = tmp_path / "m" / "train-labels-idx1-ubyte"
    f.write_bytes(b"\x01\x02" + f.read_bytes()[2:])
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte is not an IDX file.*01 02 08 01"):
        read_data("mnist", data_dir=tmp_path / "m")


def test_idx_other_types_and_short_header(tmp_path):
    values = np.array([[-70000, 1], [2, 3], [4, 5]], dtype=">i4")
    header = bytes([0, 0, 0x0C, 2]) + struct.pack(">2I", 3, 2)
    (tmp_path / "i4").write_bytes(header + values.tobytes())
    np.testing.assert_array_equal(datasets._read_idx(tmp_path / "i4"), values)
    (tmp_path / "short").write_bytes(bytes([0, 0, 8, 3, 0, 0]))
    with pytest.raises(DataError, match=r"short is truncated.*3 dimensions, 16 bytes .* 6 bytes"):
        datasets._read_idx(tmp_path / "short")
    (tmp_path / "type").write_bytes(bytes([0, 0, 0x07, 1, 0, 0, 0, 0]))
    with pytest.raises(DataError, match="not an IDX file"):
        datasets._read_idx(tmp_path / "type")


def test_images_and_labels_of_different_lengths(tmp_path):
    write_fake_mnist(tmp_path / "m", gz=False)
    (tmp_path / "m" / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(2, np.uint8)))
    with pytest.raises(DataError, match=r"t10k-images has shape \(3, 5, 4\).*\(2,\)"):
        read_data("mnist", data_dir=tmp_path / "m")


# ------------------------------------------------------------------------------------- download
def stub_downloads(monkeypatch, name="mnist", fail_first_mirror=False):
    """A downloader that serves fake IDX files; their MD5s replace the real ones in the table."""
    rng = np.random.default_rng(5)
    served = {}
    for split, n in (("train", 6), ("t10k", 2)):
        served[f"{split}-images-idx3-ubyte.gz"] = gzip.compress(
            idx_bytes(rng.integers(0, 256, (n, 3, 3), dtype=np.uint8))
        )
        served[f"{split}-labels-idx1-ubyte.gz"] = gzip.compress(
            idx_bytes(rng.integers(0, 10, n, dtype=np.uint8))
        )
    mirrors = ("https://first.invalid/", "https://second.invalid/")
    checksums = {f: hashlib.md5(data).hexdigest() for f, data in served.items()}
    monkeypatch.setitem(datasets.DOWNLOADS, name, (mirrors, checksums))
    calls = []

    def downloader(url, dest_path):
        calls.append(url)
        if fail_first_mirror and url.startswith(mirrors[0]):
            raise URLError("no route to host")
        Path(dest_path).write_bytes(served[url.rsplit("/", 1)[1]])

    return downloader, calls, served


def test_download_into_cache_with_checksums(tmp_path, monkeypatch):
    downloader, calls, served = stub_downloads(monkeypatch)
    raw = read_data("mnist", downloader=downloader)
    cache = tmp_path / "home" / ".cache" / "aekit" / "mnist"
    assert sorted(p.name for p in cache.iterdir()) == sorted(served)  # no temp files left
    assert len(calls) == 4 and raw.X.shape == (8, 9) and raw.n_standard_train == 6
    assert raw.source == str(cache.resolve())
    # A second call finds the cached files and downloads nothing.
    read_data("mnist", downloader=downloader)
    assert len(calls) == 4


def test_download_respects_aekit_data_and_fetches_only_missing_files(tmp_path, monkeypatch):
    downloader, calls, served = stub_downloads(monkeypatch, fail_first_mirror=True)
    monkeypatch.setenv("AEKIT_DATA", str(tmp_path / "env"))
    target = tmp_path / "env" / "mnist"
    target.mkdir(parents=True)
    (target / "train-labels-idx1-ubyte.gz").write_bytes(served["train-labels-idx1-ubyte.gz"])
    read_data("mnist", downloader=downloader)
    assert sorted(p.name for p in target.iterdir()) == sorted(served)
    # Three missing files, each tried on the failing first mirror and then the second.
    assert len(calls) == 6 and not any("train-labels" in url for url in calls)
    assert not (tmp_path / "home" / ".cache").exists()


def test_download_failure_lists_searched_directories(tmp_path, monkeypatch):
    monkeypatch.setenv("AEKIT_DATA", str(tmp_path / "env"))

    def offline(url, dest_path):
        raise URLError("[Errno -3] Temporary failure in name resolution")

    with pytest.raises(DataError) as info:
        read_data("fashion-mnist", data_dir=tmp_path / "mine", downloader=offline)
    message = str(info.value)
    for directory in (
        tmp_path / "mine",
        tmp_path / "env" / "fashion-mnist",
        tmp_path / "home" / ".cache" / "aekit" / "fashion-mnist",
        tmp_path / "system" / "fashion-mnist",
    ):
        assert str(directory) in message
    needles = [
        "Temporary failure in name resolution",
        "apt-get install dataset-fashion-mnist",
        "--data-dir",
        "$AEKIT_DATA",
        "train-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ]
    assert [n for n in needles if n not in message] == []
    assert not any((tmp_path / "mine").iterdir())  # no partial downloads left


def test_download_false_fails_at_once(monkeypatch):
    downloader, calls, _ = stub_downloads(monkeypatch)
    with pytest.raises(DataError, match=r"download=False[\s\S]*\.cache/aekit/mnist"):
        read_data("mnist", download=False, downloader=downloader)
    assert calls == []


def test_checksum_mismatch_leaves_no_file(tmp_path, monkeypatch):
    def wrong_bytes(url, dest_path):
        Path(dest_path).write_bytes(b"not the file")

    stub_downloads(monkeypatch)
    with pytest.raises(DataError, match=r"checksum mismatch: MD5 [0-9a-f]{32}, expected"):
        read_data("mnist", downloader=wrong_bytes)
    cache = tmp_path / "home" / ".cache" / "aekit" / "mnist"
    assert list(cache.iterdir()) == []


# --------------------------------------------------------------------------------------- digits
def test_digits_split_and_scaling():
    data = load_dataset("digits")
    assert isinstance(data, Dataset) and data.name == "digits"
    assert data.X_train.shape == (1437, 64) and data.X_test.shape == (360, 64)
    assert data.X_train.dtype == np.float32 and data.y_train.dtype == np.int64
    assert data.X_train.min() == 0 and data.X_train.max() == 1 and data.X_test.max() <= 1
    assert data.image_shape == (1, 8, 8) and data.label_names == [str(i) for i in range(10)]
    assert data.scaler.kind == "divide" and data.scaler.divisor == 16
    # Stratified: each class is split 80/20 up to rounding.
    total = np.bincount(np.concatenate([data.y_train, data.y_test]))
    assert np.abs(np.bincount(data.y_test) - 0.2 * total).max() <= 1


def test_digits_split_is_seeded():
    a, b = load_dataset("digits"), load_dataset("digits")
    c = load_dataset("digits", random_state=1)
    np.testing.assert_array_equal(a.X_test, b.X_test)
    np.testing.assert_array_equal(a.y_train, b.y_train)
    assert not np.array_equal(a.X_test, c.X_test)


def test_test_fraction_zero_keeps_source_order():
    raw = read_data("digits")
    data = load_dataset("digits", test_fraction=0)
    assert isinstance(raw, RawData) and raw.pixel_max == 16 and raw.n_standard_train is None
    np.testing.assert_array_equal(data.X_train, raw.X / np.float32(16))
    np.testing.assert_array_equal(data.y_train, raw.y)
    assert data.X_test.shape == (0, 64) and data.y_test.shape == (0,)


@pytest.mark.parametrize("fraction", [1.0, -0.1, 1.5])
def test_test_fraction_out_of_range(fraction):
    with pytest.raises(DataError, match=r"test_fraction must be in \[0, 1\)"):
        load_dataset("digits", test_fraction=fraction)


def test_scale_choices():
    with pytest.raises(DataError, match="unknown scale 'zscore'; choose one of auto, none, divide"):
        load_dataset("digits", scale="zscore")
    minmax = load_dataset("digits", scale="minmax")
    assert minmax.X_train.min() == 0 and minmax.X_train.max() == 1
    standard = load_dataset("digits", scale="standard")
    assert standard.scaler.kind == "standard"
    none = load_dataset("digits", scale="none")
    assert none.X_train.max() == 16


def test_known_names():
    assert KNOWN_DATASETS == ("digits", "fashion-mnist", "mnist")


# ------------------------------------------------------------------------------------ npy / npz
def test_npy_tabular_is_standardised_on_training_rows(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(5, 3, size=(50, 4))
    X[:, 3] = 7.0  # a constant column maps to 0, not NaN
    np.save(tmp_path / "t.npy", X)
    raw = read_data(tmp_path / "t.npy")
    assert raw.image_shape is None and raw.pixel_max is None and raw.y is None
    data = load_dataset(str(tmp_path / "t.npy"), test_fraction=0.2)
    assert data.name == "t" and data.scaler.kind == "standard" and data.X_train.shape == (40, 4)
    np.testing.assert_allclose(data.X_train[:, :3].mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(data.X_train[:, :3].std(axis=0), 1, atol=1e-5)
    assert (data.X_train[:, 3] == 0).all() and data.scaler.scale[3] == 1
    assert np.abs(data.X_test[:, :3].mean(axis=0)).max() > 1e-3  # fitted on training rows only


@pytest.mark.parametrize("shape", [(6, 5, 4), (6, 3, 5, 4)])
def test_npy_uint8_images(tmp_path, shape):
    X = np.random.default_rng(0).integers(0, 256, size=shape, dtype=np.uint8)
    np.save(tmp_path / "img.npy", X)
    raw = read_data(tmp_path / "img.npy")
    assert raw.image_shape == ((1, *shape[1:]) if len(shape) == 3 else shape[1:])
    assert raw.pixel_max == 255
    np.testing.assert_array_equal(raw.X, X.reshape(6, -1))  # row-major (C, H, W)
    data = load_dataset(tmp_path / "img.npy", test_fraction=0)
    np.testing.assert_allclose(data.X_train, X.reshape(6, -1) / 255, rtol=1e-6)


@pytest.mark.parametrize("suffix", [".npy", ".npz"])
def test_channels_last_images_are_refused_as_the_estimators_refuse_them(tmp_path, suffix):
    """(50, 8, 8, 3) was read as 8 channels of 8x3 images, while Autoencoder().fit refuses it:
    both use one rule (_validation.image_shape_of) and say how to reorder the axes."""
    from aekit._validation import image_shape_of

    X = np.random.default_rng(0).integers(0, 256, size=(50, 8, 8, 3), dtype=np.uint8)
    path = tmp_path / f"hwc{suffix}"
    if suffix == ".npy":
        np.save(path, X)
    else:
        np.savez(path, X=X)
    with pytest.raises(DataError, match=r"hwc\.np[yz] has shape \(50, 8, 8, 3\), which looks like "
                       r"channels-last .*np\.moveaxis\(X, -1, 1\).*save it again"):  # fmt: skip
        read_data(path)
    np.save(tmp_path / "chw.npy", np.moveaxis(X, -1, 1))  # the fix
    assert read_data(tmp_path / "chw.npy").image_shape == (3, 8, 8)
    with pytest.raises(DataError, match=r"channels-last.*X\.transpose\(0, 3, 1, 2\)"):
        image_shape_of(X.shape)  # what the estimators' _validate_X says, word for word
    assert image_shape_of((5, 1, 28, 28)) == (1, 28, 28)
    assert image_shape_of((5, 3, 8, 3)) == (3, 8, 3)  # ambiguous: channels first, as documented
    assert image_shape_of((5, 28, 28)) == (1, 28, 28) and image_shape_of((5, 4)) is None


def test_npy_float_images_in_unit_interval_are_not_rescaled(tmp_path):
    X = np.random.default_rng(0).random((6, 5, 4))
    np.save(tmp_path / "f.npy", X)
    data = load_dataset(tmp_path / "f.npy", test_fraction=0)
    assert data.image_shape == (1, 5, 4) and data.scaler.kind == "none"
    np.testing.assert_allclose(data.X_train, X.reshape(6, -1), rtol=1e-6)
    with pytest.raises(DataError, match=r"scale='divide'.*use 'minmax' or 'standard'"):
        load_dataset(tmp_path / "f.npy", scale="divide")


@pytest.mark.parametrize(
    ("array", "match"),
    [
        (np.zeros(5), r"shape \(5,\); expected 2-D"),
        (np.zeros((2, 2, 2, 2, 2)), "expected 2-D"),
        (np.zeros((0, 3)), "empty"),
        (np.array([["a", "b"]]), "expected numbers"),
        (np.array([[1.0, 2.0], [3.0, np.inf]]), r"inf.*row 1, column 1"),
    ],
)
def test_npy_errors(tmp_path, array, match):
    np.save(tmp_path / "bad.npy", array)
    with pytest.raises(DataError, match=match) as info:
        read_data(tmp_path / "bad.npy")
    assert "bad.npy" in str(info.value)


def test_npy_object_array_is_refused_without_pickle(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([[1, None]], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match=r"obj\.npy.*pickle"):
        read_data(tmp_path / "obj.npy")


def _pickled(path: Path) -> None:
    import pickle

    path.write_bytes(pickle.dumps([[1.0, 2.0]]))


def _truncated_npz(path: Path) -> None:
    np.savez(path, X=np.zeros((3, 3)))
    path.write_bytes(path.read_bytes()[:100])


@pytest.mark.parametrize(
    ("name", "make", "why"),
    [
        ("r.npy", lambda p: p.write_bytes(bytes(range(7, 207))), r"not start with .*\\x93NUMPY"),
        ("e.npy", lambda p: p.write_bytes(b""), r"it is empty \(0 bytes\)"),
        ("p.npy", _pickled, "it is a Python pickle"),
        ("o.npy", lambda p: np.save(p, np.array([[1, None]], dtype=object)), "Python objects"),
        ("r.npz", lambda p: p.write_bytes(bytes(range(7, 207))), "does not start with a zip"),
        ("t.npz", _truncated_npz, "damaged or truncated"),
        ("oy.npz", lambda p: np.savez(p, X=np.zeros((2, 2)), y=np.array([1, None], dtype=object)),
         r"its array 'y' holds Python objects"),
    ],
)  # fmt: skip
def test_npy_npz_that_are_not_plain_numeric_arrays(tmp_path, name, make, why):
    """Garbage, pickles and object arrays are refused as not plain numeric NumPy files, with the
    fix (save a numeric array without pickle); never numpy's advice to pass allow_pickle."""
    path = tmp_path / name
    make(path)
    start = rf"{name} is not a plain numeric NumPy \.np[yz] file: "
    with pytest.raises(
        DataError, match=rf"{start}.*{why}.*Save the data again as a plain array"
    ) as info:
        read_data(path)
    message = str(info.value)
    assert "allow_pickle=True" not in message and "allow_pickle=`" not in message
    assert message.count("allow_pickle") == (name.endswith(".npy"))  # =False, in np.save only


def test_npy_and_npz_swapped_suffixes_say_rename(tmp_path):
    with open(tmp_path / "a.npy", "wb") as f:
        np.savez(f, X=np.zeros((2, 2)))
    with pytest.raises(DataError, match=r"a\.npy is a zip archive \(\.npz\).*rename it to \.npz"):
        read_data(tmp_path / "a.npy")
    np.save(tmp_path / "b.npy", np.zeros((2, 2)))
    (tmp_path / "b.npy").rename(tmp_path / "b.npz")
    with pytest.raises(DataError, match=r"b\.npz is a single array \(\.npy\).*rename it to \.npy"):
        read_data(tmp_path / "b.npz")


def test_npz_string_and_int_labels(tmp_path):
    X = np.arange(12.0).reshape(6, 2)
    np.savez(tmp_path / "s.npz", X=X, y=np.array(["dog", "cat", "dog", "emu", "cat", "dog"]))
    raw = read_data(tmp_path / "s.npz")
    assert raw.label_names == ["cat", "dog", "emu"]
    np.testing.assert_array_equal(raw.y, [1, 0, 1, 2, 0, 1])
    np.savez(tmp_path / "i.npz", X=X, y=np.array([7, 3, 7, 5, 3, 7]))
    raw = read_data(tmp_path / "i.npz")
    assert raw.label_names == ["3", "5", "7"] and raw.y.dtype == np.int64
    np.testing.assert_array_equal(raw.y, [2, 0, 2, 1, 0, 2])


def test_npz_errors(tmp_path):
    np.savez(tmp_path / "k.npz", data=np.zeros((3, 2)), labels=np.zeros(3))
    with pytest.raises(DataError, match="no array named 'X' \\(keys found: data, labels\\)"):
        read_data(tmp_path / "k.npz")
    np.savez(tmp_path / "n.npz", X=np.zeros((3, 2)), y=np.zeros(2))
    with pytest.raises(DataError, match="X has 3 rows but y has 2 labels"):
        read_data(tmp_path / "n.npz")


def test_small_classes_are_split_without_stratification(tmp_path):
    np.savez(tmp_path / "s.npz", X=np.arange(10.0).reshape(5, 2), y=np.array([0, 0, 0, 0, 1]))
    data = load_dataset(tmp_path / "s.npz", test_fraction=0.4)
    assert len(data.y_train) == 3 and len(data.y_test) == 2


# ------------------------------------------------------------------------------------------ CSV
def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_csv_with_header_and_string_label_column(tmp_path):
    f = write(tmp_path / "d.csv", "a,b,kind\n1,2,x\n3,4.5,y\n\n5,6e1,x\n")
    raw = read_data(f, label_column="kind")
    np.testing.assert_array_equal(raw.X, [[1, 2], [3, 4.5], [5, 60]])
    np.testing.assert_array_equal(raw.y, [0, 1, 0])
    assert raw.label_names == ["x", "y"] and raw.source == str(f.resolve())


def test_csv_without_header_and_label_index(tmp_path):
    f = write(tmp_path / "d.csv", "10,1,2\n2,3,4\n10,5,6\n")
    raw = read_data(f, label_column=0)
    np.testing.assert_array_equal(raw.X, [[1, 2], [3, 4], [5, 6]])
    assert raw.label_names == ["2", "10"]  # numeric labels sort as numbers
    np.testing.assert_array_equal(raw.y, [1, 0, 1])
    raw = read_data(f)  # no label column: the first row is data, not a header
    assert raw.X.shape == (3, 3) and raw.y is None
    raw = read_data(f, label_column=-1)
    assert raw.label_names == ["2", "4", "6"]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("a,b\n1,2\n3,abc\n", r"line 3, column 'b' \(index 1\): 'abc' is not a number"),
        ("1,2\n3,\n", r"line 2, column index 1: empty cell"),
        ("a,b,c\n1,2,3\n4,5,6\n7,8\n", r"line 4: 2 fields, expected 3 \(as in line 1\)"),
        ("", "no data rows"),
        ("a,b\n", "no data rows"),
        ("a,b\n1,2\n3,nan\n", r"line 3, column 'b' \(index 1\): 'nan' is NaN or inf"),
    ],
)
def test_csv_errors(tmp_path, text, match):
    f = write(tmp_path / "bad.csv", text)
    with pytest.raises(DataError, match=match) as info:
        read_data(f)
    assert str(f) in str(info.value)


def test_csv_label_column_errors(tmp_path):
    f = write(tmp_path / "h.csv", "a,b\n1,2\n")
    with pytest.raises(DataError, match=r"label_column 'c' not found in .*columns: 0: 'a', 1: 'b'"):
        read_data(f, label_column="c")
    with pytest.raises(DataError, match=r"out of range.*2 columns"):
        read_data(f, label_column=2)
    g = write(tmp_path / "n.csv", "1,2\n3,4\n")
    with pytest.raises(DataError, match="has no header row; give its 0-based index"):
        read_data(g, label_column="a")
    with pytest.raises(DataError, match=r"column 'y' \(index 1\): every label is missing"):
        read_data(write(tmp_path / "e.csv", "a,y\n1,\n"), label_column="y")


def test_csv_label_column_of_digits_is_an_index_unless_a_header_has_that_name(tmp_path):
    """--label-column 4 (the string "4") on a CSV with a header is index 4 when no column is named
    "4"; a column named "4" wins; out of range says how many columns there are."""
    f = write(tmp_path / "h.csv", "a,b,c,d,kind\n1,2,3,4,x\n5,6,7,8,y\n")
    raw = read_data(f, label_column="4")
    np.testing.assert_array_equal(raw.X, [[1, 2, 3, 4], [5, 6, 7, 8]])
    assert raw.label_names == ["x", "y"]
    assert read_data(f, label_column=" -1 ").label_names == ["x", "y"]
    out_of_range = r"'5' is out of range for .*h\.csv, which has 5 columns \(0-based indices 0\.\.4"
    with pytest.raises(DataError, match=out_of_range + ".*no column is named '5' either"):
        read_data(f, label_column="5")
    g = write(tmp_path / "named.csv", "a,4,c,d,e\n1,u,2,3,4\n5,v,6,7,8\n")
    raw = read_data(g, label_column="4")  # the column named "4" (index 1), not index 4
    assert raw.label_names == ["u", "v"] and raw.X.shape == (2, 4)
    # No header: the first row is data, though it holds "1" and a string label.
    n = write(tmp_path / "n.csv", "1,cat,3\n2,dog,4\n")
    raw = read_data(n, label_column="1")
    np.testing.assert_array_equal(raw.X, [[1, 3], [2, 4]])
    assert raw.label_names == ["cat", "dog"]
    with pytest.raises(DataError, match=r"label_column must be a column's name .* got 1\.0"):
        read_data(n, label_column=1.0)


def test_csv_header_with_numeric_names_is_found_above_numeric_labels(tmp_path):
    """A first row whose only non-number is in the label column is a header when the label
    below it is a number (it was read as a row labelled 'label')."""
    f = write(tmp_path / "d.csv", "label,0,1\n3,5,6\n4,7,8\n")
    raw = read_data(f, label_column=0)
    np.testing.assert_array_equal(raw.X, [[5, 6], [7, 8]])
    assert raw.label_names == ["3", "4"]
    raw = read_data(f, label_column="0")  # the header names a column "0": it wins
    assert raw.label_names == ["5", "7"]


@pytest.fixture
def csv_paths(monkeypatch):
    """Which path read each CSV file: "pandas" (the fast one) or "csv" (the csv module, after
    pandas could not read it); and chunks of a few cells, so small files span several."""
    import aekit.datasets as datasets

    paths = []
    fast = datasets._read_csv_with_pandas

    def spy(*args):
        result = fast(*args)
        paths.append("csv" if result is None else "pandas")
        return result

    monkeypatch.setattr(datasets, "_read_csv_with_pandas", spy)
    monkeypatch.setattr(datasets, "_CSV_CHUNK_CELLS", 7)
    return paths


def test_csv_quoting_bom_crlf_and_blank_lines_read_fast_and_alike(tmp_path, csv_paths):
    """Quoted fields holding commas, quotes and newlines, a byte-order mark, CRLF or CR line
    ends, blank and whitespace-only lines, no newline at the end: pandas reads them all (no
    second pass), as the csv module would."""
    text = (
        '\ufeff\n"x, first","y ""2""",label\n\n'
        '"1","2.5","a, b"\n  \n3,4,"two\nlines"\n5,-6e-1,a\n7,8,"two\nlines"'
    )
    for name, newline in [("lf.csv", "\n"), ("crlf.csv", "\r\n"), ("cr.csv", "\r")]:
        f = tmp_path / name
        f.write_bytes(text.replace("\n", newline).encode())
        raw = read_data(f, label_column="label")
        expected = np.array([[1, 2.5], [3, 4], [5, -0.6], [7, 8]], dtype=np.float32)
        np.testing.assert_array_equal(raw.X, expected)
        assert raw.X.dtype == np.float32 and raw.X.flags.c_contiguous
        assert raw.label_names == ["a", "a, b", "two" + newline + "lines"]
        np.testing.assert_array_equal(raw.y, [1, 2, 0, 2])
        assert read_data(f, label_column=-1).label_names == raw.label_names
    assert csv_paths == ["pandas"] * 6
    g = write(tmp_path / "n.csv", "1,2\n3,4\n5,6")  # no header, label column given by index
    assert read_data(g, label_column=1).label_names == ["2", "4", "6"]
    assert csv_paths[-1] == "pandas"


def test_csv_errors_name_the_physical_line_after_quoted_newlines_and_blank_lines(
    tmp_path, csv_paths, monkeypatch
):
    """pandas counts rows, not lines: the messages still name the physical line (at the end of
    the row, as the csv module counts), for a bad cell thousands of rows into the file, in a
    later chunk, after blank lines and quoted newlines, with CRLF line ends too."""
    monkeypatch.setattr("aekit.datasets._CSV_CHUNK_CELLS", 999)  # 333 rows a chunk
    head = '\na,b,label\n\n1,2,"x\ny"\n' + "".join(f"{i},{i / 7},{i % 3}\n" for i in range(3000))
    n = head.count("\n")  # the rows so far end on line n
    b = r"column 'b' \(index 1\)"
    for tail, message in [
        ('\n\n1,"2\n",x\n5,oops,y\n', rf"line {n + 5}, {b}: 'oops' is not a number"),
        ("1,2,3\n4,5\n", rf"line {n + 2}: 2 fields, expected 3 \(as in line 2\)"),
        ("1,2,3\n4,5,6,7\n", rf"line {n + 2}: 4 fields, expected 3 \(as in line 2\)"),
        ("1,,3\n", rf"line {n + 1}, {b}: empty cell"),
        ("1,NA,3\n", rf"line {n + 1}, {b}: 'NA' is not a number"),
        ("1,٣,3\n", rf"line {n + 1}, {b}: '٣' is not a number"),
        (
            "1,2,3\n-inf,2,3\n4,nan,5\n",
            rf"line {n + 2}, column 'a' \(index 0\): '-inf' is NaN "
            r"or inf \(2 non-finite value\(s\) in all\)",
        ),
        ("1,2e39,3\n", rf"line {n + 1}, {b}: '2e39' is beyond float32's range"),
    ]:
        for newline in ("\n", "\r\n"):
            f = tmp_path / "deep.csv"
            f.write_bytes((head + tail).replace("\n", newline).encode())
            with pytest.raises(DataError, match=message):
                read_data(f, label_column="label")


def test_csv_last_column_label_missing_from_a_short_row_is_refused(tmp_path, csv_paths):
    """pandas pads a short row with empty fields: "1,2" must not read as "1,2," (an unlabelled
    row) when the label is the last column."""
    f = write(tmp_path / "s.csv", "a,b,y\n1,2,u\n3,4,\n5,6,v\n7,8\n9,10,u\n")
    with pytest.raises(DataError, match=r"line 5: 2 fields, expected 3 \(as in line 1\)"):
        read_data(f, label_column="y")
    g = write(tmp_path / "g.csv", "a,b,y\n1,2,u\n3,4,\n5,6,v\n")
    np.testing.assert_array_equal(read_data(g, label_column="y").y, [0, -1, 1])


def test_csv_data_rows_wider_than_the_header_are_refused_not_cut_or_indexed(tmp_path, csv_paths):
    """pandas takes a first data row one field longer than the header as an index column, or
    cuts it to the header's width with a warning; both are refused, naming the line."""
    for text in ("a,b\n1,2,3\n4,5,6\n", "a,b\n1,2,3,4\n5,6,7,8\n"):
        f = write(tmp_path / "w.csv", text)
        with pytest.raises(
            DataError, match=r"w\.csv, line 2: \d fields, expected 2 \(as in line 1"
        ):
            read_data(f)
        with pytest.raises(DataError, match=r"line 2: \d fields, expected 2 \(as in line 1"):
            read_data(f, label_column=0)


def test_csv_numbers_pandas_refuses_but_python_reads_are_read(tmp_path, csv_paths):
    """An integer beyond 64 bits is a number (pandas leaves it a string): the csv module's pass
    reads the file instead of refusing it."""
    f = write(tmp_path / "big.csv", "a,b\n1,2\n3,123456789012345678901234567890\n")
    np.testing.assert_allclose(read_data(f).X, [[1, 2], [3, 1.2345679e29]], rtol=1e-6)
    assert csv_paths == ["csv"]
    g = tmp_path / "latin1.csv"
    g.write_bytes("a,b\n1,2\n3,\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1\.csv is not UTF-8 text"):
        read_data(g)


def test_missing_labels_are_unlabelled_rows_and_all_missing_is_an_error(tmp_path):
    """Empty or NaN-like label cells mark unlabelled rows (-1, the estimators' unlabeled_label),
    not a class "nan"; a column with no label at all is an error naming it."""
    f = write(tmp_path / "s.csv", "a,y\n1,cat\n2,\n3,nan\n4,dog\n5, NA \n6,None\n7,cat\n")
    raw = read_data(f, label_column="y")
    assert raw.label_names == ["cat", "dog"]
    np.testing.assert_array_equal(raw.y, [0, -1, -1, 1, -1, -1, 0])
    g = write(tmp_path / "n.csv", "a,y\n1,2\n2,\n3,10\n4,NaN\n")
    raw = read_data(g, label_column=1)
    assert raw.label_names == ["2", "10"]  # still sorted as numbers
    np.testing.assert_array_equal(raw.y, [0, -1, 1, -1])
    data = load_dataset(f, label_column="y", test_fraction=0.4, scale="none")
    assert sorted(np.concatenate([data.y_train, data.y_test])) == [-1] * 4 + [0, 0, 1]
    h = write(tmp_path / "all.csv", "a,b,label\n1,2,nan\n3,4,\n5,6,NaN\n")
    with pytest.raises(DataError, match=r"all\.csv, column 'label' \(index 2\): every label is "
                       r"missing \(all 3 cells .*no labels at all\. Fill in"):  # fmt: skip
        read_data(h, label_column="label")
    np.savez(tmp_path / "y.npz", X=np.zeros((4, 2)), y=np.array([1.0, np.nan, 3.0, 1.0]))
    raw = read_data(tmp_path / "y.npz")
    assert raw.label_names == ["1", "3"]
    np.testing.assert_array_equal(raw.y, [0, -1, 1, 0])
    np.savez(tmp_path / "none.npz", X=np.zeros((2, 2)), y=np.array(["", "nan"]))
    with pytest.raises(DataError, match=r"none\.npz \(y\): every label is missing"):
        read_data(tmp_path / "none.npz")


# --------------------------------------------------------------------------------------- images
def save_image(path: Path, array: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def test_flat_folder_of_grayscale_images(tmp_path):
    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 256, (5, 4), dtype=np.uint8) for _ in range(3)]
    for i, a in enumerate(arrays):
        save_image(tmp_path / "imgs" / f"{i}.png", a)
    (tmp_path / "imgs" / "notes.txt").write_text("not an image")
    raw = read_data(tmp_path / "imgs")
    assert raw.image_shape == (1, 5, 4) and raw.pixel_max == 255 and raw.y is None
    np.testing.assert_array_equal(raw.X, np.stack(arrays).reshape(3, 20))
    data = load_dataset(tmp_path / "imgs", test_fraction=0)
    assert data.name == "imgs" and data.scaler.kind == "divide" and data.X_train.max() <= 1


def test_class_subfolders_mixed_modes_become_rgb(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (4, 6, 3), dtype=np.uint8)
    gray = rng.integers(0, 256, (4, 6), dtype=np.uint8)
    save_image(tmp_path / "c" / "zebra" / "a.PNG", rgb)
    save_image(tmp_path / "c" / "ant" / "b.png", gray)
    save_image(tmp_path / "c" / "ant" / "c.JPEG", rgb)
    raw = read_data(tmp_path / "c")
    assert raw.label_names == ["ant", "zebra"] and raw.image_shape == (3, 4, 6)
    np.testing.assert_array_equal(raw.y, [0, 0, 1])
    # (C, H, W) flattening: the first channel plane comes first.
    np.testing.assert_array_equal(raw.X[2].reshape(3, 4, 6), rgb.transpose(2, 0, 1))
    np.testing.assert_array_equal(raw.X[0].reshape(3, 4, 6)[1], gray)


def test_image_folder_errors(tmp_path):
    save_image(tmp_path / "m" / "a.png", np.zeros((4, 6), np.uint8))
    save_image(tmp_path / "m" / "b.png", np.zeros((5, 6), np.uint8))
    with pytest.raises(DataError, match=r"a\.png is 6x4 but .*b\.png is 6x5.*resize"):
        read_data(tmp_path / "m")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("x")
    with pytest.raises(DataError, match="no images"):
        read_data(tmp_path / "empty")
    save_image(tmp_path / "bad" / "ok.png", np.zeros((4, 6), np.uint8))
    (tmp_path / "bad" / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(DataError, match=r"cannot decode image .*broken\.png"):
        read_data(tmp_path / "bad")
    save_image(tmp_path / "mix" / "top.png", np.zeros((4, 6), np.uint8))
    save_image(tmp_path / "mix" / "cls" / "x.png", np.zeros((4, 6), np.uint8))
    with pytest.raises(DataError, match=r"both images .* and class subfolders"):
        read_data(tmp_path / "mix")


def huge_png(path: Path, width: int, height: int) -> None:
    """A valid all-black 1-bit PNG written chunk by chunk: 20000x20000 takes 50 KB on disk and
    never 50 MB in memory."""
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    rows, compressor = bytes((1 + (width + 7) // 8) * 100), zlib.compressobj(9)
    idat = b"".join(compressor.compress(rows) for _ in range(height // 100)) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1 bit, grayscale
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat)
                     + chunk(b"IEND", b""))  # fmt: skip


def test_a_huge_image_is_refused_from_its_header(tmp_path):
    """A 20000x20000 PNG (a decompression bomb to Pillow) is a DataError naming the file, its size
    and aekit's limit, not Pillow's DecompressionBombError."""
    save_image(tmp_path / "big" / "a.png", np.zeros((4, 6), np.uint8))
    huge_png(tmp_path / "big" / "huge.png", 20000, 20000)
    with pytest.raises(DataError, match=r"huge\.png is 20000x20000 pixels .*Pillow refuses .*"
                       r"at most 16,777,216 pixels \(4096x4096\).*Resize"):  # fmt: skip
        read_data(tmp_path / "big")


def test_images_over_aekits_limit_or_pillows_are_refused_before_decoding(tmp_path, monkeypatch):
    from PIL import Image

    save_image(tmp_path / "i" / "a.png", np.zeros((4, 6), np.uint8))
    monkeypatch.setattr(datasets, "MAX_IMAGE_PIXELS", 20)
    monkeypatch.setattr(Image.Image, "convert", None)  # nothing may be decoded
    with pytest.raises(
        DataError, match=r"a\.png is 6x4 pixels \(24; .*\); aekit reads .* at most 20 pixels:"
    ):
        read_data(tmp_path / "i")
    # Pillow's own limit, lowered: its warning (an error in this test suite) is refused too.
    monkeypatch.setattr(datasets, "MAX_IMAGE_PIXELS", 100)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 20)
    with pytest.raises(
        DataError, match=r"a\.png is 6x4 pixels .*, which Pillow refuses as a possible"
    ):
        read_data(tmp_path / "i")


# ------------------------------------------------------------------------------- sources, names
def test_unknown_name_and_unsupported_extension(tmp_path):
    with pytest.raises(DataError, match=r"unknown dataset 'cifar'; known names: digits, fashion"):
        read_data("cifar")
    f = write(tmp_path / "d.json", "{}")
    with pytest.raises(DataError, match=r"unsupported file type '\.json'; supported: .npy, .npz"):
        read_data(f)
    np.save(tmp_path / "x.npy", np.zeros((2, 2)))
    with pytest.raises(DataError, match="label_column applies to CSV files only"):
        read_data(tmp_path / "x.npy", label_column=0)


# --------------------------------------------------------------------------------------- Scaler
@pytest.mark.parametrize("kind", ["none", "divide", "standard", "minmax"])
def test_scaler_json_round_trip_and_inverse(kind):
    X = np.random.default_rng(0).normal(3, 2, size=(20, 5)).astype(np.float32)
    scaler = Scaler.fit(kind, X, divisor=4.0)
    again = Scaler.from_dict(json.loads(json.dumps(scaler.to_dict())))
    assert again == scaler
    np.testing.assert_array_equal(again.transform(X), scaler.transform(X))
    assert scaler.transform(X).dtype == np.float32
    np.testing.assert_allclose(scaler.inverse_transform(scaler.transform(X)), X, atol=1e-5)


def test_scaler_standard_and_minmax_statistics():
    X = np.random.default_rng(0).normal(3, 2, size=(30, 3))
    Z = Scaler.fit("standard", X).transform(X)
    np.testing.assert_allclose(Z.mean(axis=0), 0, atol=1e-6)
    np.testing.assert_allclose(Z.std(axis=0), 1, atol=1e-5)
    M = Scaler.fit("minmax", X).transform(X)
    np.testing.assert_allclose(M.min(axis=0), 0, atol=1e-7)
    np.testing.assert_allclose(M.max(axis=0), 1, atol=1e-6)


def test_scaler_errors():
    scaler = Scaler.fit("standard", np.zeros((4, 3)))
    with pytest.raises(DataError, match=r"wrong number of features.*expected 3 .*got 2"):
        scaler.transform(np.zeros((2, 2)))
    with pytest.raises(DataError, match="unknown scaling 'log'"):
        Scaler.fit("log", np.zeros((2, 2)))
    with pytest.raises(DataError, match="positive divisor"):
        Scaler.fit("divide", np.zeros((2, 2)))


@pytest.mark.parametrize(
    ("d", "match"),
    [
        ([1, 2], "expected a dict"),
        ({"kind": "log"}, "'kind' must be one of"),
        ({"kind": "divide"}, "positive number 'divisor'"),
        ({"kind": "divide", "divisor": "255"}, "positive number 'divisor'"),
        ({"kind": "divide", "divisor": float("nan")}, "positive number 'divisor'"),
        ({"kind": "standard", "offset": [0.0]}, "non-empty lists of numbers"),
        ({"kind": "standard", "offset": [0.0], "scale": [1.0, 2.0]}, "'offset' has 1 values"),
        ({"kind": "minmax", "offset": ["a"], "scale": [1.0]}, "non-empty lists of numbers"),
        ({"kind": "minmax", "offset": [0.0], "scale": [0.0]}, "'scale' non-zero"),
        ({"kind": "none", "mean": 1}, r"unknown keys \['mean'\]"),
    ],
)
def test_scaler_from_dict_rejects_malformed(d, match):
    with pytest.raises(DataError, match=match):
        Scaler.from_dict(d)


# ------------------------------------------------------------------------------------ real data
@pytest.mark.slow
def test_real_fashion_mnist(monkeypatch):
    """Debian's dataset-fashion-mnist package, found through the system-wide location."""
    if not all((FASHION_DIR / f"{s}.gz").is_file() for s in datasets._IDX_FILES):
        pytest.skip(f"Fashion-MNIST is not installed in {FASHION_DIR}")
    monkeypatch.setattr(datasets, "SYSTEM_DATA_DIR", FASHION_DIR.parent)
    data = load_dataset("fashion-mnist", download=False)
    assert data.X_train.shape == (60000, 784) and data.X_test.shape == (10000, 784)
    assert data.image_shape == (1, 28, 28) and data.label_names[0] == "T-shirt/top"
    assert set(np.unique(data.y_train)) == set(range(10)) == set(np.unique(data.y_test))
    assert np.bincount(data.y_train).tolist() == [6000] * 10
    assert data.X_train.min() == 0 and data.X_train.max() == 1 and data.X_test.max() <= 1


def test_split_falls_back_to_unstratified_and_reports_impossible_splits(tmp_path):
    # Every class has two rows, but 2 test rows cannot hold one of each of 3 classes.
    np.savez(tmp_path / "t.npz", X=np.arange(12.0).reshape(6, 2), y=np.array([0, 0, 1, 1, 2, 2]))
    data = load_dataset(tmp_path / "t.npz", test_fraction=0.2)
    assert len(data.y_train) == 4 and len(data.y_test) == 2
    np.save(tmp_path / "one.npy", np.zeros((1, 2)))
    with pytest.raises(DataError, match=r"cannot split the 1 rows .*Use test_fraction=0"):
        load_dataset(tmp_path / "one.npy", test_fraction=0.5)
    assert load_dataset(tmp_path / "one.npy", test_fraction=0).X_train.shape == (1, 2)


def test_csv_line_numbers_count_blank_lines_and_float_labels(tmp_path):
    f = write(tmp_path / "b.csv", "\nx,y,label\n\n1,2,1.0\n3,4\n")
    with pytest.raises(DataError, match=r"line 5: 2 fields, expected 3 \(as in line 2\)"):
        read_data(f, label_column="label")
    g = write(tmp_path / "g.csv", "x,label\n1,1.0\n2,0\n3,1\n")
    raw = read_data(g, label_column="label")
    assert raw.label_names == ["0", "1"]
    np.testing.assert_array_equal(raw.y, [1, 0, 1])


def test_stored_data_paths_are_absolute_except_dataset_names(tmp_path, monkeypatch):
    """A run records its data so that it reads the same from any directory: relative paths
    become absolute (they were stored as typed, so encode/plot/evaluate failed elsewhere)."""
    from aekit.datasets import stored_data_paths

    (tmp_path / "sub").mkdir()
    np.save(tmp_path / "sub" / "x.npy", np.zeros((2, 2)))
    monkeypatch.chdir(tmp_path)
    source, data_dir = stored_data_paths("sub/x.npy", "idx")
    assert source == str(tmp_path.resolve() / "sub" / "x.npy")
    assert data_dir == str(tmp_path.resolve() / "idx")
    monkeypatch.chdir(tmp_path / "sub")
    assert read_data(source).X.shape == (2, 2)  # from another directory
    for name in ("digits", "Fashion-MNIST", "mnist"):
        assert stored_data_paths(name) == (name, None)
    assert stored_data_paths(Path("digits"))[0] == str(tmp_path.resolve() / "sub" / "digits")
    assert stored_data_paths(None, None) == (None, None)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert stored_data_paths("~/sub/x.npy")[0] == source


def test_label_column_is_refused_for_known_datasets():
    with pytest.raises(DataError, match="label_column applies to CSV files only, not to 'digits'"):
        read_data("digits", label_column="y")


def test_import_is_cheap():
    import subprocess
    import sys

    heavy = "{'torch', 'sklearn', 'PIL', 'pandas'}"  # pandas: only when a CSV is read
    code = (
        f"import sys, aekit, aekit.datasets, aekit.cli; print(sorted({heavy} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------------------ memory (issue 11)
def test_npy_is_memory_mapped_and_split_and_scaled_without_a_whole_copy(tmp_path):
    """A .npy is memory-mapped; its split and scaled rows are memory maps (of the file itself
    when nothing changes them, else of a scratch file) and equal the in-memory result."""
    X = np.random.default_rng(0).normal(3, 2, size=(300, 5)).astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    np.savez(tmp_path / "x.npz", X=X)  # the same rows, read into memory
    raw = read_data(tmp_path / "x.npy")
    assert isinstance(raw.X.base, np.memmap) or isinstance(raw.X, np.memmap)
    same = load_dataset(tmp_path / "x.npy", scale="none", test_fraction=0)
    assert Path(same.X_train.filename) == (tmp_path / "x.npy").resolve()  # no copy at all
    mapped = load_dataset(tmp_path / "x.npy")
    in_memory = load_dataset(tmp_path / "x.npz")
    for part in ("X_train", "X_test"):
        assert isinstance(getattr(mapped, part), np.memmap), part
        assert not isinstance(getattr(in_memory, part), np.memmap), part
        np.testing.assert_array_equal(getattr(mapped, part), getattr(in_memory, part))
    assert mapped.scaler == in_memory.scaler


def test_npy_other_dtypes_are_converted_chunk_by_chunk(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "_CHUNK_VALUES", 7)  # many chunks, one partial
    X = np.random.default_rng(0).integers(0, 256, size=(23, 3, 2), dtype=np.uint8)
    np.save(tmp_path / "u.npy", X)
    raw = read_data(tmp_path / "u.npy")
    assert raw.X.dtype == np.uint8 and raw.X.shape == (23, 6)  # the file's dtype, mapped
    data = load_dataset(tmp_path / "u.npy", test_fraction=0.3, random_state=1)
    assert isinstance(data.X_train, np.memmap) and data.X_train.dtype == np.float32
    train, test = datasets._split(23, None, 0.3, 1, "u")
    np.testing.assert_allclose(data.X_train, X.reshape(23, -1)[train] / 255, rtol=1e-6)
    np.testing.assert_allclose(data.X_test, X.reshape(23, -1)[test] / 255, rtol=1e-6)


@pytest.mark.parametrize("kind", ["standard", "minmax"])
def test_scaler_statistics_in_chunks_equal_the_whole_array(kind, monkeypatch):
    X = np.random.default_rng(0).normal(10, 3, size=(101, 4)).astype(np.float32)
    whole = Scaler.fit(kind, X)
    monkeypatch.setattr(datasets, "_CHUNK_VALUES", 8)  # 2 rows per chunk
    rows = np.random.default_rng(1).permutation(101)[:60]
    chunked, subset = Scaler.fit(kind, X, rows=rows), Scaler.fit(kind, X[rows])
    X64 = X.astype(np.float64)
    expected = (X64.mean(0), X64.std(0)) if kind == "standard" else (X64.min(0), np.ptp(X64, 0))
    np.testing.assert_allclose(whole.offset, expected[0], rtol=1e-12)
    np.testing.assert_allclose(whole.scale, expected[1], rtol=1e-12)
    np.testing.assert_allclose(chunked.offset, subset.offset, rtol=1e-12)
    np.testing.assert_allclose(chunked.scale, subset.scale, rtol=1e-12)


def test_split_is_the_seeded_train_test_split_as_before():
    """The same seed gives the same rows as sklearn's train_test_split over row indices (the
    split of every earlier version)."""
    from sklearn.model_selection import train_test_split

    raw = read_data("digits")
    data = load_dataset("digits", random_state=3)
    train, test = train_test_split(np.arange(len(raw.X)), test_size=0.2, random_state=3,
                                   stratify=raw.y)  # fmt: skip
    np.testing.assert_array_equal(data.y_train, raw.y[train])
    np.testing.assert_array_equal(data.X_test, raw.X[test] / np.float32(16))


def test_csv_value_beyond_float32_is_named(tmp_path):
    """A finite number too large for float32 is named as that, with its line and column, not
    called NaN or inf; an .npz (read into memory) says the same as a memory-mapped .npy."""
    f = write(tmp_path / "big.csv", "a,b\n1,2\n3,-1e39\n")
    with pytest.raises(DataError, match=r"line 3, column 'b' \(index 1\): '-1e39' is beyond "
                       r"float32's range \(\+-3\.4e38\).*rescale") as info:  # fmt: skip
        read_data(f)
    assert "NaN" not in str(info.value)
    X = np.ones((4, 3))
    X[2, 1] = 1e39
    np.savez(tmp_path / "big.npz", X=X)
    with pytest.raises(DataError, match=r"big\.npz holds 1e\+39 at row 2, column 1: beyond float"):
        read_data(tmp_path / "big.npz")  # was numpy's overflow warning, then "inf"


def test_csv_label_column_rows_with_extra_fields_are_refused(tmp_path):
    f = write(tmp_path / "x.csv", "a,b,y\n1,2,u\n3,4,v,9\n")
    with pytest.raises(DataError, match=r"line 3: 4 fields, expected 3 \(as in line 1\)"):
        read_data(f, label_column="y")


def test_npy_and_csv_values_that_float32_cannot_hold_are_named(tmp_path):
    """A memory-mapped float64 .npy is gathered as float32 rows: a value beyond its range is
    named with its row and column (as 0.1.0 did), not turned into infinity; a CSV cell that
    Python's float() reads but numpy's reader does not ('1_000') is named too."""
    X = np.ones((100, 3))
    X[57, 1] = 1e39
    np.save(tmp_path / "big.npy", X)
    with pytest.raises(DataError, match=r"big\.npy holds 1e\+39 at row 57, column 1: beyond"):
        read_data(tmp_path / "big.npy")
    (tmp_path / "u.csv").write_text("a,b\n1,2\n3,1_000\n")
    with pytest.raises(DataError, match=r"u\.csv, line 3, column 'b' \(index 1\): '1_000' is not"):
        read_data(tmp_path / "u.csv")


def test_a_scratch_file_that_cannot_be_reserved_is_a_clear_error(tmp_path, monkeypatch):
    """The scaled rows of a memory-mapped .npy go to a scratch file whose blocks are reserved
    first: a disk that is full gives an error naming the folder and the fix, not a SIGBUS."""
    import errno
    import os

    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((100, 4)))

    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", full, raising=False)
    with pytest.raises(DataError, match=r"scratch file of .* MB in .*Set TMPDIR"):
        load_dataset(tmp_path / "x.npy")
