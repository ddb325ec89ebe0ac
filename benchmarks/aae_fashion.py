"""Adversarial autoencoders on Fashion-MNIST (issue 6's experiment; results in
docs/experiments.md).

1. Semi-supervised classification with 100 and 1,000 labels (stratified, seeded) against the same
   network trained on those labels alone (``labels_only=True``: same optimiser, epochs and steps).
2. Unsupervised clustering with 16 and 30 clusters: test cluster accuracy (each cluster assigned
   its majority class, from the training rows).
3. 2-D codes: 5-nearest-neighbour test accuracy (fitted on the training codes) and
   trustworthiness (k=5, on a seeded subsample of the test set) against PCA-2.

Usage::

    PYTHONPATH=src python benchmarks/aae_fashion.py --epochs 20 --hidden 512,256 --threads 1
    PYTHONPATH=src python benchmarks/aae_fashion.py --only 2d --adversarial-lr 2e-4

Prints one line per model (with wall time) and a JSON summary at the end; ``--only`` picks parts.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.manifold import trustworthiness

from aekit import AAEClustering, AdversarialAutoencoder, SemiSupervisedAAE
from aekit.datasets import load_dataset
from aekit.metrics import cluster_accuracy, knn_accuracy


def few_labels(y: np.ndarray, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.full(len(y), -1)
    classes = np.unique(y)
    for c in classes:
        idx = rng.choice(np.flatnonzero(y == c), n // len(classes), replace=False)
        out[idx] = y[idx]
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--hidden", default="512,256")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--trust-rows", type=int, default=5000, help="test rows for trustworthiness")
    p.add_argument("--only", default="semi,cluster,2d")
    p.add_argument("--adversarial-lr", type=float,
                   help="discriminator_lr and generator_lr (the separate generator phase: "
                   "generator_weight=None)")  # fmt: skip
    p.add_argument("--generator-weight", default=None,
                   help="generator_weight (a number, or 'none' for the separate phase); "
                   "default: each model's own")  # fmt: skip
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    data = load_dataset("fashion-mnist")
    X, y, X_test, y_test = data.X_train, data.y_train, data.X_test, data.y_test
    common = dict(hidden=tuple(int(h) for h in args.hidden.split(",")), loss="bce",
                  max_epochs=args.epochs, batch_size=args.batch_size, validation_fraction=0,
                  device=args.device, random_state=args.seed)  # fmt: skip
    if args.generator_weight is not None:
        weight = args.generator_weight
        common.update(generator_weight=None if weight == "none" else float(weight))
    if args.adversarial_lr:
        common.update(discriminator_lr=args.adversarial_lr, generator_lr=args.adversarial_lr,
                      generator_weight=None)  # fmt: skip
    results: dict[str, dict] = {}

    def run(name: str, make, fit):
        start = time.perf_counter()
        model = make()
        fit(model)
        seconds = time.perf_counter() - start
        results[name] = {"seconds": round(seconds, 1)}
        return model, results[name]

    parts = args.only.split(",")
    if "semi" in parts:
        for n in (100, 1000):
            y_few = few_labels(y, n, args.seed)
            for kind, extra in (("semi", {}), ("labels_only", {"labels_only": True})):
                model, r = run(f"{kind}_{n}", lambda e=extra: SemiSupervisedAAE(**common, **e),
                               lambda m, yf=y_few: m.fit(X, yf))  # fmt: skip
                r["test_accuracy"] = float(model.score(X_test, y_test))
                print(f"{kind:>12} {n:>5} labels: test accuracy {r['test_accuracy']:.4f} "
                      f"({r['seconds']:.0f} s)", flush=True)  # fmt: skip
    if "cluster" in parts:
        for k in (16, 30):
            model, r = run(f"cluster_{k}", lambda k=k: AAEClustering(n_clusters=k, **common),
                           lambda m: m.fit(X))  # fmt: skip
            train_clusters = model.labels_
            test_clusters = model.predict(X_test)
            r["train_cluster_accuracy"] = cluster_accuracy(y, train_clusters)
            # clusters labelled by their majority class on the training rows, scored on test rows
            majority = {c: np.bincount(y[train_clusters == c]).argmax()
                        for c in np.unique(train_clusters)}  # fmt: skip
            pred = np.array([majority.get(c, -1) for c in test_clusters])
            r["test_cluster_accuracy"] = float((pred == y_test).mean())
            r["clusters_used"] = len(np.unique(train_clusters))
            print(f"     cluster {k:>5}: test accuracy {r['test_cluster_accuracy']:.4f} (train "
                  f"{r['train_cluster_accuracy']:.4f}, {r['clusters_used']} used, "
                  f"{r['seconds']:.0f} s)", flush=True)  # fmt: skip
    if "2d" in parts:
        sub = np.random.default_rng(0).choice(len(X_test), min(args.trust_rows, len(X_test)),
                                              replace=False)  # fmt: skip
        pca = PCA(2, random_state=0).fit(X)
        codes = {"pca2": (pca.transform(X), pca.transform(X_test), 0.0)}
        for prior in ("gaussian", "mixture"):
            model, r = run(f"aae2d_{prior}",
                           lambda pr=prior: AdversarialAutoencoder(latent_dim=2, prior=pr,
                                                                   **common),
                           lambda m: m.fit(X))  # fmt: skip
            codes[f"aae2d_{prior}"] = (model.transform(X), model.transform(X_test), r["seconds"])
        for name, (Z, Z_test, seconds) in codes.items():
            r = results.setdefault(name, {"seconds": seconds})
            r["knn5_accuracy"] = knn_accuracy(Z, y, Z_test, y_test, 5)
            r["trustworthiness"] = float(trustworthiness(X_test[sub], Z_test[sub], n_neighbors=5))
            print(f"{name:>16}: 5-NN {r['knn5_accuracy']:.4f}, trustworthiness "
                  f"{r['trustworthiness']:.4f} ({len(sub)} test rows)", flush=True)  # fmt: skip
    print(
        json.dumps(
            {
                "args": vars(args),
                "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
                "results": results,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
