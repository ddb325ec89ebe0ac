"""Adversarial autoencoders with a categorical code: semi-supervised classification and
unsupervised clustering (Makhzani et al. 2015, sections 5 and 6).

The encoder outputs two codes from one network: a categorical ``y = softmax(logits(x))`` over ``K``
categories and a continuous style ``z``. The decoder reconstructs ``x`` from ``[y, z]``. Two
discriminators match ``y`` to a categorical prior (one-hot vectors of a uniform category) and
``z`` to ``N(0, I)``, which forces ``y`` towards one-hot and leaves the class out of the style.
Phases per batch, each with its own optimiser:

1. reconstruction (encoder and decoder; with a ``generator_weight``, plus that weight times the
   generator's loss against both discriminators);
2. regularisation: both discriminators, then (``generator_weight=None``, the default here) the
   encoder as their generator in a phase of its own;
3. semi-supervised only: cross-entropy of ``logits`` on a batch of labelled rows, drawn from the
   labelled rows of the training data (however few they are) with the trainer's generator.

With no labels (:class:`AAEClustering`), each category becomes a cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np
import torch
from sklearn.base import ClassifierMixin, ClusterMixin
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_array, check_is_fitted
from torch import nn
from torch.nn import functional as F

from ... import distributed as dist
from ..._params import Boolean, Integer, param, param_of
from ..._typing import ArrayLike, Callbacks, Input, RandomState
from ...errors import DataError, ParameterError
from ...losses import reconstruction_deviance, reconstruction_loss
from ...nn import make_activation
from ...runtime import seed_from
from ...sources import take_rows
from ...training import Phase
from .._labels import LABEL_MARKER, LabelsMixin
from .common import (
    _AdversarialBase,
    adversarial_phases,
    critic_loss,
    generator_loss,
    one_hot,
    reconstruction_step,
    sample_count,
    split_batch,
)


class CategoricalAAEModule(nn.Module):
    """Encoder to ``(logits, style)``, decoder from ``[softmax(logits), style]``, two
    discriminators, and the objectives of the phases."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module, category_critic: nn.Module,
                 style_critic: nn.Module, *, n_categories: int, latent_dim: int, loss: str,
                 output_activation: str, label_smoothing: float, noise: float, penalty: float,
                 classify: bool, labels_only: bool,
                 generator_weight: float | None = None):  # fmt: skip
        super().__init__()
        self.generator_weight = generator_weight  # as AAEModule's
        self.encoder, self.decoder = encoder, decoder
        self.category_critic, self.style_critic = category_critic, style_critic
        self.n_categories, self.latent_dim = int(n_categories), int(latent_dim)
        self.loss = loss
        self.output = make_activation("sigmoid" if loss == "bce" else output_activation)
        self.label_smoothing, self.noise = float(label_smoothing), float(noise)
        self.penalty = float(penalty)
        self.classify, self.labels_only = bool(classify), bool(labels_only)
        self.labelled: tuple[torch.Tensor, torch.Tensor] | None = None  # set while training

    def heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(logits, style)``: shapes ``(n, K)`` and ``(n, latent_dim)``."""
        h = self.encoder(x)
        return h[:, : self.n_categories], h[:, self.n_categories :]

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.heads(x)[0]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The style code (``transform``)."""
        return self.heads(x)[1]

    def decode(self, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Rows from category probabilities (or one-hot vectors) ``y`` and styles ``z``."""
        return self.output(self.decoder(torch.cat([y, z], dim=1)))

    def _loss_input(self, x: torch.Tensor, heads=None) -> torch.Tensor:
        logits, z = self.heads(x) if heads is None else heads
        out = self.decoder(torch.cat([F.softmax(logits, dim=1), z], dim=1))
        return out if self.loss == "bce" else self.output(out)

    def _reconstruction_loss(self, x: torch.Tensor, reduction: str) -> torch.Tensor:
        return reconstruction_loss(self._loss_input(x), x, self.loss, reduction)

    def score_samples(self, x: torch.Tensor) -> torch.Tensor:
        """Minus the per-sample reconstruction deviance (the loss less that of a perfect
        reconstruction: :func:`~aekit.losses.best_reconstruction_loss`)."""
        return -reconstruction_deviance(self._loss_input(x), x, self.loss)

    def _noisy(self, v: torch.Tensor, generator) -> torch.Tensor:
        if self.noise > 0 and self.training:
            return v + self.noise * dist.randn(v.shape, generator=generator, device=v.device)
        return v

    # -- phases ------------------------------------------------------------------------------

    def reconstruction(self, batch, generator) -> dict[str, torch.Tensor]:
        x, _ = split_batch(batch)
        logits, z = heads = self.heads(x)
        loss = reconstruction_loss(self._loss_input(x, heads), x, self.loss, "mean")
        return reconstruction_step(
            loss, lambda: self._fooling(logits, z, generator), self.generator_weight,
            self.training,
        )  # fmt: skip

    def discriminate(self, batch, generator) -> dict[str, torch.Tensor]:
        """Both discriminators: one-hot categories vs ``softmax(logits)``, ``N(0, I)`` vs style."""
        x, _ = split_batch(batch)
        n, dev = len(x), x.device
        with torch.no_grad():
            logits, z = self.heads(x)
            fake_y = F.softmax(logits, dim=1)
            real_y = one_hot(
                dist.randint(self.n_categories, (n,), generator=generator, device=dev),
                self.n_categories,
            )
            real_z = dist.randn(z.shape, generator=generator, device=dev)
        cat_loss, cat_acc = critic_loss(
            lambda v: self.category_critic(self._noisy(v, generator)),
            real_y, fake_y, self.label_smoothing, self.penalty,
        )  # fmt: skip
        style_loss, style_acc = critic_loss(
            lambda v: self.style_critic(self._noisy(v, generator)),
            real_z, z, self.label_smoothing, self.penalty,
        )  # fmt: skip
        return {
            "loss": cat_loss + style_loss,
            "category_discriminator_accuracy": cat_acc,
            "style_discriminator_accuracy": style_acc,
        }

    def _fooling(self, logits, z, generator) -> torch.Tensor:
        """The generator's loss against both discriminators."""
        fake_y = self._noisy(F.softmax(logits, dim=1), generator)
        return generator_loss(self.category_critic(fake_y)) + generator_loss(
            self.style_critic(self._noisy(z, generator))
        )

    def fool(self, batch, generator) -> dict[str, torch.Tensor]:
        x, _ = split_batch(batch)
        return {"loss": self._fooling(*self.heads(x), generator)}

    def classification(self, batch, generator) -> dict[str, torch.Tensor]:
        """Cross-entropy on a batch drawn (with replacement) from the labelled rows."""
        if self.labelled is None:
            raise RuntimeError("no labelled rows: set module.labelled before training")
        X, y = self.labelled
        rows = len(batch[0] if isinstance(batch, tuple) else batch)
        if dist.global_rows(rows) <= len(X):  # one labelled row per row of the batch
            idx = dist.randint(len(X), (rows,), generator=generator, device=generator.device)
        else:  # fewer labelled rows than the batch holds: that many draws (in each process)
            idx = torch.randint(len(X), (len(X),), generator=generator, device=generator.device)
        idx = idx.to(X.device)
        logits = self.logits(X[idx])
        return {
            "loss": F.cross_entropy(logits, y[idx]),
            "accuracy": (logits.argmax(1) == y[idx]).float().mean(),
        }

    def validate(self, batch) -> dict[str, torch.Tensor]:
        """Validation loss in the unit of the first phase: the reconstruction loss, or, for
        ``labels_only``, the cross-entropy (the estimator passes labelled rows only)."""
        x, y = split_batch(batch)
        if not self.labels_only:
            return {"loss": self._reconstruction_loss(x, "mean")}
        return {"loss": F.cross_entropy(self.logits(x), y)}  # labelled rows only (the estimator)

    def phases(self, discriminator: float | None = None, generator: float | None = None,
               options: dict | None = None):  # fmt: skip
        params = list(self.encoder.parameters())
        if self.labels_only:  # the only phase: its loss is the model's loss
            return [Phase("classification", self.classification, params)]
        classify = Phase("classification", self.classification, params,
                         loss_key="classification_loss")  # fmt: skip
        critics = [*self.category_critic.parameters(), *self.style_critic.parameters()]
        phases = adversarial_phases(self, critics, discriminator, generator, options)
        return [*phases, classify] if self.classify else phases


def _tagged(tag: str):
    """The availability of the decoding methods (``available_if``): present exactly when the
    model's aekit tag ``tag`` is True, and otherwise an AttributeError that says why (the only
    reason in these families: ``labels_only=True`` leaves the decoder untrained)."""

    def check(model) -> bool:
        if not getattr(model.__sklearn_tags__().aekit, tag):
            raise AttributeError(
                f"{type(model).__name__} with labels_only=True trains its encoder and "
                "classification head alone: its decoder stays untrained, so it does not decode, "
                "reconstruct, sample or generate; its codes are transform(X)"
            )
        return True

    return check


def _decode_category_style(module: CategoricalAAEModule, z: torch.Tensor, label: torch.Tensor):
    """``export``'s decoder: the style ``z`` and a one-hot category, in this order."""
    return module.decode(label, z)


@dataclass(kw_only=True, repr=False, eq=False)
class _CategoricalAAE(_AdversarialBase):
    """What the semi-supervised and clustering models share (``K`` = ``_n_categories()``)."""

    latent_dim: int = param_of(_AdversarialBase, "latent_dim", default=10)

    _classify: ClassVar[bool] = False

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # labels_only trains the classification phase alone: the decoder is never trained, so
        # the model has no decoder to offer (no reconstructions, samples or generated rows).
        decodes = not self._labels_only()
        tags.aekit.has_decoder = decodes
        tags.aekit.generative = tags.aekit.generates_by_class = decodes
        tags.aekit.decoder_needs_labels = decodes  # a style decodes with a category
        tags.aekit.adversarial = decodes  # labels_only trains no discriminator
        tags.aekit.outlier_detector = False  # predict is a class or a cluster: OutlierDetector
        return tags

    def _n_categories(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def _labels_only(self) -> bool:
        return False

    def _check_params(self) -> None:
        super()._check_params()
        if self.code_activation is not None:
            raise ParameterError(
                f"{type(self).__name__}: the encoder's last layer gives the category logits and "
                "the style: leave code_activation=None"
            )

    def _build_module(self) -> CategoricalAAEModule:
        k, latent = self._n_categories(), int(self.latent_dim)
        # One network to [logits, style], and a decoder from [y, style] of the same width.
        encoder, decoder = self._build_networks(
            latent_dim=k + latent,
            encoder_output=f"(logits, style) of shapes (n, {k}) and (n, {latent}), or one tensor "
            f"(n, {k + latent}) with the logits first",
        )
        return CategoricalAAEModule(
            encoder, decoder, self._discriminator(k), self._discriminator(latent),
            n_categories=k, latent_dim=latent, loss=self.loss_,
            output_activation=self.output_activation,
            label_smoothing=float(self.label_smoothing), noise=float(self.discriminator_noise),
            penalty=float(self.gradient_penalty), classify=self._classify,
            labels_only=self._labels_only(), generator_weight=self._generator_weight(),
        )  # fmt: skip

    def _attach_module(self, module) -> None:
        super()._attach_module(module)
        self.category_discriminator_ = module.category_critic
        self.style_discriminator_ = module.style_critic

    def _category_proba(self, X) -> np.ndarray:
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        return self._batched(lambda x: F.softmax(self.module_.logits(x), dim=1), X)

    def _export_decoder(self):
        return _decode_category_style, self._n_categories()  # label: the category, one-hot

    @available_if(_tagged("has_decoder"))
    def inverse_transform(self, X: ArrayLike, y: ArrayLike | None = None) -> np.ndarray:
        """Decode styles ``(n, latent_dim)`` with each row's category ``y`` (class labels for
        the classifier, cluster indices for the clusterer)."""
        check_is_fitted(self)
        Z = check_array(X, dtype=np.float32)
        if Z.shape[1] != self.latent_dim:
            raise DataError(f"codes need {self.latent_dim} columns (latent_dim), got {Z.shape[1]}")
        if y is None:
            raise DataError(
                f"{type(self).__name__} decodes (category, style): pass y, the category of each row"
            )
        y = np.atleast_1d(np.asarray(y))
        if len(y) == 1:
            y = np.repeat(y, len(Z))  # one category for every row
        k = self._category_index(y, len(Z))
        Y = np.eye(self._n_categories(), dtype=np.float32)[k]
        return self._decode_rows(Y, Z)

    @available_if(_tagged("has_decoder"))
    def reconstruct(self, X: Input) -> np.ndarray:
        """``decode(softmax(logits(x)), style(x))``, float32."""
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        m = self.module_
        return self._batched(
            lambda x: m.decode(F.softmax(m.logits(x), dim=1), m.encode(x)), X
        ).astype(np.float32, copy=False)

    def _decode_rows(self, Y: np.ndarray, Z: np.ndarray) -> np.ndarray:
        k = Y.shape[1]
        packed = np.hstack([Y, Z]).astype(np.float32)
        out = self._batched(lambda b: self.module_.decode(b[:, :k], b[:, k:]), packed)
        return out.astype(np.float32, copy=False)

    @available_if(_tagged("generative"))
    def sample(self, n: int, random_state: RandomState = None, mean: bool = True) -> np.ndarray:
        """``n`` rows decoded from the priors: a uniform category and a ``N(0, I)`` style."""
        check_is_fitted(self)
        n = sample_count(n, mean)
        rng = np.random.default_rng(seed_from(random_state))
        k = rng.integers(self._n_categories(), size=n)
        return self._generate_indices(k, rng)

    @available_if(_tagged("generates_by_class"))
    def generate(self, labels: ArrayLike, random_state: RandomState = None) -> np.ndarray:
        """One row per label (class for the classifier, cluster index for the clusterer), its
        style drawn from ``N(0, I)``."""
        check_is_fitted(self)
        labels = np.atleast_1d(np.asarray(labels))
        k = self._category_index(labels, len(labels))
        return self._generate_indices(k, np.random.default_rng(seed_from(random_state)))

    def _generate_indices(self, k: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if not len(k):
            return np.zeros((0, self.n_features_in_), dtype=np.float32)
        Z = rng.standard_normal((len(k), int(self.latent_dim))).astype(np.float32)
        return self._decode_rows(np.eye(self._n_categories(), dtype=np.float32)[k], Z)

    def _category_index(self, y: np.ndarray, n: int) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError


@dataclass(kw_only=True, repr=False, eq=False)
class SemiSupervisedAAE(ClassifierMixin, LabelsMixin, _CategoricalAAE):
    """Semi-supervised adversarial autoencoder (Makhzani et al. 2015, section 5), a scikit-learn
    classifier.

    The encoder gives class probabilities (``predict_proba``) and a style code (``transform``);
    rows labelled ``unlabeled_label`` help through the reconstruction and adversarial phases, the
    labelled ones also through a cross-entropy phase. Takes the parameters of
    :class:`~aekit.AdversarialAutoencoder`'s network and regularisation phase (but no ``prior``:
    the priors are categorical and ``N(0, I)``), and:

    Parameters
    ----------
    latent_dim : int, default=10
        Width of the style code.
    encoder, decoder, discriminator : as for :class:`~aekit.AdversarialAutoencoder`
        The encoder returns ``(logits, style)``, ``(n, n_classes)`` and ``(n, latent_dim)``, or
        one tensor with the logits first; the decoder receives ``[one-hot class, style]``. Two
        discriminators are built from ``discriminator`` (``in_features``: the number of
        classes, then ``latent_dim``).
    unlabeled_label : int, str or None, default=-1
        Rows with this label are unlabelled; never a class.
    labels_only : bool, default=False
        True: train the same encoder and head on the labelled rows alone, with the same
        optimiser and the same number of steps (the classification phase only), for comparison.

    Attributes
    ----------
    classes_ : ndarray
    history_ : list of dict
        Per epoch: ``loss`` (reconstruction), ``discriminator_loss``,
        ``category_discriminator_accuracy``, ``style_discriminator_accuracy``,
        ``generator_loss``, ``classification_loss`` and ``accuracy`` (on the labelled batches).
    """

    unlabeled_label: Any = param(-1, *LABEL_MARKER)
    labels_only: bool = param(False, Boolean())

    _classify: ClassVar[bool] = True

    def _labels_only(self) -> bool:
        return bool(self.labels_only)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.aekit.uses_labels = True
        return tags

    def _n_categories(self) -> int:
        return len(self.classes_)

    def _fit_targets(self, X, y, reset: bool) -> np.ndarray:
        return self._label_targets(X, y, reset)

    def _validation_rows(self, validation_data):
        if validation_data is None:
            return None, None
        if isinstance(validation_data, tuple):
            return self._labelled_validation(validation_data, keep_unlabelled=True)
        return super()._validation_rows(validation_data)

    def _train(self, X, X_val, epochs, callbacks, *, index=None, y=None, **kw) -> None:
        rows = np.arange(len(X)) if index is None else np.asarray(index)
        labelled = np.sort(rows[y[rows] >= 0])
        if not len(labelled):
            raise DataError(
                "no labelled rows to train the classification phase on (none in this "
                "partial_fit batch, or none left after the validation split): give labelled rows, "
                "or lower validation_fraction"
            )
        if self.labels_only:  # its validation loss is the cross-entropy of labelled rows
            X_val, kw = self._labelled_validation_only(X_val, y, kw)
        dev = self.device_
        self.module_.labelled = (
            torch.as_tensor(take_rows(X, labelled), device=dev),
            torch.as_tensor(y[labelled], device=dev),
        )
        try:
            super()._train(X, X_val, epochs, callbacks, index=index, y=y, **kw)
        finally:
            self.module_.labelled = None

    @staticmethod
    def _labelled_validation_only(X_val, y, kw):
        """The labelled validation rows alone (none: no validation, the training loss is
        monitored)."""
        kw = dict(kw)
        val_index = kw.get("val_index")
        if val_index is not None:
            val_index = val_index[y[val_index] >= 0]
            kw["val_index"] = val_index if len(val_index) else None
        if X_val is not None:
            y_val = kw.get("y_val")
            keep = np.zeros(len(X_val), bool) if y_val is None else np.asarray(y_val) >= 0
            X_val = take_rows(X_val, np.flatnonzero(keep)) if keep.any() else None
            kw["y_val"] = None if X_val is None else np.asarray(y_val)[keep]
        return X_val, kw

    def predict_proba(self, X: Input) -> np.ndarray:
        """``p(y | x)``, ``(n_samples, n_classes)``, columns in ``classes_`` order."""
        return self._category_proba(X)

    def predict_log_proba(self, X: Input) -> np.ndarray:
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        return self._batched(lambda x: F.log_softmax(self.module_.logits(x), dim=1), X)

    def predict(self, X: Input) -> np.ndarray:
        proba = self.predict_proba(X)  # first: it raises NotFittedError before fit
        return self.classes_[np.argmax(proba, axis=1)]

    def score(self, X: Input, y: ArrayLike, sample_weight: ArrayLike | None = None) -> float:
        """Accuracy (scikit-learn's classifier score)."""
        return ClassifierMixin.score(self, X, y, sample_weight)

    def _category_index(self, y: np.ndarray, n: int) -> np.ndarray:
        if len(y) != n:
            raise DataError(f"{len(y)} labels for {n} rows")
        return self._encode_labels(y, np.ones(n, dtype=bool))


@dataclass(kw_only=True, repr=False, eq=False)
class AAEClustering(ClusterMixin, _CategoricalAAE):
    """Unsupervised clustering with an adversarial autoencoder (Makhzani et al. 2015, section 6),
    a scikit-learn clusterer: the semi-supervised model's network without labels, each category
    a cluster.

    Parameters
    ----------
    n_clusters : int, default=16
        Categories of the code (the paper uses 16 and 30 for MNIST's 10 classes).
    latent_dim : int, default=10
        Width of the style code (``transform``).

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,)
        The cluster of each training row (of the last ``fit`` or ``partial_fit``; not saved).
    """

    _structural_params: ClassVar[tuple[str, ...]] = (
        "discriminator", "discriminator_kwargs", "discriminator_hidden", "n_clusters",
    )  # fmt: skip

    n_clusters: int = param(16, Integer(1))

    def _n_categories(self) -> int:
        return int(self.n_clusters)

    def fit(
        self,
        X: Input,
        y: ArrayLike | None = None,
        *,
        validation_data: Input | None = None,
        callbacks: Callbacks = None,
    ) -> Self:
        """Train on ``X`` (``y`` is ignored) and set ``labels_``."""
        super().fit(X, validation_data=validation_data, callbacks=callbacks)
        self.labels_ = self.predict(X)
        return self

    def partial_fit(
        self,
        X: Input,
        y: ArrayLike | None = None,
        *,
        validation_data: Input | None = None,
        callbacks: Callbacks = None,
    ) -> Self:
        super().partial_fit(X, validation_data=validation_data, callbacks=callbacks)
        self.labels_ = self.predict(X)
        return self

    def predict(self, X: Input) -> np.ndarray:
        """The most likely category of each row (int64)."""
        return np.argmax(self._category_proba(X), axis=1).astype(np.int64)

    def predict_proba(self, X: Input) -> np.ndarray:
        """Category probabilities ``(n_samples, n_clusters)``."""
        return self._category_proba(X)

    def _category_index(self, y: np.ndarray, n: int) -> np.ndarray:
        if len(y) != n:
            raise DataError(f"{len(y)} cluster indices for {n} rows")
        if y.dtype.kind not in "iu" or y.min() < 0 or y.max() >= self.n_clusters:
            raise DataError(f"cluster indices must be integers in 0..{self.n_clusters - 1}")
        return y.astype(np.int64)
