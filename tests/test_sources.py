"""Data that is not an in-memory array (aekit.sources): torch Datasets, DataLoaders, iterables of
batches and memory maps give the same models as arrays of the same rows, and bad samples are
named where they are."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.base import clone
from torch.utils.data import DataLoader, Dataset, IterableDataset, TensorDataset

import aekit
from aekit.errors import DataError
from aekit.models import catalog
from aekit.sources import PROBE_ROWS

from .helpers import FAMILIES, labels_for, row_entropy, tiny_X

SMALL = dict(latent_dim=2, hidden=(8,), max_epochs=3, batch_size=32, random_state=0)


class Rows(Dataset):
    """A map-style dataset over an array: item ``i`` is ``(row i as a tensor, 0)`` (a label the
    unsupervised models ignore), or the row reshaped to ``shape``."""

    def __init__(self, X: np.ndarray, shape: tuple[int, ...] | None = None, label: bool = True):
        self.X, self.shape, self.label = X, shape, label

    def __len__(self) -> int:
        return len(self.X)

    def __getitem__(self, i):
        x = self.X[i]  # a read-only memory map's row as numpy, others as a tensor
        x = torch.from_numpy(x) if x.flags.writeable else x
        if self.shape is not None:
            x = x.reshape(self.shape)
        return (x, 0) if self.label else x


class Batches:
    """An iterable of batches that starts a fresh pass at every ``iter``, counting the passes."""

    def __init__(self, X: np.ndarray, size: int):
        self.X, self.size, self.passes = X, size, 0

    def __iter__(self):
        self.passes += 1
        for s in range(0, len(self.X), self.size):
            yield (self.X[s : s + self.size], None)


class Stream(IterableDataset):
    """Samples one by one (a streaming dataset), batched by a DataLoader."""

    def __init__(self, X: np.ndarray):
        self.X = X

    def __iter__(self):
        return iter(torch.from_numpy(self.X))


def same_state(a, b) -> bool:
    sa, sb = a.module_.state_dict(), b.module_.state_dict()
    return list(sa) == list(sb) and all(torch.equal(v, sb[k]) for k, v in sa.items())


MODELS = {
    "ae": lambda: aekit.Autoencoder(**SMALL),
    "vae": lambda: aekit.VAE(**SMALL),
    "aae": lambda: aekit.AdversarialAutoencoder(**SMALL, discriminator_hidden=(8,)),
    "stacked": lambda: aekit.StackedAutoencoder(**SMALL, pretrain_epochs=1),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_a_dataset_gives_the_arrays_model_bit_for_bit(name):
    """The same rows as an array and as a Dataset: the same weights (the same seeded order, the
    same validation split, the same first samples for "auto" and data-dependent state), and
    the same outputs from transform, score_samples and reconstruct."""
    X = tiny_X(150)
    a, b = MODELS[name]().fit(X), MODELS[name]().fit(Rows(X))
    assert same_state(a, b)
    assert a.n_train_rows_ == b.n_train_rows_ == 135
    assert [h["val_loss"] for h in a.history_] == [h["val_loss"] for h in b.history_]
    assert "feature_names_in_" not in b.__dict__ and b.input_shape_ is None
    assert np.array_equal(a.transform(X), b.transform(Rows(X)))
    assert np.array_equal(a.score_samples(X), b.score_samples(Rows(X)))
    assert a.score(X) == b.score(Rows(X))
    if name != "stacked":
        assert np.array_equal(a.reconstruct(X), a.reconstruct(Rows(X)))


def test_a_dataloader_lends_its_workers_and_aekit_keeps_the_order():
    """A DataLoader over a map-style dataset, with 2 workers and its own batch size and
    shuffling: aekit loads the dataset in its own order with those workers, so the model is
    the array's. Its inference outputs are the array's too."""
    X = tiny_X(100)
    loader = DataLoader(Rows(X), batch_size=7, shuffle=True, num_workers=2)
    a = aekit.Autoencoder(**{**SMALL, "max_epochs": 2}).fit(X)
    b = aekit.Autoencoder(**{**SMALL, "max_epochs": 2}).fit(loader)
    assert same_state(a, b)
    assert np.array_equal(a.transform(X), b.transform(loader))


def test_images_as_samples_learn_the_input_shape_and_train_a_conv_network():
    """(C, H, W) samples set input_shape_, as 4-D arrays do: a conv network on a Dataset of
    images equals one on the array of the same images."""
    X = tiny_X(64, 64)
    params = dict(SMALL, architecture="conv", hidden=(4,), max_epochs=1)
    a = aekit.Autoencoder(**params).fit(X.reshape(64, 1, 8, 8))
    b = aekit.Autoencoder(**params).fit(Rows(X, shape=(1, 8, 8)))
    assert a.input_shape_ == b.input_shape_ == (1, 8, 8)
    assert same_state(a, b)
    # 2-D samples follow the rule of 3-D arrays: gray images, unless the model takes windows
    gray = aekit.Autoencoder(**SMALL).fit(Rows(X, shape=(16, 4)))
    assert gray.input_shape_ == (1, 16, 4) and gray.n_features_in_ == 64
    windows = aekit.Autoencoder(**SMALL, input_shape=(16, 4)).fit(Rows(X, shape=(16, 4)))
    assert windows.input_shape_ == (16, 4)


def test_a_memory_map_gives_the_in_memory_arrays_model(tmp_path):
    X = tiny_X(150)
    np.save(tmp_path / "x.npy", X)
    mm = np.load(tmp_path / "x.npy", mmap_mode="r")
    a, b = aekit.Autoencoder(**SMALL).fit(X), aekit.Autoencoder(**SMALL).fit(mm)
    assert same_state(a, b)
    assert np.array_equal(a.transform(X), b.transform(mm))
    # a Dataset or batches over a read-only memory map: read, never written, no warning
    c = aekit.Autoencoder(**SMALL).fit(Rows(mm))
    assert same_state(a, c)
    assert np.array_equal(a.transform(X), c.transform(Batches(mm, 16)))


def test_sources_are_cut_into_the_arrays_inference_chunks(tmp_path, monkeypatch):
    """Over many inference chunks (a budget of a few rows, so 150 rows make many), an array, a
    Dataset, a memory map, a DataLoader and batches of another size give bit-identical codes,
    scores and log-likelihood estimates: the chunks depend on the model and the width, never on
    the source."""
    X = tiny_X(150)
    np.save(tmp_path / "x.npy", X)
    mm = np.load(tmp_path / "x.npy", mmap_mode="r")
    ae = aekit.Autoencoder(**SMALL).fit(X)
    vae = aekit.VAE(**SMALL).fit(X)
    whole = ae.transform(X)
    monkeypatch.setattr("aekit.estimator.CPU_INFERENCE_BYTES", 20 * 4 * X.shape[1])
    sources = [mm, Rows(X), Rows(mm), Batches(mm, 7), DataLoader(Rows(X), batch_size=9)]
    codes, scores, ll = ae.transform(X), ae.score_samples(X), vae.log_likelihood(X, 20)
    np.testing.assert_allclose(codes, whole, rtol=1e-6, atol=1e-6)
    for source in sources:
        assert np.array_equal(ae.transform(source), codes)
        assert np.array_equal(ae.score_samples(source), scores)
        assert vae.log_likelihood(source, 20) == ll


def test_a_dataset_fit_resumes_exactly(tmp_path):
    """fit 4 epochs == fit 2, save, load, continue_fit to 4 (aekit train --resume), bit for
    bit, with the Dataset's validation split drawn again from random_state."""
    ds = Rows(tiny_X(150))
    kw = {**SMALL, "lr_schedule": "none"}  # a budget of 2 and of 4 schedule differently
    whole = aekit.Autoencoder(**{**kw, "max_epochs": 4}).fit(ds)
    part = aekit.Autoencoder(**{**kw, "max_epochs": 2}).fit(ds)
    part.save(tmp_path / "m")
    loaded = aekit.load(tmp_path / "m").set_params(max_epochs=4)
    loaded.continue_fit(ds)
    assert loaded.n_epochs_ == whole.n_epochs_ == 4
    assert [h["val_loss"] for h in loaded.history_] == [h["val_loss"] for h in whole.history_]
    assert same_state(loaded, whole)
    assert np.array_equal(loaded.transform(ds), whole.transform(ds))


