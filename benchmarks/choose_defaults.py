"""Candidate defaults measured on a VALIDATION split of Fashion-MNIST's training images (issue 16).

Issue 16 asks for defaults chosen on a validation split, never on the test set. This script is
how the candidates were compared; ``benchmarks/quality.py`` then measures the chosen defaults on
the test set. Each call trains one candidate (parameters as JSON, on top of the defaults) and
prints one line.

``compress LATENT PARAMS``
    An ``Autoencoder(latent_dim=LATENT, **PARAMS)`` on 50,000 training images (a permutation
    seeded 123), squared error per image on the other 10,000, over PCA's at the same size
    (fitted on the 50,000).
``look PARAMS``
    The 2-D map: an ``Autoencoder(latent_dim=2, **PARAMS)`` on the same 50,000 images; 5-NN
    accuracy of the other 10,000 images' codes (the 50,000 codes are the neighbours) and
    trustworthiness (k = 5) on 5,000 of them, against PCA-2 (as quality.py's look row).
``probe``
    A linear probe of the pre-trained features: ``StackedAutoencoder(hidden=(500,),
    latent_dim=250, code_activation="relu")`` pre-trained (no fine-tuning) on the pretrain
    row's 10,000 images, then logistic regression (C = 0.1) on the 500 labelled rows' codes,
    against the same on their raw pixels; accuracy on the same 5,000 other images.
``generate K EPOCHS PARAMS``
    A ``VAE(n_importance_samples=K, max_epochs=EPOCHS, **PARAMS)`` on the compress row's 50,000
    images, per seed in ``--seeds``; the importance-sampled ``log_likelihood`` (1,000 samples,
    seed 0) of the first ``--ll-rows`` (default 1,000) of the other 10,000 images, as they are
    (in [0, 1], as quality.py's generate row). Compare ``K=5 EPOCHS=E/5`` with ``K=1 EPOCHS=E``:
    that row's equal number of decoder passes.
``semi PARAMS``
    ``SemiSupervisedAAE(**PARAMS)`` on the compress row's 50,000 images of which 100 keep their
    labels (``keep_labels``, 10 per class, seeded by the seed), accuracy on the other 10,000;
    per seed in ``--seeds`` (as quality.py's semi row).
``cluster PARAMS``
    ``AAEClustering(n_clusters=16, **PARAMS)`` on the compress row's 50,000 images; each cluster
    takes the majority label of its training rows, accuracy on the other 10,000, against k-means
    (16 clusters) on the pixels scored the same way; per seed in ``--seeds`` (as quality.py's
    cluster row).
``aae2d PARAMS``
    The adversarial autoencoder's 2-D map: ``AdversarialAutoencoder(latent_dim=2, **PARAMS)``
    (Gaussian prior unless PARAMS say otherwise) on the compress row's 50,000 images. On the
    other 10,000: 5-NN accuracy and trustworthiness (k = 5, 5,000 rows) as the look row, the
    reconstruction (minus the BCE deviance per image, ``score``), and the prior match, the
    squared MMD of the codes to 2,000 prior samples over that of 10,000 other prior samples
    (1: as close as the prior's own samples); per seed in ``--seeds``.
``pretrain PARAMS``
    ``StackedClassifier(hidden=(500, 250), **PARAMS)``, pre-trained and with ``pretrain=False``,
    on 10,000 training images of which 500 keep their labels (``keep_labels``, as the quality
    row), accuracy on 5,000 other training images; per seed in ``--seeds``.

    PYTHONPATH=src python benchmarks/choose_defaults.py compress 30 '{"lr_schedule": "cosine"}'
    PYTHONPATH=src python benchmarks/choose_defaults.py pretrain '{"pretrain_epochs": 30}' \\
        --seeds 0,1
    PYTHONPATH=src python benchmarks/choose_defaults.py aae2d '{"generator_weight": null}'
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from sklearn.decomposition import PCA

from aekit import (
    VAE,
    AAEClustering,
    AdversarialAutoencoder,
    Autoencoder,
    SemiSupervisedAAE,
    StackedClassifier,
)
from aekit.cli.train import keep_labels
from aekit.datasets import load_dataset


def fit_split(data):
    """The compress and look rows' split: 50,000 training images to fit, the other 10,000 to
    measure (a permutation seeded 123); ``(X_fit, y_fit, X_val, y_val)``."""
    perm = np.random.default_rng(123).permutation(len(data.X_train))
    tr, va = perm[:50000], perm[50000:]
    return data.X_train[tr], data.y_train[tr], data.X_train[va], data.y_train[va]


def labels_split(data, seed: int):
    """The pre-training rows' split: 10,000 training images of which 500 keep their labels
    (the others -1), and 5,000 other training images to measure; ``(X, y, X_val, y_val)``."""
    perm = np.random.default_rng(100 + seed).permutation(len(data.X_train))
    tr, va = perm[:10000], perm[10000:15000]
    X, y = data.X_train[tr], keep_labels(data.y_train[tr], 500, seed, -1)
    return X, y, data.X_train[va], data.y_train[va]


def compress(data, latent: int, params: dict) -> dict:
    tr, _, va, _ = fit_split(data)
    pca = PCA(latent, random_state=0).fit(tr)
    pca_err = float(((va - pca.inverse_transform(pca.transform(va))) ** 2).sum(1).mean())
    t = time.perf_counter()
    model = Autoencoder(**{"latent_dim": latent, "random_state": 0, **params}).fit(tr)
    err = float(((va - model.reconstruct(va)) ** 2).sum(1).mean())
    seconds = round(time.perf_counter() - t)
    return {
        "val_sq_error": round(err, 3),
        "pca": round(pca_err, 3),
        "ratio": round(err / pca_err, 4),
        "epochs": model.n_epochs_,
        "seconds": seconds,
    }


def look(data, params: dict) -> dict:
    from aekit.metrics import knn_accuracy, trustworthiness

    X_tr, y_tr, X_va, y_va = fit_split(data)
    t = time.perf_counter()
    model = Autoencoder(**{"latent_dim": 2, "random_state": 0, **params}).fit(X_tr)
    seconds = round(time.perf_counter() - t)
    Z_tr, Z_va = model.transform(X_tr), model.transform(X_va)
    pca = PCA(2, random_state=0).fit(X_tr)
    return {
        "knn5": round(knn_accuracy(Z_tr, y_tr, Z_va, y_va, 5), 4),
        "trust": round(trustworthiness(X_va, Z_va, k=5, max_rows=5000, seed=0), 4),
        "pca_knn5": round(knn_accuracy(pca.transform(X_tr), y_tr, pca.transform(X_va), y_va, 5), 4),
        "epochs": model.n_epochs_,
        "seconds": seconds,
    }


def pretrain(data, params: dict, seed: int) -> dict:
    X, y, X_va, y_va = labels_split(data, seed)
    out = {"seed": seed}
    for pre in (True, False):
        t = time.perf_counter()
        model = StackedClassifier(hidden=(500, 250), random_state=seed, pretrain=pre, **params)
        model.fit(X, y)
        key = "pretrained" if pre else "not_pretrained"
        out[key] = round(float(model.score(X_va, y_va)), 4)
        out[key + "_s"] = round(time.perf_counter() - t)
    out["points"] = round(100 * (out["pretrained"] - out["not_pretrained"]), 1)
    return out


def generate(data, k: int, epochs: int, params: dict, seed: int, ll_rows: int) -> dict:
    X_tr, _, X_va, _ = fit_split(data)
    t = time.perf_counter()
    model = VAE(**{"n_importance_samples": k, "max_epochs": epochs, "random_state": seed,
                   **params}).fit(X_tr)  # fmt: skip
    seconds = round(time.perf_counter() - t)
    ll = model.log_likelihood(X_va[:ll_rows], n_samples=1000, random_state=0)
    return {"seed": seed, "k": k, "epochs": epochs, "epochs_run": model.n_epochs_,
            "best_epoch": model.best_epoch_, "val_log_likelihood": round(ll, 3),
            "train_s": seconds}  # fmt: skip


def semi(data, params: dict, seed: int) -> dict:
    X_tr, y_tr, X_va, y_va = fit_split(data)
    y = keep_labels(y_tr, 100, seed, -1)
    t = time.perf_counter()
    model = SemiSupervisedAAE(**{"random_state": seed, **params}).fit(X_tr, y)
    seconds = round(time.perf_counter() - t)
    return {"seed": seed, "accuracy": round(float(model.score(X_va, y_va)), 4),
            "train_s": seconds}  # fmt: skip


def cluster(data, params: dict, seed: int) -> dict:
    from sklearn.cluster import KMeans

    from quality import majority_accuracy  # the cluster row's scoring, beside this script

    X_tr, y_tr, X_va, y_va = fit_split(data)
    t = time.perf_counter()
    model = AAEClustering(**{"n_clusters": 16, "random_state": seed, **params}).fit(X_tr)
    seconds = round(time.perf_counter() - t)
    km = KMeans(n_clusters=16, random_state=seed).fit(X_tr)
    return {"seed": seed,
            "accuracy": round(majority_accuracy(model.predict(X_tr), y_tr,
                                                model.predict(X_va), y_va), 4),
            "kmeans": round(majority_accuracy(km.labels_, y_tr, km.predict(X_va), y_va), 4),
            "train_s": seconds}  # fmt: skip


def aae2d(data, params: dict, seed: int) -> dict:
    from aekit.metrics import knn_accuracy, mmd2, trustworthiness

    X_tr, y_tr, X_va, y_va = fit_split(data)
    t = time.perf_counter()
    model = AdversarialAutoencoder(**{"latent_dim": 2, "random_state": seed, **params})
    model.fit(X_tr)
    seconds = round(time.perf_counter() - t)
    Z_tr, Z_va = model.transform(X_tr), model.transform(X_va)
    P = model.sample_prior(2000, random_state=100)
    floor = mmd2(model.sample_prior(len(Z_va), random_state=101), P)
    return {
        "seed": seed,
        "knn5": round(knn_accuracy(Z_tr, y_tr, Z_va, y_va, 5), 4),
        "trust": round(trustworthiness(X_va, Z_va, k=5, max_rows=5000, seed=0), 4),
        "score": round(float(model.score(X_va)), 2),
        "prior_mmd_ratio": round(mmd2(Z_va, P) / floor, 1),
        "epochs": model.n_epochs_,
        "train_s": seconds,
    }


def probe(data, seed: int) -> dict:
    from sklearn.linear_model import LogisticRegression

    from aekit import StackedAutoencoder

    X, y, X_va, y_va = labels_split(data, seed)
    stack = StackedAutoencoder(hidden=(500,), latent_dim=250, code_activation="relu",
                               max_epochs=0, random_state=seed).fit(X)  # fmt: skip
    labelled = y >= 0
    on_codes = LogisticRegression(C=0.1, max_iter=2000).fit(stack.transform(X)[labelled],
                                                             y[labelled])  # fmt: skip
    on_pixels = LogisticRegression(C=0.1, max_iter=2000).fit(X[labelled], y[labelled])
    return {
        "seed": seed,
        "probe_on_pretrained_codes": round(float(on_codes.score(stack.transform(X_va), y_va)), 4),
        "probe_on_pixels": round(float(on_pixels.score(X_va, y_va)), 4),
    }


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("row", choices=["compress", "look", "pretrain", "probe", "generate", "semi",
                                   "cluster", "aae2d"])  # fmt: skip
    p.add_argument(
        "args", nargs="*", help="compress: LATENT PARAMS; generate: K EPOCHS PARAMS; others: PARAMS"
    )
    p.add_argument("--seeds", default="0", help="the rows with seeds: comma-separated seeds")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--ll-rows", type=int, default=1000, help="generate: validation rows")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = load_dataset("fashion-mnist", download=False)
    if args.row == "compress":
        latent, params = int(args.args[0]), json.loads(args.args[1])
        print(json.dumps({"params": params, "latent": latent, **compress(data, latent, params)}))
    elif args.row == "look":
        params = json.loads(args.args[0])
        print(json.dumps({"params": params, **look(data, params)}))
    elif args.row == "generate":
        k, epochs, params = int(args.args[0]), int(args.args[1]), json.loads(args.args[2])
        for seed in map(int, args.seeds.split(",")):
            out = generate(data, k, epochs, params, seed, args.ll_rows)
            print(json.dumps({"params": params, **out}), flush=True)
    elif args.row in ("semi", "cluster", "aae2d"):
        params, row = json.loads(args.args[0]), {"semi": semi, "cluster": cluster,
                                                 "aae2d": aae2d}[args.row]  # fmt: skip
        for seed in map(int, args.seeds.split(",")):
            print(json.dumps({"params": params, **row(data, params, seed)}), flush=True)
    elif args.row == "probe":
        for seed in map(int, args.seeds.split(",")):
            print(json.dumps(probe(data, seed)), flush=True)
    else:
        params = json.loads(args.args[0])
        for seed in map(int, args.seeds.split(",")):
            print(json.dumps({"params": params, **pretrain(data, params, seed)}), flush=True)


if __name__ == "__main__":
    main()
