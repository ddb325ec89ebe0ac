"""Shared fixtures. Models are trained once per session and reused (save/load, CLI, plots).

One torch thread: results are then bit-reproducible, and two threads fighting another process for
this machine's two cores run far slower than one.
"""

from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np
import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's 8x8 digits in [0, 1], the seeded 80/20 split (1437 train / 360 test)."""
    from aekit.datasets import load_dataset

    return load_dataset("digits")


@pytest.fixture(scope="session")
def small_digits(digits):
    """500 training rows: enough to learn, fast to train."""
    return digits.X_train[:500], digits.X_test


@pytest.fixture(scope="session")
def fitted_ae(small_digits):
    """A small MLP autoencoder trained for 20 epochs (reused by many tests; do not mutate)."""
    from aekit import Autoencoder

    X, _ = small_digits
    return Autoencoder(latent_dim=3, hidden=(32,), max_epochs=20, random_state=0).fit(X)


def make_fitted(**params):
    """A tiny freshly trained autoencoder for tests that mutate their model."""
    from aekit import Autoencoder

    X = np.random.default_rng(0).random((120, 10), dtype=np.float32)
    defaults = dict(latent_dim=2, hidden=(8,), max_epochs=3, random_state=0)
    return Autoencoder(**{**defaults, **params}).fit(X), X
