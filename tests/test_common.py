"""One battery for every family in the catalogue (aekit.models.catalog.FAMILIES).

A family added to the catalogue gets every check here with no test edited: from its entry in
tests/helpers.py (FAMILIES) where it has one, else from a generic tiny configuration
(``helpers.generic_family``):

* scikit-learn's estimator checks, with the failures expected of each family and their reasons;
* fit N epochs, save, load, partial_fit M epochs: the same weights, outputs and losses, bit for
  bit, as one fit of N + M epochs;
* the same random_state gives the same model, another gives another;
* fitting and using a model leaves the global random generators (torch, numpy, random) alone;
* ``aekit train <family>`` on a tiny labelled .npz, ``aekit encode`` of its run, and
  ``aekit train --resume``: continued as if never stopped, or refused with the reason for a
  family that trains in stages.
"""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.utils.estimator_checks import parametrize_with_checks

import aekit
from aekit.cli import main
from aekit.models import catalog
from aekit.tags import aekit_tags

from . import helpers
from .helpers import FAMILIES, TINY_ROWS, labels_for, tiny_X, tiny_y

CATALOGUE = list(catalog.FAMILIES)


def family(name: str):
    """The test configuration of catalogue family ``name``."""
    return FAMILIES[name]


def tiny_model(name: str, **params):
    """An unfitted tiny model of family ``name`` (its configuration's ``tiny`` parameters)."""
    return catalog.cli_class(name)(**{**family(name).tiny, **params})


def test_every_catalogue_family_has_a_test_configuration():
    assert list(FAMILIES) == CATALOGUE
    assert not set(helpers.EXPLICIT) - set(catalog.FAMILIES), "entries of no catalogue family"
    for name, config in FAMILIES.items():
        cls = catalog.cli_class(name)
        assert config.checked, f"{name}: no instance for scikit-learn's checks"
        for est in (*config.checked, *config.variants):
            assert type(est) is cls, f"{name}: {est!r} is not a {cls.__name__}"


@dataclasses.dataclass(kw_only=True, repr=False, eq=False)
class NewFamily(aekit.ContractiveAutoencoder):
    """A family the helpers have no entry for."""


