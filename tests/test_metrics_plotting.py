"""Metrics agree with direct computations; figures are real PNG files."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure
from sklearn.decomposition import PCA
from sklearn.neighbors import KNeighborsClassifier

from aekit.metrics import (
    evaluate_reconstruction,
    knn_accuracy,
    pca_reconstruction,
    reconstruction_errors,
)
from aekit.plotting import latent_2d, plot_latent, plot_learning_curves, write_run_figures


def test_reconstruction_errors_units():
    X = np.array([[0.0, 1.0], [1.0, 1.0]])
    X_hat = np.array([[0.5, 1.0], [1.0, 0.0]])
    m = reconstruction_errors(X, X_hat)
    assert m["squared_error_per_sample"] == pytest.approx((0.25 + 1.0) / 2)
    assert m["mse_per_feature"] == pytest.approx((0.25 + 1.0) / 4)
    expected_bce = -(np.log(0.5) + np.log(1 - 1e-7) + np.log(1 - 1e-7) + np.log(1e-7)) / 4
    assert m["bce_per_feature"] == pytest.approx(expected_bce)
    assert "bce_per_feature" not in reconstruction_errors(X * 3, X_hat)


def test_pca_baseline_is_sklearns_pca(digits):
    _, R, _ = pca_reconstruction(digits.X_train, digits.X_test, 5)
    pca = PCA(5).fit(digits.X_train)
    np.testing.assert_allclose(R, pca.inverse_transform(pca.transform(digits.X_test)), atol=1e-5)


def test_knn_accuracy_is_sklearns(digits):
    acc = knn_accuracy(digits.X_train, digits.y_train, digits.X_test, digits.y_test, k=5)
    ref = KNeighborsClassifier(5).fit(digits.X_train, digits.y_train)
    assert acc == ref.score(digits.X_test, digits.y_test)


def test_evaluate_reconstruction_of_a_duck_typed_model(digits):
    """metrics works on anything with transform/reconstruct: PCA itself scores as the baseline."""

    class PCAModel:
        def __init__(self, X):
            self.p = PCA(3).fit(X)

        def transform(self, X):
            return self.p.transform(X)

        def reconstruct(self, X):
            return self.p.inverse_transform(self.p.transform(X))

    m = evaluate_reconstruction(
        PCAModel(digits.X_train), digits.X_train, digits.X_test, digits.y_train, digits.y_test
    )
    assert m["model"]["squared_error_per_sample"] == pytest.approx(
        m["pca"]["squared_error_per_sample"], rel=1e-5
    )
    assert m["latent_dim"] == 3 and m["n_test"] == 360


def test_evaluate_reconstruction_leaves_unlabelled_rows_out_of_the_knn(digits):
    """-1 (an empty label cell) is no class: the 5-NN is fitted and scored on labelled rows,
    counted in the result; with no labelled test row there is no accuracy (and no crash)."""
    X, Xt = digits.X_train[:300], digits.X_test[:100]
    y, yt = digits.y_train[:300].copy(), digits.y_test[:100].copy()
    y[::2], yt[::3] = -1, -1
    keep, keep_t = y >= 0, yt >= 0
    pca = PCA(3).fit(X)

    class PCAModel:
        def transform(self, X):
            return pca.transform(X)

        def reconstruct(self, X):
            return pca.inverse_transform(pca.transform(X))

    m = evaluate_reconstruction(PCAModel(), X, Xt, y, yt)
    Z, Zt = pca.transform(X), pca.transform(Xt)
    knn = KNeighborsClassifier(5).fit(Z[keep], y[keep])
    assert m["model"]["knn5_accuracy"] == knn.score(Zt[keep_t], yt[keep_t])
    assert (m["labeled_train_rows"], m["labeled_test_rows"]) == (150, keep_t.sum())
    none = evaluate_reconstruction(PCAModel(), X, Xt, y, np.full(len(Xt), -1))
    assert none["labeled_test_rows"] == 0 and "knn5_accuracy" not in none["model"]


def test_latent_2d_projection():
    Z = np.random.default_rng(0).normal(size=(50, 5))
    P, how = latent_2d(Z)
    assert P.shape == (50, 2) and "PCs" in how
    P1, how1 = latent_2d(Z[:, :1])
    assert P1.shape == (50, 2) and "1-D" in how1
    P2, how2 = latent_2d(Z[:, :2])
    assert np.array_equal(P2, Z[:, :2]) and how2 == "code"


def test_plots_draw_into_a_users_axes():
    fig = Figure()
    ax = fig.add_subplot()
    out = plot_latent(np.random.default_rng(0).normal(size=(30, 2)), np.arange(30) % 3, ax=ax)
    assert out is fig and len(ax.collections) == 3
    hist = [{"epoch": i, "loss": 1.0 / i, "val_loss": 1.1 / i} for i in range(1, 6)]
    fig2 = plot_learning_curves(hist)
    assert [line.get_label() for line in fig2.axes[0].get_lines()] == ["loss", "val loss"]


def test_unlabelled_rows_are_drawn_in_grey_under_the_classes_and_take_no_class_name():
    """Found in review: -1 (an empty label cell) was drawn as a class, named after the last
    class (label_names[-1]), in the latent map and the codes over the prior."""
    from aekit.plotting import plot_codes_over_prior, run_figures

    rng = np.random.default_rng(0)
    Z, y = rng.normal(size=(40, 2)), np.arange(40) % 4 - 1  # -1, 0, 1, 2
    names = ["a", "b", "c"]
    ax = plot_latent(Z, y, names).axes[0]
    labels = [c.get_label() for c in ax.collections]
    assert labels == ["a", "b", "c", "unlabelled"]
    grey = ax.collections[-1]
    assert len(grey.get_offsets()) == 10 and np.allclose(grey.get_facecolor()[0][:3], 0.65)
    assert all(grey.get_zorder() < c.get_zorder() for c in ax.collections[:-1])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == labels
    assert "unlabelled" not in [c.get_label() for c in plot_latent(Z, y + 1).axes[0].collections]
    assert [c.get_label() for c in plot_latent(Z, y, unlabeled_label=None).axes[0].collections
            ] == ["-1", "0", "1", "2"]  # fmt: skip
    prior = plot_codes_over_prior(Z, rng.normal(size=(50, 2)), y, names).axes[0]
    assert [c.get_label() for c in prior.collections] == ["prior", "a", "b", "c", "unlabelled"]
    figs = run_figures(history=[], codes=Z, y=y, label_names=names)
    assert [c.get_label() for c in figs["latent"].axes[0].collections][-1] == "unlabelled"


def test_run_figures_are_png_files(fitted_ae, digits, tmp_path):
    X = digits.X_test[:50]
    paths = write_run_figures(
        tmp_path,
        history=fitted_ae.history_,
        codes=fitted_ae.transform(X),
        y=digits.y_test[:50],
        label_names=digits.label_names,
        X=X[:10],
        X_hat=fitted_ae.reconstruct(X[:10]),
        image_shape=(1, 8, 8),
    )
    assert [p.name for p in paths] == ["learning_curves.png", "latent.png", "reconstructions.png"]
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5000


def test_chunked_errors_equal_the_whole_array_ones():
    """evaluate_reconstruction reconstructs the test rows chunk by chunk (a memory-mapped test
    set is never reconstructed whole); the numbers are those of the whole arrays."""
    from aekit.metrics import chunked_errors, reconstruction_errors

    rng = np.random.default_rng(0)
    X = rng.random((9000, 5))  # three chunks of 4096 rows, the last one short
    W = rng.normal(size=(5, 5)) * 0.1
    whole = reconstruction_errors(X, np.clip(X @ W + 0.5, 0, 1))
    calls = []

    def reconstruct(rows, start, stop):
        calls.append((start, stop))
        return np.clip(rows @ W + 0.5, 0, 1)

    chunked = chunked_errors(X, reconstruct)
    assert calls == [(0, 4096), (4096, 8192), (8192, 9000)]
    assert chunked.keys() == whole.keys()
    for key, value in whole.items():
        assert chunked[key] == pytest.approx(value, rel=1e-12)
    assert chunked_errors(X, lambda rows, a, b: None) is None
    wide, sizes = rng.random((300, 10000)), []  # wide rows: fewer per chunk (2**20 values)
    chunked_errors(wide, lambda rows, a, b: sizes.append(len(rows)) or rows)
    assert max(sizes) == 2**20 // 10000 and sum(sizes) == 300


def test_the_pca_baseline_is_fitted_on_a_bounded_sample_and_coded_in_chunks():
    """Memory that does not grow with the data: beyond ``max_values`` values, PCA is fitted on a
    seeded sample of rows (the same each time), and codes are computed chunk by chunk with the
    same result as one call."""
    from aekit.metrics import fit_pca, pca_codes

    X = np.random.default_rng(0).normal(size=(5000, 8)).astype(np.float32)
    X[:, 0] *= 10  # a dominant direction any sample finds
    small = fit_pca(X, 2, max_values=800)  # 100 rows
    again = fit_pca(X, 2, max_values=800)
    np.testing.assert_array_equal(small.components_, again.components_)
    assert small.n_samples_ == 100
    assert abs(small.components_[0, 0]) > 0.99
    full = fit_pca(X, 2)
    assert full.n_samples_ == 5000
    chunked = pca_codes(full, X, max_values=8 * 1000)  # 5 chunks of 1000 rows
    np.testing.assert_allclose(chunked, full.transform(X), rtol=1e-5, atol=1e-5)
