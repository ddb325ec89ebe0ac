"""Numbers about a model, next to the baseline people would otherwise use (PCA).

Every function works on arrays, or on any object with the estimator methods (``transform``,
``reconstruct``): duck typing, so this module never imports a model family. Every number is named
with its unit: ``*_per_sample`` is summed over features and averaged over rows (squared error per
image, as in Hinton and Salakhutdinov 2006), ``*_per_feature`` is averaged over both (per pixel).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

_EPS = 1e-7


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
    X = np.asarray(X, dtype=np.float64)
    X_hat = np.asarray(X_hat, dtype=np.float64)
    if X.shape != X_hat.shape:
        raise ValueError(f"X has shape {X.shape} but its reconstruction has shape {X_hat.shape}")
    sq = ((X - X_hat) ** 2).sum(axis=1)
    out = {
        "squared_error_per_sample": float(sq.mean()),
        "mse_per_feature": float(sq.mean() / X.shape[1]),
    }
    if X.min() >= 0 and X.max() <= 1:
        p = np.clip(X_hat, _EPS, 1 - _EPS)
        bce = -(X * np.log(p) + (1 - X) * np.log1p(-p))
        out["bce_per_feature"] = float(bce.mean())
    return out


def pca_reconstruction(X_train: np.ndarray, X_test: np.ndarray, n_components: int):
    """PCA with ``n_components`` fitted on ``X_train``: ``(test codes, test reconstruction,
    train codes)``, so the baseline and the model are compared at the same code size."""
    from sklearn.decomposition import PCA

    n_components = min(n_components, X_train.shape[0], X_train.shape[1])
    pca = PCA(n_components=n_components, random_state=0).fit(X_train)
    Z_test = pca.transform(X_test)
    return Z_test, pca.inverse_transform(Z_test), pca.transform(X_train)


def knn_accuracy(Z_train, y_train, Z_test, y_test, k: int = 5) -> float:
    """Accuracy of a k-nearest-neighbour classifier fitted on training codes, on test codes."""
    from sklearn.neighbors import KNeighborsClassifier

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


def cluster_accuracy(y_true, clusters) -> float:
    """Accuracy of a clustering when each cluster is assigned its most frequent class (Makhzani
    et al. 2015, section 6): ``sum_c max_k |{i in c : y_i = k}| / n``. More clusters than classes
    is allowed (and helps, as in the paper's 16 and 30 clusters for 10 digits)."""
    y_true = np.asarray(y_true)
    clusters = np.asarray(clusters)
    if y_true.shape != clusters.shape or y_true.ndim != 1:
        raise ValueError(f"y_true {y_true.shape} and clusters {clusters.shape}: two 1-D arrays")
    _, y_idx = np.unique(y_true, return_inverse=True)
    _, c_idx = np.unique(clusters, return_inverse=True)
    counts = np.zeros((c_idx.max() + 1, y_idx.max() + 1), dtype=np.int64)
    np.add.at(counts, (c_idx, y_idx), 1)
    return float(counts.max(axis=1).sum() / len(y_true))


def evaluate_reconstruction(
    model: Any,
    X_train: np.ndarray,
    X_test: np.ndarray,
    y_train: np.ndarray | None = None,
    y_test: np.ndarray | None = None,
) -> dict[str, Any]:
    """The model's test reconstruction error and code quality next to PCA at the same code size.

    Returns a JSON-able dict: ``{"model": {...}, "pca": {...}, "n_test": ..., "latent_dim": ...,
    "seconds": ...}`` with :func:`reconstruction_errors` for both and, when labels are given,
    ``knn5_accuracy`` of the test codes (classifier fitted on the training codes).
    """
    start = time.perf_counter()
    Z_test = model.transform(X_test)
    latent_dim = Z_test.shape[1]
    result: dict[str, Any] = {"n_train": len(X_train), "n_test": len(X_test)}
    result["latent_dim"] = latent_dim
    if getattr(model, "supervised", False):  # its decoder reads the label too
        X_hat = model.reconstruct(X_test, y_test)
    else:
        X_hat = model.reconstruct(X_test)
    result["model"] = reconstruction_errors(X_test, X_hat)
    P_test, P_rec, P_train = pca_reconstruction(X_train, X_test, latent_dim)
    result["pca"] = reconstruction_errors(X_test, P_rec)
    if y_train is not None and y_test is not None:
        Z_train = model.transform(X_train)
        result["model"]["knn5_accuracy"] = knn_accuracy(Z_train, y_train, Z_test, y_test, 5)
        result["pca"]["knn5_accuracy"] = knn_accuracy(P_train, y_train, P_test, y_test, 5)
    result["seconds"] = time.perf_counter() - start
    return result
