"""Numbers about a model, next to the baseline people would otherwise use (PCA).

Every function works on arrays, or on a fitted model: which numbers fit a model is chosen by its
tags (:func:`aekit.tags.aekit_tags`: ``has_likelihood``, ``has_prior``, ``adversarial``,
``denoising``, ...), never by probing it for methods, so this module never imports a model
family (a model that is not aekit's is taken as a plain autoencoder). Every number is named
with its unit: ``*_per_sample`` is summed over features and averaged over rows (squared error per
image, as in Hinton and Salakhutdinov 2006), ``*_per_feature`` is averaged over both (per pixel).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from .tags import aekit_tags, estimator_type

_EPS = 1e-7

# The data layer's label of a row without one (aekit.datasets: an empty or NaN label cell), the
# estimators' default ``unlabeled_label``. The accuracies below fit and score on labelled rows only.
UNLABELED = -1


def labelled_rows(y, unlabeled_label: Any = UNLABELED) -> np.ndarray:
    """Boolean mask, ``(n_samples,)``: the rows of ``y`` that hold a label, not
    ``unlabeled_label`` (-1 by default, the data layer's marker; None: every row). A marker of
    another type than the labels (-1 among string labels) marks no row, as for the estimators."""
    y = np.asarray(y)
    text_marker = isinstance(unlabeled_label, str)
    if (
        unlabeled_label is None
        or (y.dtype.kind in "US" and not text_marker)
        or (y.dtype.kind in "biuf" and text_marker)
    ):
        return np.ones(len(y), dtype=bool)
    return np.asarray(y != unlabeled_label, dtype=bool).reshape(len(y))


def _only_labelled(Z, y, unlabeled_label, what: str):
    """``(Z, y)`` restricted to the labelled rows (no copy when every row is labelled: a memory
    map stays one); a ValueError when no row is labelled."""
    keep = labelled_rows(y, unlabeled_label)
    if keep.all():
        return Z, np.asarray(y)
    if not keep.any():
        raise ValueError(f"no labelled {what} rows (every label is {unlabeled_label!r})")
    return np.asarray(Z)[keep], np.asarray(y)[keep]


def reconstruction_errors(X: np.ndarray, X_hat: np.ndarray) -> dict[str, float]:
    """Squared error per sample and per feature; binary cross-entropy too when X is in [0, 1].

    Parameters
    ----------
    X, X_hat : ndarray of shape (n_samples, n_features)
        Data and its reconstruction.

    Returns
    -------
    dict
        ``squared_error_per_sample`` = mean_i sum_j (x_ij - x_hat_ij)^2,
        ``mse_per_feature`` = that divided by n_features, and, for X in [0, 1],
        ``bce_per_feature`` = -mean_ij [x log x_hat + (1 - x) log(1 - x_hat)] (x_hat clipped to
        [1e-7, 1 - 1e-7]).
    """
    X, X_hat = np.asarray(X), np.asarray(X_hat)  # views: a memory map stays one
    if X.shape != X_hat.shape:
        raise ValueError(f"X has shape {X.shape} but its reconstruction has shape {X_hat.shape}")
    return _errors(X, lambda start, stop: X_hat[start:stop])


# Rows per chunk when a reconstruction is computed chunk by chunk (the model cuts each into its
# own inference chunks), fewer for rows of more than 256 features (at most 2**20 values, 8 MB of
# float64, per chunk).
_RECON_ROWS = 4096


def chunked_errors(X: np.ndarray, reconstruct) -> dict[str, float] | None:
    """:func:`reconstruction_errors` of ``reconstruct(rows, start, stop)`` (the reconstruction of
    ``X[start:stop]``), computed chunk by chunk, so that no reconstruction of the whole of ``X``
    is held in memory (a large memory-mapped test set). None when ``reconstruct`` gives None
    (a model without a decoder)."""
    X = np.asarray(X)
    step = max(1, min(_RECON_ROWS, 2**20 // max(1, X.shape[1])))  # wide rows: fewer of them
    first = reconstruct(X[:step], 0, step) if len(X) else None
    if first is None:
        return None

    def chunk(start: int, stop: int) -> np.ndarray:
        return first[: stop - start] if start == 0 else reconstruct(X[start:stop], start, stop)

    return _errors(X, chunk, step=step)


def model_errors(model: Any, X: np.ndarray, y=None) -> dict[str, float] | None:
    """:func:`reconstruction_errors` of the model's reconstruction of ``X`` (``y`` for a decoder
    that reads labels), chunk by chunk; None for a model without a decoder."""
    return chunked_errors(X, lambda rows, a, b: reconstruction_of(
        model, rows, None if y is None else y[a:b]))  # fmt: skip


def pca_errors(pca, X: np.ndarray) -> dict[str, float]:
    """:func:`reconstruction_errors` of a fitted PCA's reconstruction of ``X``, chunk by chunk."""
    return chunked_errors(X, lambda rows, a, b: pca.inverse_transform(pca.transform(rows)))