def test_partial_fit_on_a_dataset_is_an_epoch_over_it():
    X = tiny_X()
    # A constant rate: partial_fit trains at it, and fit's "auto" schedule cools down
    fixed = dict(SMALL, validation_fraction=0, max_epochs=2, lr_schedule="none")
    whole = aekit.Autoencoder(**fixed).fit(Rows(X))
    part = aekit.Autoencoder(**fixed)
    part.partial_fit(Rows(X))
    part.partial_fit(X)  # sources and arrays mix: the same rows, the same order
    assert same_state(part, whole)


def test_validation_data_may_be_a_dataset_or_an_iterable():
    X, V = tiny_X(), tiny_X(40, seed=1)
    a = aekit.Autoencoder(**SMALL).fit(X, validation_data=V)
    b = aekit.Autoencoder(**SMALL).fit(Rows(X), validation_data=Rows(V))
    c = aekit.Autoencoder(**SMALL).fit(X, validation_data=Batches(V, 16))
    assert same_state(a, b) and same_state(a, c)
    val = [h["val_loss"] for h in a.history_]
    assert val == [h["val_loss"] for h in b.history_]
    assert np.allclose(val, [h["val_loss"] for h in c.history_], rtol=1e-6)  # other batches


def test_an_iterable_of_batches_trains_and_holds_out_whole_batches():
    """Batches in the iterable's order; batch i is held out when a draw seeded by (seed, i) is
    below validation_fraction: the same batches every epoch, counted rows, and the validation
    loss is the model's loss on exactly those batches."""
    X = tiny_X(400)
    data = Batches(X, 16)  # 25 batches
    model = aekit.Autoencoder(**{**SMALL, "validation_fraction": 0.25}).fit(data)
    held = [k for k in range(25) if np.random.default_rng((0, k)).random() < 0.25]
    assert 0 < len(held) < 25
    rows = np.concatenate([X[16 * k : 16 * k + 16] for k in held])
    assert model.n_train_rows_ == 400 - len(rows)
    # score is minus the deviance: the validation loss less each row's entropy
    deviance = model.history_[-1]["val_loss"] - row_entropy(rows).mean()
    assert deviance == pytest.approx(-model.score(rows), rel=1e-5)
    # the probe, the range for loss="auto", then a training and a validation pass per epoch,
    # then the scores of the outlier threshold (offset_) over both parts, training and held out
    assert data.passes == 2 + 2 * 3 + 2
    assert np.array_equal(model.transform(data), model.transform(X))
    # a DataLoader over an IterableDataset is such an iterable; without a split, every batch
    loader = DataLoader(Stream(X), batch_size=50)
    streamed = aekit.Autoencoder(**{**SMALL, "validation_fraction": 0}).fit(loader)
    assert streamed.n_train_rows_ == 400 and "val_loss" not in streamed.history_[-1]
    # one batch: held out (a draw below 0.999), nothing left to train on; or kept, and no
    # validation loss, as for an array too small to split
    with pytest.raises(DataError, match="every batch was held out for validation"):
        aekit.Autoencoder(**{**SMALL, "validation_fraction": 0.999}).fit([X])
    kept = aekit.Autoencoder(**{**SMALL, "validation_fraction": 0.001}).fit([X])
    assert kept.n_train_rows_ == 400 and "val_loss" not in kept.history_[-1]


