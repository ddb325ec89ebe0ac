"""aekit's public API as a user's code would call it, for mypy (``tests/test_typing.py``).

Only type-checked, never run by the tests: everything is inside functions, so importing it
trains nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from sklearn.ensemble import IsolationForest
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler

import aekit
from aekit import (
    VAE,
    AAEClustering,
    AdversarialAutoencoder,
    Autoencoder,
    Callback,
    Checkpoint,
    DenoisingAutoencoder,
    EpochLog,
    OutlierDetector,
    Run,
    SemiSupervisedAAE,
    StackedClassifier,
    TimeLimit,
)
from aekit.training import Trainer


class StopAtLoss(Callback):
    """A user's callback: stops training once the validation loss is low enough."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold

    def on_epoch_end(self, trainer: Trainer, estimator: Any, logs: dict[str, Any]) -> None:
        if logs.get("val_loss", np.inf) < self.threshold:
            trainer.stop_training = True


def autoencoder(X: np.ndarray, X_val: np.ndarray, folder: Path) -> float:
    model = Autoencoder(latent_dim=4, max_epochs=2, random_state=0)
    fitted: Autoencoder = model.fit(
        X, validation_data=X_val, callbacks=[StopAtLoss(0.1), Checkpoint(folder / "ckpt"),
                                             EpochLog(folder), TimeLimit(60.0)]
    )  # fmt: skip
    codes: np.ndarray = fitted.transform(X)
    rows: np.ndarray = fitted.inverse_transform(codes)
    scores: np.ndarray = fitted.score_samples(X)
    flags: np.ndarray = fitted.predict(X)
    margin: np.ndarray = fitted.decision_function(X)
    fitted.set_offset(X).partial_fit(X).continue_fit(X)
    fitted.save(folder / "model")
    loaded = aekit.load(folder / "model", classes=[Autoencoder])
    files: dict[str, Path] = fitted.export(folder / "onnx", scaling=(0.0, np.ones(X.shape[1])))
    print(rows.shape, scores.mean(), flags, margin, loaded, files)
    return fitted.score(X)


def vae(X: np.ndarray) -> np.ndarray:
    model = VAE(latent_dim=2, max_epochs=1).fit(X)
    ll: float = model.log_likelihood(X, n_samples=10, random_state=0)
    elbo: float = model.elbo(X, random_state=np.random.RandomState(0))
    units: int = model.active_units(X)
    print(ll, elbo, units)
    return model.sample(5, random_state=0, mean=False)


def sources(loader: Any, batches: list[np.ndarray]) -> None:
    """A DataLoader (torch is not needed to type this file) and a list of batches."""
    model = DenoisingAutoencoder(max_epochs=1).fit(batches)
    print(model.transform(loader), model.denoise(batches), model.corrupt(batches[0], 0))


def detectors(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    detector = OutlierDetector(StackedClassifier(max_epochs=1), contamination=0.05).fit(X, y)
    labels: np.ndarray = detector.predict(X)
    print(labels, detector.decision_function(X), detector.score_samples(X))
    forest = OutlierDetector(IsolationForest()).fit_predict(X)
    return forest


def classifiers(X: np.ndarray, y: np.ndarray) -> None:
    semi = SemiSupervisedAAE(max_epochs=1).fit(X, y)
    proba: np.ndarray = semi.predict_proba(X)
    accuracy: float = semi.score(X, y)
    clusters = AAEClustering(n_clusters=3, max_epochs=1).fit(X)
    aae = AdversarialAutoencoder(max_epochs=1).partial_fit(X, y, classes=np.unique(y))
    prior: np.ndarray = aae.sample_prior(10, random_state=1)
    print(proba, accuracy, clusters.predict(X), clusters.labels_, prior)


def pipeline(X: np.ndarray) -> np.ndarray:
    pipe = Pipeline([("scale", MinMaxScaler()), ("ae", Autoencoder(max_epochs=1))])
    pipe.fit(X)
    return np.asarray(pipe.transform(X))


def datasets_and_runs(folder: Path) -> None:
    data = aekit.load_dataset("digits", data_dir=folder, scale="minmax", random_state=0)
    run = Run.open(folder)
    X, y = run.rows("test", label_column=None)
    written, skipped = run.write_figures(X, y)
    print(data.X_train.shape, run.encode(X), run.reconstruct(X, scaled=True), written, skipped)
