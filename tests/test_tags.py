"""Issue 12: capabilities are declared (tags, available_if), fitted choices are public
(``loss_``, ``best_epoch_``), and the code that serves every family reads the tags instead of
probing models."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.utils import get_tags

import aekit
from aekit.models import catalog
from aekit.tags import AekitTags, Tags, aekit_tags

from .helpers import FAMILIES

# Each family, in the settings whose tags differ: the instances of its test configuration
# (tests/helpers.py: explicit, or generic for a family without an entry), variants included.
SETTINGS = [
    pytest.param(est, id=repr(est))
    for config in FAMILIES.values()
    for est in (*config.checked, *config.variants)
]

# tag -> the methods it promises (present exactly when the tag is True)
METHODS = {
    "has_decoder": ("inverse_transform", "reconstruct", "interpolate", "traverse"),
    "generative": ("sample",),
    "generates_by_class": ("generate",),
    "has_prior": ("sample_prior",),
    "has_likelihood": ("elbo", "log_likelihood", "active_units"),
    "denoising": ("corrupt", "denoise"),
    "contractive": ("jacobian_norm",),
}


def test_every_family_is_covered():
    assert {type(p.values[0]).__name__ for p in SETTINGS} == set(catalog.CLASS_MODULES)
    assert any(getattr(p.values[0], "labels_only", False) for p in SETTINGS)


@pytest.mark.parametrize("estimator", SETTINGS)
def test_tags_tell_the_truth_about_methods(estimator):
    """hasattr agrees with every tag that promises methods: nothing exists only to raise."""
    model = clone(estimator)
    tags = get_tags(model)
    assert isinstance(tags, Tags) and isinstance(tags.aekit, AekitTags)
    for tag, methods in METHODS.items():
        for method in methods:
            assert hasattr(model, method) == getattr(tags.aekit, tag), (model, method)


def test_tags_follow_the_parameters():
    aae = aekit.AdversarialAutoencoder
    assert not aekit_tags(aae()).uses_labels
    assert aekit_tags(aae(supervised=True)).reconstruct_needs_labels
    assert aekit_tags(aae(prior="mixture", prior_labels=True)).generates_by_class
    assert not aekit_tags(aae(prior="mixture", prior_labels=True)).decoder_needs_labels
    assert aekit_tags(aekit.StackedAutoencoder(layer_model="sparse")).sparse_code
    assert not aekit_tags(aekit.StackedAutoencoder()).sparse_code
    assert aekit_tags(aekit.VAE(binarize="dynamic")).binary_input
    assert not aekit_tags(aekit.StackedClassifier()).resumable
    assert aekit_tags(aekit.Autoencoder(loss="bce")).unit_interval_input
    assert not aekit_tags(aekit.Autoencoder(loss="auto")).unit_interval_input  # not fitted yet


def test_a_labels_only_model_offers_no_untrained_decoder():
    """SemiSupervisedAAE(labels_only=True) trains its classification phase alone: its decoder
    is never trained, so neither its tags nor its methods offer decodings, samples or
    generated rows (the report and `aekit generate` read the tags)."""
    from aekit.metrics import reconstruction_of

    from .helpers import few_labels, tiny_X, tiny_y

    X = tiny_X()
    model = aekit.SemiSupervisedAAE(labels_only=True, hidden=(8,), discriminator_hidden=(8,),
                                    latent_dim=2, max_epochs=2, random_state=0)  # fmt: skip
    can = aekit_tags(model)
    assert not (can.has_decoder or can.generative or can.generates_by_class)
    assert not can.decoder_needs_labels and can.uses_labels
    model.fit(X, few_labels(tiny_y(), 10, 0))
    assert model.predict(X).shape == (len(X),)
    assert reconstruction_of(model, X) is None
    for method in ("inverse_transform", "reconstruct", "sample", "generate"):
        with pytest.raises(AttributeError, match=f"has no attribute '{method}'") as e:
            getattr(model, method)
        assert "labels_only=True" in str(e.value.__cause__), method
    assert aekit_tags(aekit.SemiSupervisedAAE()).generative  # trained with the decoder


def test_discriminator_accuracies_follow_the_adversarial_tag_not_the_generative_one():
    """family_metrics copies the discriminators' accuracies from history_ for the models
    tagged ``adversarial``; a VAE is generative but has no discriminator."""
    from copy import deepcopy

    from aekit.metrics import family_metrics

    from .helpers import tiny_X

    aae = aekit.AdversarialAutoencoder
    for model in (aae(), aae(supervised=True), aekit.AAEClustering(), aekit.SemiSupervisedAAE()):
        assert aekit_tags(model).adversarial, model
    for model in (aekit.VAE(), aekit.Autoencoder(), aekit.SemiSupervisedAAE(labels_only=True)):
        assert not aekit_tags(model).adversarial, model
    X = tiny_X()
    small = dict(latent_dim=2, hidden=(8,), max_epochs=2, random_state=0)
    clusters = aekit.AAEClustering(n_clusters=3, discriminator_hidden=(8,), **small).fit(X)
    got = family_metrics(clusters, X)
    last = clusters.history_[-1]
    for key in ("category_discriminator_accuracy", "style_discriminator_accuracy"):
        assert got[key] == last[key]
    vae = deepcopy(aekit.VAE(**small).fit(X))
    vae.history_[-1]["discriminator_accuracy"] = 0.5  # a key no VAE writes: not copied
    assert "discriminator_accuracy" not in family_metrics(vae, X, ll_samples=2)


def test_a_foreign_model_is_taken_as_a_plain_autoencoder():
    from sklearn.decomposition import PCA

    for model in (PCA(), object()):  # an estimator, a duck-typed object
        assert aekit_tags(model) == AekitTags()


def test_unavailable_methods_say_why():
    with pytest.raises(AttributeError, match="has no attribute 'reconstruct'") as e:
        aekit.StackedClassifier().reconstruct  # noqa: B018
    assert "has no decoder" in str(e.value.__cause__)
    with pytest.raises(AttributeError, match="has no attribute 'generate'") as e:
        aekit.AdversarialAutoencoder().generate  # noqa: B018
    assert "supervised=True or prior_labels=True" in str(e.value.__cause__)


# --- loss="auto" ----------------------------------------------------------------------------


def test_loss_auto_resolves_from_the_first_fit_and_is_kept(tmp_path):
    rng = np.random.default_rng(0)
    unit = rng.random((80, 6), dtype=np.float32)
    real = rng.normal(size=(80, 6)).astype(np.float32)
    small = dict(latent_dim=2, hidden=(4,), max_epochs=2, random_state=0)
    assert aekit.Autoencoder(**small).fit(unit).loss_ == "bce"
    model = aekit.Autoencoder(**small).fit(real)
    assert model.loss == "auto" and model.loss_ == "mse"
    assert aekit.Autoencoder(loss="mse", **small).fit(unit).loss_ == "mse"  # chosen: kept
    assert aekit.VAE(**small).fit(unit).likelihood_ == "bernoulli"
    assert aekit.VAE(**small).fit(real).likelihood_ == "gaussian"
    # partial_fit on [0, 1] rows continues with the loss chosen at first
    model.partial_fit(unit)
    assert model.loss_ == "mse"
    # first partial_fit resolves as fit does
    assert aekit.Autoencoder(**small).partial_fit(unit).loss_ == "bce"
    bce = aekit.Autoencoder(**small).fit(unit)
    bce.save(tmp_path / "m")
    loaded = aekit.load(tmp_path / "m")
    assert loaded.loss == "auto" and loaded.loss_ == "bce"
    np.testing.assert_array_equal(loaded.score_samples(unit), bce.score_samples(unit))
    with pytest.raises(aekit.DataError, match=r"loss='auto' chose 'bce'.*\[0, 1\]"):
        bce.score(real)


def test_loss_auto_matches_an_explicit_choice_bit_for_bit():
    X = np.random.default_rng(1).random((90, 5), dtype=np.float32)
    small = dict(latent_dim=2, hidden=(4,), max_epochs=3, random_state=0)
    auto = aekit.Autoencoder(**small).fit(X)
    bce = aekit.Autoencoder(loss="bce", **small).fit(X)
    np.testing.assert_array_equal(auto.transform(X), bce.transform(X))


def test_a_model_saved_before_loss_auto_loads_with_its_loss():
    """The 0.1.0 saves in tests/data hold loss='mse' and no loss_: loaded, loss_ is the param."""
    folder = Path(__file__).parent / "data" / "saved_before_manifests"
    configs = sorted(folder.glob("*/config.json"))
    assert configs
    for config in configs:
        model = aekit.load(config.parent)
        if "loss" in model.get_params():
            assert model.loss_ == model.loss != "auto"


# --- best_epoch_ -----------------------------------------------------------------------------


def test_best_epoch_is_public_and_saved(tmp_path):
    X = np.random.default_rng(0).random((100, 6), dtype=np.float32)
    model = aekit.Autoencoder(latent_dim=2, hidden=(8,), max_epochs=8, lr=0.05, random_state=0)
    model.fit(X)
    assert model.best_epoch_ == model.history_[-1]["best_epoch"]
    best = min(model.history_, key=lambda h: h["val_loss"])["epoch"]
    assert model.best_epoch_ == best
    model.save(tmp_path / "m")
    assert aekit.load(tmp_path / "m").best_epoch_ == best
    assert model.n_train_rows_ == 90  # 10 % held out for validation


# --- nothing probes models ------------------------------------------------------------------

SHARED = ["cli", "metrics.py", "report.py", "plotting.py", "runs.py"]


def _shared_sources():
    root = Path(aekit.__file__).parent
    for name in SHARED:
        path = root / name
        yield from sorted(path.rglob("*.py")) if path.is_dir() else [path]


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


class _PrivateReads(ast.NodeVisitor):
    """Every ``hasattr`` call and every read of a private attribute (``x._name``, or
    ``getattr(x, "_name")``) except on ``self`` or ``cls`` inside the module's own classes, and
    on ``args``, the command's own argparse namespace: on a model, an estimator, a family class
    held in a variable, a run, ``type(model)``, ``run.model``, ..."""

    def __init__(self, where: str):
        self.where, self.depth, self.found = where, 0, []

    def visit_ClassDef(self, node):
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    def _own(self, value) -> bool:
        if not isinstance(value, ast.Name):
            return False
        return value.id == "args" or (value.id in ("self", "cls") and self.depth > 0)

    def visit_Attribute(self, node):
        if isinstance(node.ctx, ast.Load) and _private(node.attr) and not self._own(node.value):
            self.found.append(f"{self.where}:{node.lineno} {ast.unparse(node)}")
        self.generic_visit(node)

    def visit_Call(self, node):
        name = getattr(node.func, "id", None)
        if name == "hasattr":
            self.found.append(f"{self.where}:{node.lineno} hasattr")
        elif name == "getattr" and len(node.args) > 1 and not self._own(node.args[0]):
            key = node.args[1]
            if isinstance(key, ast.Constant) and isinstance(key.value, str) and _private(key.value):
                self.found.append(f"{self.where}:{node.lineno} {ast.unparse(node)}")
        self.generic_visit(node)


def private_reads(source: str, where: str = "<source>") -> list[str]:
    visitor = _PrivateReads(where)
    visitor.visit(ast.parse(source))
    return visitor.found


def test_the_private_read_check_sees_every_form():
    source = """
