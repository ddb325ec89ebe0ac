"""What the test modules share: tiny data, tiny models, and each family's test configuration.

The test modules import from here, never from each other (a module's tests then run, and fail,
on their own). Fixtures stay in conftest.py.

``FAMILIES`` holds, for every family of :data:`aekit.models.catalog.FAMILIES` (keyed by its CLI
name), what tests/test_common.py's battery and tests/test_tags.py need: the instances to check
and the variants worth checking too. A family added to the catalogue needs no entry here: it
gets :func:`generic_family`'s tiny configuration, and so every check, with no test edited. An
entry here overrides that, where a family needs other sizes, variants, CLI flags or expected
failures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

import aekit
from aekit.models import catalog
from aekit.tags import aekit_tags

# --- tiny data ----------------------------------------------------------------------------------

TINY_ROWS, TINY_FEATURES, TINY_CLASSES = 120, 10, 3


def tiny_X(n: int = TINY_ROWS, d: int = TINY_FEATURES, seed: int = 0) -> np.ndarray:
    """``n`` rows of ``d`` uniform values in [0, 1), float32 (valid for every loss)."""
    return np.random.default_rng(seed).random((n, d), dtype=np.float32)


def tiny_y(n: int = TINY_ROWS) -> np.ndarray:
    """Labels 0, 1, 2, 0, 1, 2, ...: every class in any 3 consecutive rows."""
    return np.arange(n) % TINY_CLASSES


def few_labels(y: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """``y`` with all but ``per_class`` seeded rows of each class set to -1 (unlabelled)."""
    rng = np.random.default_rng(seed)
    out = np.full(len(y), -1)
    for c in np.unique(y):
        idx = rng.choice(np.flatnonzero(y == c), per_class, replace=False)
        out[idx] = y[idx]
    return out


def uses_labels(estimator) -> bool:
    """Whether ``estimator`` learns from ``y``, as its ``uses_labels`` tag declares (a
    classifier, an AAE that is ``supervised`` or has ``prior_labels``, a new family that says
    so); the others ignore it."""
    return aekit_tags(estimator).uses_labels


def labels_for(estimator, n: int = TINY_ROWS) -> np.ndarray | None:
    """Tiny labels for ``estimator``, or None where it learns without them: a classifier gets a
    third of the rows labelled (the rest -1), a supervised or label-conditioned AAE every row."""
    if not uses_labels(estimator):
        return None
    from sklearn.base import is_classifier

    y = tiny_y(n)
    return few_labels(y, n // TINY_CLASSES // 3, 0) if is_classifier(estimator) else y


def make_fitted(**params):
    """A tiny freshly trained autoencoder for tests that mutate their model."""
    X = tiny_X()
    defaults = dict(latent_dim=2, hidden=(8,), max_epochs=3, random_state=0)
    return aekit.Autoencoder(**{**defaults, **params}).fit(X), X


# --- scikit-learn's checks: the failures expected, and why -------------------------------------

FLOAT32_NOISE = (
    "float32 matrix products differ at the 1e-7 level between batch sizes and row orders (the "
    "kernels block the rows differently), above this check's rtol of 1e-7; outputs agree to "
    "about 1e-6"
)
EXPECTED_FAILED_CHECKS = {
    "check_methods_subset_invariance": FLOAT32_NOISE,
    "check_methods_sample_order_invariance": FLOAT32_NOISE,
}
CLASSIFIER_EXPECTED = {
    **EXPECTED_FAILED_CHECKS,
    "check_classifiers_classes": (
        "it fits labels [-1, 1], and rows labelled -1 are unlabelled (unlabeled_label=-1), so "
        "one class is left; unlabeled_label=None makes -1 an ordinary class"
    ),
}


# --- each family's test configuration ----------------------------------------------------------


@dataclass(frozen=True)
class Family:
    """How tests/test_common.py exercises one catalogue family."""

    # parameters of a tiny model of the family (on tiny_X: a fraction of a second to fit)
    tiny: dict[str, Any]
    # instances for scikit-learn's checks and the save/load/continue check
    checked: tuple[Any, ...]
    # scikit-learn checks that fail for this family, each with its reason
    expected_failures: dict[str, str] = field(default_factory=lambda: EXPECTED_FAILED_CHECKS)
    # more instances for the save/load/continue check and the tag checks (variants that need
    # labels, or whose tags differ)
    variants: tuple[Any, ...] = ()
    # extra flags for `aekit train <family>` on a tiny labelled .npz
    cli: tuple[str, ...] = ()


_TINY = dict(latent_dim=2, hidden=(8,), max_epochs=3)
_AAE_TINY = dict(hidden=(16,), discriminator_hidden=(16,), max_epochs=5, random_state=0)
_AAE_FAST = dict(hidden=(32,), discriminator_hidden=(32,), max_epochs=3, random_state=0)


# What a family without an entry in _families() is fitted with: tiny, and quick enough for the
# scikit-learn checks, the save/load check and the CLI test.
GENERIC = dict(latent_dim=2, hidden=(8,), max_epochs=2, batch_size=32, random_state=0)


def generic_family(cls) -> Family:
    """The test configuration of a catalogue family without an entry in :func:`_families`: one
    tiny instance for every check, with the expected failures common to the autoencoders (and
    to the classifiers, for a classifier)."""
    from sklearn.base import is_classifier

    instance = cls(**GENERIC)
    expected = CLASSIFIER_EXPECTED if is_classifier(instance) else EXPECTED_FAILED_CHECKS
    return Family(dict(_TINY), (instance,), expected_failures=expected)


def _families() -> dict[str, Family]:
    Sparse, Denoising = aekit.SparseAutoencoder, aekit.DenoisingAutoencoder
    Contractive, VAE, AAE = aekit.ContractiveAutoencoder, aekit.VAE, aekit.AdversarialAutoencoder
    return {
        "ae": Family(_TINY, (aekit.Autoencoder(max_epochs=5, random_state=0),)),
        "sparse": Family(_TINY, (
            Sparse(hidden=(16,), latent_dim=4, max_epochs=3, random_state=0),
            Sparse(penalty="kl", hidden=(16,), latent_dim=4, max_epochs=3, random_state=0),
        )),
        "denoising": Family(_TINY, (
            Denoising(hidden=(16,), max_epochs=3, random_state=0),
            Denoising(noise="salt_and_pepper", hidden=(16,), max_epochs=3, random_state=0),
        )),
        "contractive": Family(_TINY, (
            Contractive(hidden=(16,), max_epochs=3, random_state=0),
            Contractive(jacobian="hutchinson", hidden=(16,), max_epochs=3, random_state=0),
        )),
        "stacked": Family(
            {**_TINY, "pretrain_epochs": 1},
            (aekit.StackedAutoencoder(hidden=(8,), latent_dim=2, pretrain_epochs=2, max_epochs=3,
                                      random_state=0),),
            variants=(aekit.StackedAutoencoder(layer_model="sparse", hidden=(8,), latent_dim=2,
                                               pretrain_epochs=1, max_epochs=3, random_state=0),),
            cli=("--set", "pretrain_epochs=1"),
        ),
        "stacked-classifier": Family(
            {**_TINY, "pretrain_epochs": 1},
            (aekit.StackedClassifier(hidden=(16,), pretrain_epochs=2, max_epochs=30, lr=1e-2,
                                     random_state=0),),
            expected_failures=CLASSIFIER_EXPECTED,
            cli=("--set", "pretrain_epochs=1"),
        ),
        "vae": Family(
            _TINY,
            (VAE(hidden=(16,), max_epochs=3, random_state=0),
             VAE(hidden=(16,), n_importance_samples=3, max_epochs=3, random_state=0)),
            variants=(VAE(binarize="dynamic", hidden=(16,), max_epochs=3, random_state=0),),
        ),
        "aae": Family(
            {**_TINY, "discriminator_hidden": (8,)},
            (AAE(**_AAE_TINY),),
            variants=(
                AAE(prior="mixture", n_components=TINY_CLASSES, prior_labels=True, **_AAE_FAST),
                AAE(supervised=True, posterior="gaussian", **_AAE_FAST),
            ),
        ),
        "aae-semi": Family(
            {**_TINY, "discriminator_hidden": (8,)},
            (aekit.SemiSupervisedAAE(**{**_AAE_TINY, "max_epochs": 30, "lr": 1e-2}),),
            expected_failures=CLASSIFIER_EXPECTED,
            # the classification phase alone: no decoder to offer (its tags say so)
            variants=(aekit.SemiSupervisedAAE(labels_only=True, **_AAE_FAST),),
        ),
        "aae-cluster": Family(
            {**_TINY, "discriminator_hidden": (8,), "n_clusters": TINY_CLASSES},
            (aekit.AAEClustering(n_clusters=3, latent_dim=1,
                                 **{**_AAE_TINY, "max_epochs": 30, "lr": 1e-2}),),
            cli=("--n-clusters", str(TINY_CLASSES)),
        ),
    }  # fmt: skip


EXPLICIT: dict[str, Family] = _families()
FAMILIES: dict[str, Family] = {
    name: EXPLICIT[name] if name in EXPLICIT else generic_family(catalog.cli_class(name))
    for name in catalog.FAMILIES
}


def row_entropy(X) -> np.ndarray:
    """Each row's binary-cross-entropy floor ``-sum_j [x log x + (1 - x) log(1 - x)]`` (0 log 0
    = 0): the loss of a perfect reconstruction, which ``score_samples`` takes off."""
    X = np.asarray(X, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(X > 0, X * np.log(X), 0) + np.where(X < 1, (1 - X) * np.log(1 - X), 0)
    return -terms.sum(1)