def _errors(X: np.ndarray, reconstruction, step: int | None = None) -> dict[str, float]:
    # In float64 over chunks of rows: no float64 copy of the whole test set (5x its size).
    step = step or max(1, 2**20 // max(1, X.shape[1]))
    sq_sum = bce_sum = 0.0
    unit = bool(X.min() >= 0 and X.max() <= 1)
    for start in range(0, len(X), step):
        x = X[start : start + step].astype(np.float64)
        x_hat = np.asarray(reconstruction(start, min(start + step, len(X))), dtype=np.float64)
        if x_hat.shape != x.shape:
            raise ValueError(f"rows {start}.. have shape {x.shape}, their reconstruction "
                             f"{x_hat.shape}")  # fmt: skip
        sq_sum += float(((x - x_hat) ** 2).sum())
        if unit:
            p = np.clip(x_hat, _EPS, 1 - _EPS)
            bce_sum += float(-(x * np.log(p) + (1 - x) * np.log1p(-p)).sum())
    sq = sq_sum / len(X) if len(X) else float("nan")
    out = {"squared_error_per_sample": sq, "mse_per_feature": sq / X.shape[1]}
    if unit:
        out["bce_per_feature"] = bce_sum / X.size if X.size else float("nan")
    return out


def pca_reconstruction(X_train: np.ndarray, X_test: np.ndarray, n_components: int):
    """PCA with ``n_components`` fitted on ``X_train``: ``(test codes, test reconstruction,
    train codes)``, so the baseline and the model are compared at the same code size."""
    pca = fit_pca(X_train, n_components)
    Z_test = pca_codes(pca, X_test)
    return Z_test, pca.inverse_transform(Z_test), pca_codes(pca, X_train)


#: The PCA baseline is fitted on at most this many values of the training rows (32 MB of
#: float32): a seeded sample of whole rows beyond it, so that its memory does not grow with the
#: data (scikit-learn's PCA centres a copy of what it fits, and its solvers make more). 2,730
#: rows of 32x32 RGB images, 10,700 of 28x28 gray ones, 65,536 rows of 128 features: enough rows
#: for the few leading components a baseline at the model's code size needs.
PCA_MAX_VALUES = 2**23


def fit_pca(X_train: np.ndarray, n_components: int, max_values: int = PCA_MAX_VALUES):
    """The PCA baseline: ``n_components`` (at most the data's rank) fitted on ``X_train``, or on
    a seeded sample of its rows when it holds more than ``max_values`` values."""
    from sklearn.decomposition import PCA

    n_components = min(n_components, X_train.shape[0], X_train.shape[1])
    rows = max(n_components, max_values // max(1, X_train.shape[1]))
    if len(X_train) > rows:  # gathered row by row: a memory map is read only where sampled
        X_train = X_train[np.sort(np.random.default_rng(0).choice(len(X_train), rows, False))]
    return PCA(n_components=n_components, random_state=0).fit(X_train)


def pca_codes(pca, X: np.ndarray, max_values: int = 2**22) -> np.ndarray:
    """``pca.transform(X)`` chunk by chunk (at most ``max_values`` values each): the codes are
    small, the centred copy of ``X`` that one call would make is not."""
    step = max(1, max_values // max(1, X.shape[1]))
    parts = [pca.transform(X[i : i + step]) for i in range(0, len(X), step)]
    return np.concatenate(parts) if parts else np.empty((0, pca.n_components_), np.float32)


def knn_accuracy(Z_train, y_train, Z_test, y_test, k: int = 5, *,
                 unlabeled_label: Any = UNLABELED) -> float:  # fmt: skip
    """Accuracy of a k-nearest-neighbour classifier fitted on the labelled training codes, on
    the labelled test codes: rows labelled ``unlabeled_label`` (see :func:`labelled_rows`) are
    left out of both. A ValueError when either side has no labelled row."""
    from sklearn.neighbors import KNeighborsClassifier

    Z_train, y_train = _only_labelled(Z_train, y_train, unlabeled_label, "training")
    Z_test, y_test = _only_labelled(Z_test, y_test, unlabeled_label, "test")
    clf = KNeighborsClassifier(n_neighbors=min(k, len(Z_train)))
    return float(clf.fit(Z_train, y_train).score(Z_test, y_test))


def median_bandwidth(Y: np.ndarray, max_rows: int = 1000) -> float:
    """The median heuristic: the median pairwise Euclidean distance between rows of ``Y`` (the
    first ``max_rows`` of them)."""
    Y = np.asarray(Y, dtype=np.float64)[:max_rows]
    d = np.sqrt(np.maximum(_sq_dists(Y, Y), 0))
    return float(np.median(d[np.triu_indices(len(Y), k=1)]))


def _sq_dists(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    return (A * A).sum(1)[:, None] + (B * B).sum(1)[None, :] - 2 * A @ B.T


def mmd2(X, Y, bandwidth: float | None = None, chunk: int = 2048) -> float:
    """Squared maximum mean discrepancy between samples ``X`` and ``Y`` with the Gaussian kernel
    ``k(a, b) = exp(-|a - b|^2 / (2 h^2))`` (Gretton et al. 2012), the biased (V-statistic)
    estimate ``mean k(X, X) + mean k(Y, Y) - 2 mean k(X, Y)``: always >= 0, and of order
    ``1/n + 1/m`` for two samples of one distribution (their "noise floor").

    Parameters
    ----------
    X, Y : array-like of shape (n, d) and (m, d)
    bandwidth : float, optional
        ``h``; by default the median heuristic on ``Y`` (:func:`median_bandwidth`): pass prior
        samples as ``Y`` to measure how well codes ``X`` match the prior.
    chunk : int
        Rows per block of the kernel matrices (memory ``chunk**2`` floats).
    """
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    if X.ndim != 2 or Y.ndim != 2 or X.shape[1] != Y.shape[1]:
        raise ValueError(f"X {X.shape} and Y {Y.shape} must be 2-D with the same columns")
    h = median_bandwidth(Y) if bandwidth is None else float(bandwidth)
    if not h > 0:
        raise ValueError(f"bandwidth {h} must be positive")

    def mean_kernel(A, B):
        total = 0.0
        for i in range(0, len(A), chunk):
            for j in range(0, len(B), chunk):
                total += np.exp(-_sq_dists(A[i : i + chunk], B[j : j + chunk]) / (2 * h * h)).sum()
        return total / (len(A) * len(B))

    value = mean_kernel(X, X) + mean_kernel(Y, Y) - 2 * mean_kernel(X, Y)
    return max(float(value), 0.0)  # rounding can take a tiny value below 0


def cluster_accuracy(y_true, clusters, *, unlabeled_label: Any = UNLABELED) -> float:
    """Accuracy of a clustering when each cluster is assigned its most frequent class (Makhzani
    et al. 2015, section 6): ``sum_c max_k |{i in c : y_i = k}| / n``, over the ``n`` labelled
    rows (rows labelled ``unlabeled_label`` are left out; a ValueError when none is labelled).
    More clusters than classes is allowed (and helps, as in the paper's 16 and 30 clusters for
    10 digits)."""
    y_true = np.asarray(y_true)
    clusters = np.asarray(clusters)
    if y_true.shape != clusters.shape or y_true.ndim != 1:
        raise ValueError(f"y_true {y_true.shape} and clusters {clusters.shape}: two 1-D arrays")
    clusters, y_true = _only_labelled(clusters, y_true, unlabeled_label, "clustered")
    _, y_idx = np.unique(y_true, return_inverse=True)
    _, c_idx = np.unique(clusters, return_inverse=True)
    counts = np.zeros((c_idx.max() + 1, y_idx.max() + 1), dtype=np.int64)
    np.add.at(counts, (c_idx, y_idx), 1)
    return float(counts.max(axis=1).sum() / len(y_true))


def probe_accuracy(Z_train, y_train, Z_test, y_test, max_train_rows: int = 10000,
                   seed: int = 0, *, unlabeled_label: Any = UNLABELED) -> float:  # fmt: skip
    """Test accuracy of a logistic-regression probe fitted on (standardised) training codes, on
    at most ``max_train_rows`` training rows (a seeded subsample): how linearly the codes separate
    the classes. Labelled rows only, as :func:`knn_accuracy`."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    Z_train, y_train = _only_labelled(Z_train, y_train, unlabeled_label, "training")
    Z_test, y_test = _only_labelled(Z_test, y_test, unlabeled_label, "test")
    Z_train, y_train = _subsample(Z_train, y_train, max_train_rows, seed)
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    return float(probe.fit(Z_train, y_train).score(Z_test, y_test))


def _subsample(A, b, n: int | None, seed: int):
    if n is None or len(A) <= n:
        return A, b
    idx = np.sort(np.random.default_rng(seed).choice(len(A), n, replace=False))
    return A[idx], (None if b is None else np.asarray(b)[idx])


def trustworthiness(X, Z, k: int = 5, max_rows: int | None = 2000, seed: int = 0) -> float:
    """Trustworthiness of the codes ``Z`` of rows ``X`` (Venna and Kaski 2001; scikit-learn's
    :func:`~sklearn.manifold.trustworthiness`): 1 when every code's ``k`` nearest codes are among
    the row's own nearest neighbours. It needs memory quadratic in the rows, so it is computed on
    at most ``max_rows`` rows (a seeded subsample; None: all)."""
    from sklearn.manifold import trustworthiness as sk_trustworthiness

    X, Z = _subsample(np.asarray(X), np.asarray(Z), max_rows, seed)
    return float(sk_trustworthiness(X, Z, n_neighbors=k))


def code_quality(Z_train, y_train, Z_test, y_test, *, probe_rows: int = 10000,
                 unlabeled_label: Any = UNLABELED) -> dict:  # fmt: skip
    """``knn1_accuracy``, ``knn5_accuracy`` (fitted on the training codes, scored on the test
    codes) and ``logistic_accuracy`` (:func:`probe_accuracy`), on the labelled rows only (see
    :func:`labelled_rows`). Empty when either side has no labelled row; no
    ``logistic_accuracy`` when the labelled training rows hold one class only."""
    train = labelled_rows(y_train, unlabeled_label)
    test = labelled_rows(y_test, unlabeled_label)
    if not (train.any() and test.any()):
        return {}
    Z_train, y_train = _only_labelled(Z_train, y_train, unlabeled_label, "training")
    Z_test, y_test = _only_labelled(Z_test, y_test, unlabeled_label, "test")
    out = {
        "knn1_accuracy": knn_accuracy(Z_train, y_train, Z_test, y_test, 1, unlabeled_label=None),
        "knn5_accuracy": knn_accuracy(Z_train, y_train, Z_test, y_test, 5, unlabeled_label=None),
    }
    if len(np.unique(y_train)) > 1:  # a logistic regression needs two classes
        out["logistic_accuracy"] = probe_accuracy(Z_train, y_train, Z_test, y_test, probe_rows,
                                                  unlabeled_label=None)  # fmt: skip
    return out


def label_counts(y_train, y_test, unlabeled_label: Any = UNLABELED) -> dict[str, int]:
    """``labeled_train_rows`` and ``labeled_test_rows``: the rows the accuracies are fitted and
    scored on (the others are unlabelled, see :func:`labelled_rows`)."""
    return {
        "labeled_train_rows": int(labelled_rows(y_train, unlabeled_label).sum()),
        "labeled_test_rows": int(labelled_rows(y_test, unlabeled_label).sum()),
    }


def anomaly_detection(scores, is_anomaly) -> dict:
    """``roc_auc`` and ``average_precision`` of anomaly ``scores`` (higher: more anomalous)
    against the truth ``is_anomaly`` (1 or True for an anomaly)."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    truth = np.asarray(is_anomaly).astype(bool)
    if truth.all() or not truth.any():
        raise ValueError("anomaly labels need both normal (0) and anomalous (1) rows")
    return {
        "roc_auc": float(roc_auc_score(truth, scores)),
        "average_precision": float(average_precision_score(truth, scores)),
    }


def is_sparse(model: Any) -> bool:
    """A sparse autoencoder, or a stack of sparse layers (its ``sparse_code`` tag)."""
    return aekit_tags(model).sparse_code


def family_metrics(model: Any, X: np.ndarray, y=None, *, max_rows: int = 2000,
                   ll_samples: int = 1000,
                   unlabeled_label: Any = UNLABELED) -> dict[str, Any]:  # fmt: skip
    """The numbers that fit the model's kind, on (at most ``max_rows`` of) the rows ``X``,
    chosen by the model's tags (:mod:`aekit.tags`):

    - a generative model with a likelihood (VAE): ``elbo_nats_per_sample``,
      ``log_likelihood_nats_per_sample`` (importance sampling, ``ll_samples`` per row),
      ``active_units``;
    - a model with a prior on its codes (adversarial autoencoders): ``prior_mmd2`` (squared MMD
      between codes and prior samples) next to ``prior_mmd2_floor`` (that of a second prior
      sample: the noise floor);
    - an adversarial model (discriminators): each discriminator's accuracy at the last epoch
      (``discriminator_accuracy``, ``category_discriminator_accuracy``, ...);
    - a denoising model: squared error per sample of the denoised corrupted rows
      (``denoised_squared_error_per_sample``) next to the corrupted rows' own
      (``corrupted_squared_error_per_sample``);
    - a sparse model: ``mean_code_activation`` (mean absolute code value) and
      ``hoyer_sparsity`` of the codes (0 dense ... 1 one-hot);
    - a contractive model: ``jacobian_sq_frobenius_norm`` (``||J_f(x)||_F^2``, mean over rows);
    - a classifier: ``accuracy``; a clusterer: ``cluster_accuracy`` (both need ``y``, and are
      taken over its labelled rows only: rows labelled ``unlabeled_label`` are left out, and
      with no labelled row the metric is too).
    """
    X, y = _subsample(np.asarray(X), y, max_rows, seed=0)  # rows of every class, not the first
    kind = estimator_type(model)
    can = aekit_tags(model)
    out: dict[str, Any] = {}
    if can.has_likelihood:
        out["elbo_nats_per_sample"] = model.elbo(X)
        out["log_likelihood_nats_per_sample"] = model.log_likelihood(X, n_samples=ll_samples)
        out["ll_samples"] = int(ll_samples)
        out["active_units"] = model.active_units(X)
    if can.has_prior:
        codes = model.transform(X)
        prior = model.sample_prior(len(codes) if len(codes) > 1000 else 2000, random_state=0)
        out["prior_mmd2"] = mmd2(codes, prior)
        out["prior_mmd2_floor"] = mmd2(model.sample_prior(len(codes), random_state=1), prior)
    if can.adversarial:  # every discriminator's accuracy, last epoch
        last = model.history_[-1] if model.history_ else {}
        out.update({k: v for k, v in last.items() if k.endswith("discriminator_accuracy")})
    if can.denoising:
        noisy = model.corrupt(X, random_state=0)
        out["corrupted_squared_error_per_sample"] = float(((noisy - X) ** 2).sum(1).mean())
        out["denoised_squared_error_per_sample"] = float(
            ((model.denoise(noisy) - X) ** 2).sum(1).mean()
        )
    if is_sparse(model):
        Z = np.abs(model.transform(X).astype(np.float64))
        out["mean_code_activation"] = float(Z.mean())
        n = Z.shape[1]
        l1, l2 = Z.sum(1), np.sqrt((Z**2).sum(1))
        hoyer = (np.sqrt(n) - l1 / np.maximum(l2, 1e-12)) / max(np.sqrt(n) - 1, 1e-12)
        out["hoyer_sparsity"] = float(np.where(l2 > 0, hoyer, 0.0).mean())
    if can.contractive:
        out["jacobian_sq_frobenius_norm"] = float(np.mean(model.jacobian_norm(X)))
    labelled = None if y is None else labelled_rows(y, unlabeled_label)
    if labelled is not None and labelled.any() and kind == "classifier":
        y = np.asarray(y)
        out["accuracy"] = float((model.predict(X[labelled]) == y[labelled]).mean())
    if labelled is not None and labelled.any() and kind == "clusterer":
        out["cluster_accuracy"] = cluster_accuracy(y, model.predict(X),
                                                   unlabeled_label=unlabeled_label)  # fmt: skip
    return out


def evaluate_reconstruction(
    model: Any,
    X_train: np.ndarray,
    X_test: np.ndarray,
    y_train: np.ndarray | None = None,
    y_test: np.ndarray | None = None,
    *,
    unlabeled_label: Any = UNLABELED,
) -> dict[str, Any]:
    """The model's test reconstruction error and code quality next to PCA at the same code size.

    Returns a JSON-able dict: ``{"model": {...}, "pca": {...}, "n_test": ..., "latent_dim": ...,
    "seconds": ...}`` with :func:`reconstruction_errors` for both and, when labels are given,
    ``knn5_accuracy`` of the test codes (classifier fitted on the training codes), on the
    labelled rows only, counted in ``labeled_train_rows`` and ``labeled_test_rows`` (no
    ``knn5_accuracy`` when either is 0).
    """
    start = time.perf_counter()
    Z_test = model.transform(X_test)
    latent_dim = Z_test.shape[1]
    result: dict[str, Any] = {"n_train": len(X_train), "n_test": len(X_test)}
    result["latent_dim"] = latent_dim
    # Reconstructions chunk by chunk: the codes are small, the reconstructions as large as the
    # test rows (a memory-mapped test set is never held whole).
    result["model"] = model_errors(model, X_test, y_test) or {}
    pca = fit_pca(X_train, latent_dim)
    result["pca"] = pca_errors(pca, X_test)
    labelled = y_train is not None and y_test is not None
    if labelled:  # the accuracies are fitted and scored on labelled rows only
        result.update(label_counts(y_train, y_test, unlabeled_label))
        labelled = bool(result["labeled_train_rows"] and result["labeled_test_rows"])
    if labelled:
        Z_train = model.transform(X_train)
        P_train, P_test = pca_codes(pca, X_train), pca_codes(pca, X_test)
        for name, (A, B) in (("model", (Z_train, Z_test)), ("pca", (P_train, P_test))):
            result[name]["knn5_accuracy"] = knn_accuracy(
                A, y_train, B, y_test, 5, unlabeled_label=unlabeled_label
            )
    result["seconds"] = time.perf_counter() - start
    return result


def evaluate_model(
    model: Any,
    X_train: np.ndarray,
    X_test: np.ndarray,
    y_train: np.ndarray | None = None,
    y_test: np.ndarray | None = None,
    *,
    trust_rows: int | None = 2000,
    probe_rows: int = 10000,
    family_rows: int = 2000,
    ll_samples: int = 1000,
    progress=None,
    unlabeled_label: Any = UNLABELED,
) -> dict[str, Any]:
    """Everything :mod:`aekit.metrics` knows about a model on test rows, next to PCA with the
    same number of components (fitted on ``X_train``) and the raw inputs.

    Returns a JSON-able dict with ``n_train``, ``n_test``, ``latent_dim``, ``seconds``,
    ``timings`` (seconds per step) and three columns, ``model``, ``pca`` and ``raw``:
    :func:`reconstruction_errors` (model and PCA), with labels :func:`code_quality` (all three),
    ``trustworthiness`` (k=5, on ``trust_rows`` rows; model and PCA), and in ``model`` the
    :func:`family_metrics` of its kind. ``progress(message)`` is called after each step.
    The accuracies are fitted and scored on labelled rows only (rows labelled
    ``unlabeled_label``, -1 by default, are left out), counted in ``labeled_train_rows`` and
    ``labeled_test_rows``; with none on either side they are left out.
    """
    timings: dict[str, float] = {}
    start = time.perf_counter()

    def step(name: str, fn):
        t = time.perf_counter()
        value = fn()
        timings[name] = round(time.perf_counter() - t, 3)
        if progress is not None:
            progress(f"{name}: {timings[name]:.1f} s")
        return value

    Z_test = step("codes", lambda: model.transform(X_test))
    d = Z_test.shape[1]
    result: dict[str, Any] = {"n_train": len(X_train), "n_test": len(X_test), "latent_dim": d}
    cols: dict[str, dict[str, Any]] = {"model": {}, "pca": {}, "raw": {}}
    cols["model"].update(step("reconstruction", lambda: model_errors(model, X_test, y_test)) or {})
    pca = step("pca", lambda: fit_pca(X_train, d))
    P_test, P_train = pca_codes(pca, X_test), pca_codes(pca, X_train)
    result["pca_components"] = P_test.shape[1]  # fewer than d when d > n_features
    cols["pca"].update(pca_errors(pca, X_test))
    labelled = y_train is not None and y_test is not None
    if labelled:  # the accuracies are fitted and scored on labelled rows only
        result.update(label_counts(y_train, y_test, unlabeled_label))
        labelled = bool(result["labeled_train_rows"] and result["labeled_test_rows"])
    if labelled:
        Z_train = step("training codes", lambda: model.transform(X_train))
        for name, (A, B) in (("model", (Z_train, Z_test)), ("pca", (P_train, P_test)),
                             ("raw", (X_train, X_test))):  # fmt: skip
            cols[name].update(step(f"{name} code quality", lambda A=A, B=B: code_quality(
                A, y_train, B, y_test, probe_rows=probe_rows,
                unlabeled_label=unlabeled_label)))  # fmt: skip
    n_trust = min(len(X_test), trust_rows or len(X_test))
    for name, Z in (("model", Z_test), ("pca", P_test)):
        if n_trust > 10:  # k = 5 needs more than 2k rows
            cols[name]["trustworthiness"] = step(
                f"{name} trustworthiness", lambda Z=Z: trustworthiness(X_test, Z, 5, trust_rows)
            )
    cols["model"].update(step("model-kind metrics", lambda: family_metrics(
        model, X_test, y_test, max_rows=family_rows, ll_samples=ll_samples,
        unlabeled_label=unlabeled_label)))  # fmt: skip
    result.update(cols)
    result["trust_rows"] = n_trust
    result["timings"] = timings
    result["seconds"] = round(time.perf_counter() - start, 3)
    return result


def reconstruction_of(model: Any, X: np.ndarray, y=None) -> np.ndarray | None:
    """The model's reconstruction of ``X`` (a supervised model's decoder also reads ``y``), or
    None for a model with no decoder (a classifier) or without the labels it needs."""
    can = aekit_tags(model)
    if not can.has_decoder:
        return None
    if can.reconstruct_needs_labels:
        return None if y is None else model.reconstruct(X, y)
    return model.reconstruct(X)
