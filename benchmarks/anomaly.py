"""One-class anomaly detection on Fashion-MNIST (issue 15).

The protocol of the one-class literature (Ruff et al. 2018, Deep SVDD; Golan & El-Yaniv 2018): for
each class ``c``, train on the training images of class ``c`` only (6,000 rows), score the whole
test set (10,000 rows: 1,000 of class ``c``, 9,000 anomalies), and report the ROC-AUC of the
score with class ``c`` as the normal class; then the mean over the classes. Models:

* aekit ``Autoencoder`` and ``VAE`` with their defaults, every column scored by
  ``decision_function`` unless named ``-raw`` (see :func:`scores`): the VAE by its default
  score, the ELBO (``vae``), and by its ``log p(x)`` estimate (``vae-ll``,
  ``anomaly_score="log_likelihood"``, k = 100); ``ae-raw`` and ``vae-raw`` score with the
  binary cross-entropy / ELBO as they were before the deviance (docs/anomaly.md);
* PCA keeping 90 % of the variance, scored by minus the squared reconstruction error;
* scikit-learn's ``IsolationForest`` and ``OneClassSVM`` with their defaults.

Pixels are in [0, 1] (``load_dataset``'s scaling), so aekit's "auto" choices pick the Bernoulli /
binary cross-entropy losses. Nothing is tuned on anomalies: ``--set`` runs an experiment with
other parameters, reported as such.

Quick check that the script works (about a minute on 2 CPU cores)::

    PYTHONPATH=src python benchmarks/anomaly.py --classes 0,1 --epochs 2 --rows 1000 \\
        --test-rows 2000

The full benchmark (every class, every training row, the whole test set; about 20 minutes on one
CPU thread, most of it the networks' 100 default epochs and OneClassSVM), whose results are in
docs/anomaly.md::

    PYTHONPATH=src python benchmarks/anomaly.py --threads 1

Prints one line per class and model (ROC-AUC, seconds) and a JSON summary with the means.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score
from sklearn.svm import OneClassSVM

from aekit import VAE, Autoencoder
from aekit.datasets import load_dataset
from aekit.losses import best_reconstruction_loss

MODELS = ("ae", "ae-raw", "vae", "vae-ll", "vae-raw", "pca", "iforest", "ocsvm")


def row_entropy(X: np.ndarray) -> np.ndarray:
    """Each row's binary cross-entropy of a perfect reconstruction (its entropy)."""
    return best_reconstruction_loss(torch.from_numpy(X).double(), "bce").numpy()


def epochs(args) -> dict:
    """The aekit models' parameters: their defaults, unless --epochs or --set say otherwise."""
    params = {} if args.epochs is None else {"max_epochs": args.epochs}
    for item in args.set or ():
        key, _, value = item.partition("=")
        params[key] = json.loads(value)
    return params


def scores(name: str, X_train: np.ndarray, X_test: np.ndarray, args, cache: dict) -> np.ndarray:
    """Higher is normal, for every model. The aekit columns of one family share one model per
    class (trained once, kept in ``cache``), so they differ only in the score:

    * ``ae``: ``decision_function``, minus the reconstruction deviance (the loss less that of a
      perfect reconstruction of the row); ``ae-raw``: minus the binary cross-entropy itself, the
      score before the deviance (``score_samples`` less each row's entropy);
    * ``vae``: the ELBO relative to the row's best ``log p(x | z)`` (the default score);
      ``vae-ll``: ``log p(x)`` (k = 100) likewise; ``vae-raw``: the ELBO itself.
    """
    family = name.split("-")[0]
    if family in ("ae", "vae"):
        if family not in cache:
            cls = Autoencoder if family == "ae" else VAE
            cache[family] = cls(random_state=args.seed, **epochs(args)).fit(X_train)
        model = cache[family]
        if name == "ae-raw":
            return model.score_samples(X_test) - row_entropy(X_test)
        if name == "vae-raw":
            return model.score_samples(X_test)
        if family == "vae":
            model.set_params(anomaly_score="log_likelihood" if name == "vae-ll" else "elbo")
        return model.decision_function(X_test)  # offset_ is the ELBO's: the AUC ignores it
    if name == "pca":
        pca = PCA(n_components=0.9, random_state=args.seed).fit(X_train)
        recon = pca.inverse_transform(pca.transform(X_test))
        return -((X_test - recon) ** 2).sum(axis=1)
    if name == "iforest":
        return IsolationForest(random_state=args.seed).fit(X_train).decision_function(X_test)
    if name == "ocsvm":
        return OneClassSVM().fit(X_train).decision_function(X_test)
    raise ValueError(name)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--classes", default="all", help="comma-separated classes (default all 10)")
    p.add_argument("--models", default=",".join(MODELS), help=f"subset of {','.join(MODELS)}")
    p.add_argument("--epochs", type=int, help="max_epochs of the aekit models (default: theirs)")
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=JSON",
        help="a parameter of the aekit models (not their defaults: an experiment)",
    )
    p.add_argument("--rows", type=int, help="training rows per class (default all, 6,000)")
    p.add_argument("--test-rows", type=int, help="a seeded subsample of the test set")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = load_dataset("fashion-mnist", download=False)
    X_test, y_test = data.X_test, data.y_test
    if args.test_rows:
        keep = np.random.default_rng(args.seed).permutation(len(X_test))[: args.test_rows]
        X_test, y_test = X_test[keep], y_test[keep]
    classes = range(10) if args.classes == "all" else [int(c) for c in args.classes.split(",")]
    models = args.models.split(",")
    results: dict[str, dict[int, float]] = {m: {} for m in models}
    for c in classes:
        X_train = data.X_train[data.y_train == c][: args.rows]
        normal = y_test == c
        cache: dict = {}
        for name in models:
            t = time.perf_counter()
            s = scores(name, X_train, X_test, args, cache)
            auc = roc_auc_score(normal, s)
            results[name][c] = auc
            print(f"class {c} {name:8s} ROC-AUC {auc:.4f} ({time.perf_counter() - t:.1f} s)",
                  flush=True)  # fmt: skip
    summary = {
        "epochs": args.epochs,
        "set": args.set or [],
        "rows": args.rows,
        "test_rows": args.test_rows or len(data.X_test),
        "classes": list(classes),
        "mean_auc": {m: float(np.mean(list(r.values()))) for m, r in results.items()},
        "auc": {m: {str(c): round(v, 4) for c, v in r.items()} for m, r in results.items()},
    }
    print(json.dumps(summary, indent=1))
    return summary


if __name__ == "__main__":
    main()