@dataclasses.dataclass(kw_only=True, repr=False, eq=False)
class NewLabelledFamily(aekit.Autoencoder):
    """A family that declares it learns from labels, with no parameter named for it."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.aekit.uses_labels = True
        return tags


def test_a_family_without_an_entry_gets_a_generic_tiny_configuration():
    """A new catalogue family needs no entry in helpers.py: it is checked as a tiny model (an
    explicit entry overrides this), and it gets labels if its tags say it learns from them."""
    config = helpers.generic_family(NewFamily)
    (instance,) = config.checked
    assert type(instance) is NewFamily and not config.variants and not config.cli
    assert {k: instance.get_params()[k] for k in helpers.GENERIC} == helpers.GENERIC
    assert config.expected_failures == helpers.EXPECTED_FAILED_CHECKS
    classifier = helpers.generic_family(aekit.StackedClassifier)
    assert classifier.expected_failures == helpers.CLASSIFIER_EXPECTED
    for name, entry in helpers.EXPLICIT.items():
        assert FAMILIES[name] is entry
    # labels follow the uses_labels tag, not parameter names
    assert labels_for(NewFamily()) is None
    assert np.array_equal(labels_for(NewLabelledFamily()), tiny_y())
    assert labels_for(aekit.AdversarialAutoencoder(supervised=True)) is not None
    assert labels_for(aekit.AdversarialAutoencoder()) is None


# --- scikit-learn's checks -----------------------------------------------------------------------

CHECKED = [est for name in CATALOGUE for est in FAMILIES[name].checked]
EXPECTED = {catalog.cli_class(name): config.expected_failures for name, config in FAMILIES.items()}


@parametrize_with_checks(CHECKED, expected_failed_checks=lambda est: EXPECTED[type(est)])
def test_sklearn_compatible(estimator, check):
    check(estimator)


# --- save, load, continue ----------------------------------------------------------------------

N, M = 2, 2  # epochs before the save, epochs after it
CONTINUED = [
    pytest.param(est, id=f"{name}-{i}")
    for name in CATALOGUE
    for i, est in enumerate((*FAMILIES[name].checked, *FAMILIES[name].variants))
]


def _assert_same_state(a, b):
    sa, sb = a.module_.state_dict(), b.module_.state_dict()
    assert list(sa) == list(sb)
    for key, value in sa.items():  # weights and buffers, discriminators included
        assert torch.equal(value, sb[key]), key


def _assert_same_outputs(a, b, X):
    assert np.array_equal(a.transform(X), b.transform(X))
    if hasattr(a, "predict_proba"):
        assert np.array_equal(a.predict_proba(X), b.predict_proba(X))
    if hasattr(a, "sample"):
        assert np.array_equal(a.sample(3, random_state=2), b.sample(3, random_state=2))


@pytest.mark.parametrize("estimator", CONTINUED)
def test_save_load_partial_fit_continues_as_one_uninterrupted_fit(estimator, tmp_path):
    """fit N epochs, save, load, partial_fit M times == fit N + M epochs, bit for bit: the
    weights, the optimiser state, the epoch count and the random generators all survive the
    files. No validation split (partial_fit trains on every row it is given), a batch size
    that leaves a short last batch, and a constant rate (a schedule over max_epochs differs
    between a budget of N and of N + M; the next test covers the "auto" one)."""
    X, y = tiny_X(), labels_for(estimator)
    fixed = dict(validation_fraction=0, batch_size=32, lr_schedule="none")
    whole = clone(estimator).set_params(max_epochs=N + M, **fixed).fit(X, y)
    part = clone(estimator).set_params(max_epochs=N, **fixed).fit(X, y)
    part.save(tmp_path / "m")
    loaded = aekit.load(tmp_path / "m")
    assert type(loaded) is type(part) and loaded.get_params() == part.get_params()
    _assert_same_state(loaded, part)
    _assert_same_outputs(loaded, part, X)
    for _ in range(M):
        loaded.partial_fit(X, y)
    assert loaded.n_epochs_ == whole.n_epochs_ == N + M
    assert [h["loss"] for h in loaded.history_] == [h["loss"] for h in whole.history_]
    _assert_same_state(loaded, whole)
    _assert_same_outputs(loaded, whole, X)


AUTO_SCHEDULED = [p for p in CONTINUED if p.values[0].get_params()["lr_schedule"] == "auto"]


@pytest.mark.parametrize("estimator", AUTO_SCHEDULED)
def test_the_auto_schedule_survives_a_save_and_partial_fit_continues_at_the_base_rate(
    estimator, tmp_path
):
    """With the "auto" schedule (the plain families' default): fit N epochs (its cooldown
    included), save, load, partial_fit M times == the same without the save, bit for bit, and
    the partial_fit epochs run at the base rate."""
    assert {"ae-0", "denoising-0", "sparse-0", "contractive-0"} <= {p.id for p in AUTO_SCHEDULED}
    X, y = tiny_X(), labels_for(estimator)
    fixed = dict(validation_fraction=0, batch_size=32, max_epochs=N)
    kept = clone(estimator).set_params(**fixed).fit(X, y)
    kept.save(tmp_path / "m")
    loaded = aekit.load(tmp_path / "m")
    for _ in range(M):
        kept.partial_fit(X, y)
        loaded.partial_fit(X, y)
    assert [h["lr"] for h in loaded.history_][N:] == [estimator.lr] * M
    assert [h["loss"] for h in loaded.history_] == [h["loss"] for h in kept.history_]
    _assert_same_state(loaded, kept)
    _assert_same_outputs(loaded, kept, X)


# --- seeds and the global random state ---------------------------------------------------------


@pytest.mark.parametrize("name", CATALOGUE)
def test_same_seed_same_model_another_seed_another(name):
    X = tiny_X()
    a, b, c = (tiny_model(name, random_state=seed) for seed in (3, 3, 4))
    y = labels_for(a)
    for model in (a, b, c):
        model.fit(X, y)
    _assert_same_state(a, b)
    assert np.array_equal(a.transform(X), b.transform(X))
    assert a.history_[-1]["loss"] == b.history_[-1]["loss"]
    assert not np.array_equal(a.transform(X), c.transform(X))


def _global_states():
    return torch.get_rng_state(), np.random.get_state(), random.getstate()  # noqa: NPY002


def _assert_global_states_are(before, when):
    torch_state, np_state, py_state = _global_states()
    assert torch.equal(torch_state, before[0]), f"{when} drew from torch's global generator"
    assert np.array_equal(np_state[1], before[1][1]) and np_state[2:] == before[1][2:], (
        f"{when} drew from numpy's global generator"
    )
    assert py_state == before[2], f"{when} drew from Python's random module"


@pytest.mark.parametrize(
    "random_state",
    [lambda: None, lambda: 0, lambda: np.random.RandomState(1)],
    ids=["None", "int", "RandomState"],
)
@pytest.mark.parametrize("name", CATALOGUE)
def test_global_random_states_untouched(name, random_state):
    """fit, transform, score, predict_proba and sample (with and without a seed) use their own
    generators: the caller's torch, numpy and random streams are as they were."""
    X = tiny_X()
    model = tiny_model(name, random_state=random_state())
    y = labels_for(model)
    before = _global_states()
    model.fit(X, y)
    _assert_global_states_are(before, "fit")
    model.transform(X)
    _assert_global_states_are(before, "transform")
    model.score(X, tiny_y()) if y is not None else model.score(X)
    _assert_global_states_are(before, "score")
    if hasattr(model, "predict_proba"):
        model.predict_proba(X)
        _assert_global_states_are(before, "predict_proba")
    if hasattr(model, "sample"):
        model.sample(3)
        model.sample(3, random_state=1)
        _assert_global_states_are(before, "sample")