def test_one_shot_iterators_and_bare_iterable_datasets_are_refused():
    X = tiny_X()
    with pytest.raises(DataError, match=r"one-shot iterator .*can be read only once"):
        aekit.Autoencoder(**SMALL).fit(X[i : i + 10] for i in range(0, 120, 10))
    with pytest.raises(DataError, match=r"IterableDataset.*DataLoader\(dataset, batch_size"):
        aekit.Autoencoder(**SMALL).fit(Stream(X))


def test_labels_need_a_map_style_dataset():
    X, y = tiny_X(), np.arange(120) % 3
    model = aekit.AdversarialAutoencoder(supervised=True, **SMALL, discriminator_hidden=(8,))
    with pytest.raises(DataError, match=r"learns from labels.*iterable of batches"):
        clone(model).fit(Batches(X, 16), y)
    a, b = clone(model).fit(X, y), clone(model).fit(Rows(X), y)
    assert same_state(a, b)
    assert np.array_equal(a.reconstruct(X, y), b.reconstruct(Rows(X), y))


@pytest.mark.parametrize("name", list(catalog.FAMILIES))
def test_every_family_fits_a_dataset_and_an_iterable(name):
    cls = catalog.cli_class(name)
    model = cls(**{**FAMILIES[name].tiny, "max_epochs": 1, "random_state": 0})
    X = tiny_X()
    y = labels_for(model)
    model.fit(Rows(X), y)
    assert model.n_epochs_ == 1
    assert model.transform(Rows(X)).shape[0] == len(X)
    # an iterable of batches, or the reason why not (labels cannot be paired with its rows)
    if y is not None:
        with pytest.raises(DataError, match="learns from labels"):
            clone(model).fit(Batches(X, 32), y)
        return
    streamed = clone(model).fit(Batches(X, 32))
    assert streamed.n_epochs_ == 1 and 0 < streamed.n_train_rows_ <= len(X)