def f(model, estimator, cls, run, args):
    model._a; estimator._b; cls._c; run._d; type(model)._e; run.model._f
    getattr(model, "_g"); hasattr(model, "h")
    args._own; model.public; model.__class__
class Own:
    def m(self):
        return self._mine, type(self)._theirs
    @classmethod
    def k(cls):
        return cls._mine
"""
    found = [f.split(" ", 1)[1] for f in private_reads(source)]
    assert found == [
        "model._a",
        "estimator._b",
        "cls._c",
        "run._d",
        "type(model)._e",
        "run.model._f",
        "getattr(model, '_g')",
        "hasattr",
        "type(self)._theirs",
    ]


def test_the_code_shared_by_all_families_reads_tags_not_attributes():
    """The CLI, metrics, report, figures and runs never call hasattr on a model nor read a
    private attribute of anything but their own classes' ``self`` and ``cls`` (not of a model,
    an estimator, a family class, a run or ``type(model)``): what a family can do is in its
    tags, what its parameters are in their declarations (:mod:`aekit._params`)."""
    found = []
    for path in _shared_sources():
        found += private_reads(path.read_text(), path.name)
    assert not found, found


# --- review findings on "auto" -----------------------------------------------------------------


@pytest.mark.parametrize("cls", [aekit.Autoencoder, aekit.VAE])
def test_a_failed_refit_leaves_the_fitted_model_as_it_was(cls, tmp_path):
    """The refit's data pass its own checks (and set loss_ to 'bce') but its validation rows
    fail: the model keeps its network and its loss_, and saves and loads as before. (Before,
    loss_ changed under the old network: wrong outputs, and for a VAE a save that would not
    load.)"""
    rng = np.random.default_rng(0)
    real = rng.normal(size=(60, 5)).astype(np.float32)
    unit = rng.random((60, 5), dtype=np.float32)
    model = cls(latent_dim=2, hidden=(4,), max_epochs=2, random_state=0).fit(real)
    name = next(iter(model._auto_params))
    before = (getattr(model, name + "_"), model.transform(real[:3]), model.n_features_in_)
    with pytest.raises(aekit.DataError):
        model.fit(unit, validation_data=real)  # real rows cannot be scored with BCE
    assert getattr(model, name + "_") == before[0] != "bce"
    np.testing.assert_array_equal(model.transform(real[:3]), before[1])
    with pytest.raises(aekit.DataError):
        model.fit(rng.normal(size=(60, 7)).astype(np.float32), validation_data=real)
    assert model.n_features_in_ == before[2] == 5
    model.save(tmp_path / "m")
    np.testing.assert_array_equal(aekit.load(tmp_path / "m").transform(real[:3]), before[1])


def test_a_loss_set_after_fit_is_refused_by_partial_fit_not_ignored():
    X = np.random.default_rng(0).random((60, 5), dtype=np.float32)
    model = aekit.Autoencoder(latent_dim=2, hidden=(4,), max_epochs=1, random_state=0).fit(X)
    assert model.loss_ == "bce"
    model.set_params(loss="mse")
    with pytest.raises(aekit.ParameterError, match=r"fitted with loss_='bce'.*fit again"):
        model.partial_fit(X)
    model.set_params(loss="bce")
    model.partial_fit(X)  # the same loss, or "auto": it continues
    model.set_params(loss="mse").fit(3 * X)  # a refit may change it
    assert model.loss_ == "mse"


def test_a_classifier_takes_any_real_inputs_whatever_its_pretraining_loss():
    rng = np.random.default_rng(0)
    X, y = rng.random((90, 6), dtype=np.float32), np.arange(90) % 3
    clf = aekit.StackedClassifier(hidden=(8,), pretrain=False, max_epochs=2, random_state=0)
    clf.fit(X, y)
    wide = 2 * X - 0.5
    assert clf.predict(wide).shape == (90,)
    clf.partial_fit(wide, y)  # its outputs are class probabilities: no [0, 1] rule
    assert 0 <= clf.score(wide, y) <= 1


def test_the_range_errors_give_a_fix_that_works():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(40, 4)).astype(np.float32)
    with pytest.raises(aekit.DataError, match=r"binarize=None \(with likelihood='gaussian'\)"):
        aekit.VAE(binarize="dynamic", latent_dim=2, hidden=(4,), max_epochs=1).fit(real)
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler

    pipe = make_pipeline(MinMaxScaler(), aekit.Autoencoder(hidden=(4,), max_epochs=1))
    pipe.fit(real[:20])
    with pytest.raises(aekit.DataError, match=r"MinMaxScaler\) can leave \[0, 1\].*loss='mse'"):
        pipe.score(real[20:])  # held-out rows leave the training rows' range
    pipe.set_params(autoencoder__loss="mse").fit(real[:20])
    assert np.isfinite(pipe.score(real[20:]))


def test_numpy_scalars_as_parameters_save_as_json(tmp_path):
    X = np.random.default_rng(0).normal(size=(40, 4)).astype(np.float32)
    model = aekit.Autoencoder(latent_dim=np.int64(2), hidden=(np.int32(4),), tied=np.bool_(True),
                              lr=np.float32(0.01), max_epochs=1, random_state=0).fit(X)  # fmt: skip
    model.save(tmp_path / "m")
    loaded = aekit.load(tmp_path / "m")
    assert loaded.tied is True and loaded.latent_dim == 2 and loaded.hidden == (4,)
    np.testing.assert_array_equal(loaded.transform(X), model.transform(X))