# --- the command line --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_npz(tmp_path_factory):
    """tiny_X with labels, as the CLI reads them (X and y in one .npz)."""
    path = tmp_path_factory.mktemp("data") / "tiny.npz"
    np.savez(path, X=tiny_X(), y=tiny_y())
    return path


@pytest.mark.parametrize("name", CATALOGUE)
def test_cli_trains_encodes_and_resumes(name, tiny_npz, tmp_path, capsys):
    """``aekit train`` and ``aekit encode`` work for every family; ``--resume --epochs 3`` of a
    2-epoch run gives the 3-epoch run's weights, or, for a family that trains in stages
    (tagged ``resumable=False``), exit status 2 and the reason."""
    cls = catalog.cli_class(name)
    threads = str(torch.get_num_threads())  # the tests' count, for both runs alike
    # A constant rate: a schedule over --epochs runs differently in a budget of 2 and of 3
    # (raising it stretches the schedule: tests/test_autoencoder.py).
    common = ["--data", str(tiny_npz), "--hidden", "8", "--latent", "2", "--seed", "0",
              "--threads", threads, "-q", "--no-plots", "--set", "lr_schedule=none",
              *family(name).cli]  # fmt: skip
    run = tmp_path / "run"
    assert main(["train", name, *common, "--epochs", "2", "--out", str(run)]) == 0
    model = aekit.load(run)
    assert type(model) is cls and model.n_epochs_ == 2
    codes = tmp_path / "codes.npy"
    assert main(["encode", str(run), "--data", str(tiny_npz), "--out", str(codes)]) == 0
    Z = np.load(codes)
    assert Z.shape == (TINY_ROWS, model.transform(tiny_X()[:1]).shape[1]) and np.isfinite(Z).all()
    capsys.readouterr()
    resumed = main(["train", "--resume", "--out", str(run), "--epochs", "3", "--threads",
                    threads, "-q", "--no-plots"])  # fmt: skip
    if not aekit_tags(cls()).resumable:
        assert resumed == 2
        assert f"a {cls.__name__} trains in stages" in capsys.readouterr().err
        assert aekit.load(run).n_epochs_ == 2  # untouched
        return
    assert resumed == 0, capsys.readouterr().err
    whole = tmp_path / "whole"
    assert main(["train", name, *common, "--epochs", "3", "--out", str(whole)]) == 0
    a, b = aekit.load(run), aekit.load(whole)
    assert a.n_epochs_ == b.n_epochs_ == 3
    _assert_same_state(a, b)