# --- bad samples: what, and where --------------------------------------------------------------

N_BIG = PROBE_ROWS + 76  # the last samples lie beyond the probe: checked as their batch arrives


def big(value=None, at: int = 1050) -> np.ndarray:
    X = tiny_X(N_BIG, 4)
    if value is not None:
        X[at, 2] = value
    return X


def test_nan_in_a_later_batch_names_the_item_or_the_batch():
    # loss="auto" reads every row before training (its range): the NaN is found there
    with pytest.raises(DataError, match=r"X contains NaN at item 1050, feature 2"):
        aekit.Autoencoder(**dict(SMALL, max_epochs=1)).fit(Rows(big(np.nan)))
    # a fixed loss reads rows only as it trains: the batch is named too
    params = dict(SMALL, max_epochs=1, batch_size=256, validation_fraction=0, loss="mse")
    with pytest.raises(DataError, match=r"X contains NaN at item 1050 \(batch \d of the epoch.*"
                       "feature 2"):  # fmt: skip
        aekit.Autoencoder(**params).fit(Rows(big(np.nan)))
    # an iterable: the 5th batch of 256 rows (rows 1024-1099), past the probe's 4 batches
    with pytest.raises(DataError, match=r"NaN at batch 5 \(from 1\), row 26, feature 2"):
        aekit.Autoencoder(**params).fit(Batches(big(np.nan), 256))
    # within the probe: fit refuses before training
    with pytest.raises(DataError, match=r"infinite value \(inf\) at item 3, feature 2"):
        aekit.Autoencoder(**params).fit(Rows(big(np.inf, at=3)))


def test_values_outside_the_unit_interval_for_bce():
    params = dict(SMALL, max_epochs=1, batch_size=256, loss="bce")
    with pytest.raises(DataError, match=r"loss='bce' needs values in \[0, 1\].*holds 2 at item "
                       "1050"):  # fmt: skip
        aekit.Autoencoder(**params).fit(Rows(big(2.0)))
    with pytest.raises(DataError, match=r"loss='bce' needs values in \[0, 1\].*first 1024"):
        aekit.Autoencoder(**params).fit(Rows(big(-1.0, at=5)))
    # "auto" decides on every row, as for an array: a value beyond the probe chooses mse
    assert aekit.Autoencoder(**{**params, "loss": "auto"}).fit(Rows(big(2.0))).loss_ == "mse"
    model = aekit.Autoencoder(**params).fit(Rows(big()))
    with pytest.raises(DataError, match=r"needs values in .*item 1050"):
        model.score_samples(Rows(big(2.0)))
    assert model.transform(Rows(big(2.0))).shape == (N_BIG, 2)  # codes need no [0, 1]


