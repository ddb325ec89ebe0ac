"""Shared fixtures. Models are trained once per session and reused (save/load, CLI, plots).

One torch thread by default: results are then bit-reproducible, and two threads fighting another
process for a two-core machine's cores run far slower than one. AEKIT_TEST_THREADS=2 runs the
suite at two threads, to check that the learning claims (each decided on a median over seeds or a
paired mean, with margins measured at one and two threads) hold there too.
"""

from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")
TEST_THREADS = int(os.environ.get("AEKIT_TEST_THREADS", "1"))
# Training keeps this count too (aekit would otherwise choose for torch's default count: one
# thread for small models); CLI subprocesses inherit it.
os.environ.setdefault("AEKIT_THREADS", str(TEST_THREADS))
if TEST_THREADS > 1:
    # Waiting threads sleep instead of spinning: on a busy two-core machine spinning threads made
    # a two-thread run over ten times slower. Set before torch starts its OpenMP runtime.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest  # noqa: E402 (after the thread settings)
import torch  # noqa: E402

torch.set_num_threads(TEST_THREADS)


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


@pytest.fixture
def ctrl_c_in_epoch_3(monkeypatch):
    """Training raises KeyboardInterrupt as its third epoch starts, as Ctrl-C would."""
    from aekit.training import Trainer

    original = Trainer._train_epoch

    def interrupt_in_epoch_3(self, *args):
        if self.epoch == 2:
            raise KeyboardInterrupt
        return original(self, *args)

    monkeypatch.setattr(Trainer, "_train_epoch", interrupt_in_epoch_3)