def test_inconsistent_sample_shapes():
    class Ragged(Rows):
        def __getitem__(self, i):
            x, y = super().__getitem__(i)
            return (x[:3] if i == 1050 else x), y

    with pytest.raises(DataError, match=r"item 1050 .*has shape \(3,\), but the first sample "
                       r"had \(4,\)"):  # fmt: skip
        aekit.Autoencoder(**SMALL).fit(Ragged(big()))
    batches = [big()[:600], big()[600:, :3]]
    with pytest.raises(DataError, match=r"batch 2 has shape \(3,\).*first sample had \(4,\)"):
        aekit.Autoencoder(**SMALL).fit(batches)
    model = aekit.Autoencoder(**SMALL).fit(tiny_X(100, 4))
    with pytest.raises(DataError, match=r"samples of shape .* expecting 4 features"):
        model.transform(Rows(tiny_X(10, 5)))


def test_the_global_random_states_are_untouched():
    """Loading through a DataLoader (workers, base seeds) draws from aekit's own generators."""
    import random

    X = tiny_X(100)
    loader = DataLoader(Rows(X), num_workers=2)
    numpy_state = np.random.get_state()[1].copy()  # noqa: NPY002
    before = torch.get_rng_state(), numpy_state, random.getstate()
    model = aekit.VAE(**{**SMALL, "max_epochs": 1}).fit(loader)
    model.transform(loader)
    model.score(Batches(X, 10))
    assert torch.equal(torch.get_rng_state(), before[0])
    assert np.array_equal(np.random.get_state()[1], before[1])  # noqa: NPY002
    assert random.getstate() == before[2]


def test_more_rows_than_the_probe_give_the_arrays_data_dependent_choices():
    """fit reads a source's range over all its rows, not only its first PROBE_ROWS samples:
    the salt-and-pepper range of a denoising model and the "auto" loss are the array's."""
    from aekit.sources import PROBE_ROWS

    X = np.random.default_rng(3).random((PROBE_ROWS + 60, 5), dtype=np.float32)
    X[-1, 0] = 50.0  # beyond the probe: makes the data leave [0, 1]
    params = dict(noise="salt_and_pepper", hidden=(8,), latent_dim=2, max_epochs=1,
                  random_state=0)  # fmt: skip
    a = aekit.DenoisingAutoencoder(**params).fit(X)
    b = aekit.DenoisingAutoencoder(**params).fit(TensorDataset(torch.from_numpy(X)))
    assert a.loss_ == b.loss_ == "mse"
    assert float(b.module_.data_max[0]) == 50.0
    for k, v in a.module_.state_dict().items():
        assert torch.equal(v, b.module_.state_dict()[k]), k


def test_two_dimensional_samples_are_gray_images_unless_the_model_takes_windows():
    """The same rule as for 3-D arrays: (H, W) samples are (1, H, W) images, (T, C) windows
    only for architecture="sequence" (or a user's encoder, or input_shape=(T, C))."""
    X = np.random.default_rng(0).random((32, 8, 8), dtype=np.float32)
    conv = dict(architecture="conv", hidden=(4,), latent_dim=2, max_epochs=1, random_state=0)
    a = aekit.Autoencoder(**conv).fit(X)
    b = aekit.Autoencoder(**conv).fit(TensorDataset(torch.from_numpy(X)))
    assert a.input_shape_ == b.input_shape_ == (1, 8, 8)
    seq = aekit.Autoencoder(architecture="sequence", hidden=(4,), latent_dim=2, max_epochs=1)
    assert seq.fit(TensorDataset(torch.from_numpy(X))).input_shape_ == (8, 8)


def test_a_loader_over_an_iterable_dataset_leaves_the_global_random_state_alone():
    """A DataLoader draws its workers' base seed from torch's global generator at each pass;
    aekit reads it with that state forked and put back, in fit and in transform."""

    class Stream(IterableDataset):
        def __iter__(self):
            return iter(torch.from_numpy(tiny_X(40)))

    loader = DataLoader(Stream(), batch_size=8)
    torch.manual_seed(7)
    state = torch.random.get_rng_state()
    model = aekit.Autoencoder(**dict(SMALL, max_epochs=2)).fit(loader)
    model.transform(loader)
    assert torch.equal(torch.random.get_rng_state(), state)
