"""The adversarial autoencoder (Makhzani et al. 2015, *Adversarial autoencoders*, sections 2-4).

An autoencoder whose aggregated posterior ``q(z)`` is matched to a chosen prior ``p(z)`` by a
discriminator on the code. Each batch runs these phases, each with its own optimiser:

1. reconstruction: encoder and decoder minimise the reconstruction loss, plus (by default,
   ``generator_weight=30``) that weight times the generator's loss ``-log D(code)``;
2. regularisation, discriminator: ``D`` learns to tell prior samples from codes;
3. with ``generator_weight=None`` (the paper's scheme), regularisation, generator: the encoder
   learns to fool ``D`` in a phase of its own.

Variants (all through the same phases):

* ``posterior="gaussian"``: ``q(z | x) = N(mu(x), diag sigma^2(x))``, sampled by
  reparameterisation (the paper's second choice of encoder); ``transform`` gives ``mu``.
* ``supervised=True`` (section 4): the decoder also receives the one-hot label, so the code is free
  to learn the style alone; ``generate(labels)`` draws images of chosen classes.
* ``prior_labels=True`` (section 2.3): the discriminator also receives the one-hot label (an extra
  slot marks unlabelled rows), and the prior sample it compares a labelled row's code with is drawn
  from that class's component, which pushes each class onto its own component.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_array, check_is_fitted
from torch import nn

from ... import distributed as dist
from ..._params import Boolean, Function, Instance, Integer, Options, param, param_of
from ..._typing import ArrayLike, Input, RandomState
from ...errors import DataError, ModelFileError, ParameterError
from ...losses import reconstruction_deviance, reconstruction_loss
from ...networks import mean_and_logvar
from ...nn import make_activation
from ...priors import PRIORS, CallablePrior, Prior, import_path, make_prior
from ...runtime import seed_from
from ...sources import Source
from .._labels import LABEL_MARKER, LabelsMixin
from .common import (
    POSTERIORS,
    _AdversarialBase,
    adversarial_phases,
    critic_loss,
    generator_loss,
    one_hot,
    reconstruction_step,
    sample_count,
    split_batch,
)

PRIOR_NAME = Instance(str, f"a prior's name ({', '.join(map(repr, PRIORS))}), an import path "
                      "'package.module:function'")  # fmt: skip


class AAEModule(nn.Module):
    """Encoder, decoder, discriminator and prior, and the objectives of the phases.

    Parameters
    ----------
    n_classes : int
        > 0: supervised, the decoder reads ``[z, one_hot(y)]``.
    n_conditions : int
        > 0: label-conditioned prior, the discriminator reads ``[z, one_hot(y or "unlabelled")]``
        (``n_conditions + 1`` slots).
    generator_weight : float or None
        A number: the generator's loss joins the reconstruction phase with this weight (two
        phases); None: a separate generator phase (three).
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, discriminator: nn.Module,
                 prior: Prior, *, latent_dim: int, loss: str, output_activation: str,
                 posterior: str, n_classes: int, n_conditions: int, label_smoothing: float,
                 noise: float, penalty: float, generator_weight: float | None = None):  # fmt: skip
        super().__init__()
        self.encoder, self.decoder, self.discriminator = encoder, decoder, discriminator
        self.generator_weight = generator_weight
        self.prior = prior
        self.latent_dim, self.loss, self.posterior_kind = int(latent_dim), loss, posterior
        self.output = make_activation("sigmoid" if loss == "bce" else output_activation)
        self.n_classes, self.n_conditions = int(n_classes), int(n_conditions)
        self.label_smoothing, self.noise = float(label_smoothing), float(noise)
        self.penalty = float(penalty)

    # -- the autoencoder ------------------------------------------------------------------------

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(mu, logvar)`` of ``q(z | x)``; ``logvar`` is None for a deterministic encoder."""
        h = self.encoder(x)
        if self.posterior_kind == "gaussian":
            return h[:, : self.latent_dim], h[:, self.latent_dim :]
        return h, None

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The code (the posterior mean): ``transform``."""
        return self.posterior(x)[0]

    def code(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """A draw from ``q(z | x)`` (reparameterised), or the deterministic code."""
        mu, logvar = self.posterior(x)
        if logvar is None:
            return mu
        eps = dist.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + (0.5 * logvar).exp() * eps

    def _decoder_input(self, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        if not self.n_classes:
            return z
        if y is None:
            raise DataError("a supervised adversarial autoencoder decodes (code, label): give y")
        return torch.cat([z, one_hot(y, self.n_classes).to(z.dtype)], dim=1)

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.output(self.decoder(self._decoder_input(z, y)))

    def _loss_input(self, z, y) -> torch.Tensor:
        out = self.decoder(self._decoder_input(z, y))
        return out if self.loss == "bce" else self.output(out)  # BCE takes the logits (stable)

    def _reconstruction_loss(self, z, x, y, reduction: str) -> torch.Tensor:
        return reconstruction_loss(self._loss_input(z, y), x, self.loss, reduction)

    def score_samples(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Minus the per-sample reconstruction deviance from the deterministic code (the loss
        less that of a perfect reconstruction: :func:`~aekit.losses.best_reconstruction_loss`)."""
        return -reconstruction_deviance(self._loss_input(self.encode(x), y), x, self.loss)

    # -- the discriminator --------------------------------------------------------------------

    def critic(self, z: torch.Tensor, y: torch.Tensor | None, generator) -> torch.Tensor:
        """``D``'s logit that ``z`` comes from the prior (with instance noise in training)."""
        if self.noise > 0 and self.training:
            z = z + self.noise * dist.randn(
                z.shape, generator=generator, device=z.device, dtype=z.dtype
            )
        if self.n_conditions:
            slot = torch.full((len(z),), self.n_conditions, device=z.device, dtype=torch.long)
            if y is not None:
                slot = torch.where(y >= 0, y, slot)
            z = torch.cat([z, one_hot(slot, self.n_conditions + 1).to(z.dtype)], dim=1)
        return self.discriminator(z)

    def prior_sample(self, n: int, y: torch.Tensor | None, generator) -> torch.Tensor:
        return self.prior.sample(n, generator, labels=y if self.n_conditions else None)

    # -- the phases -----------------------------------------------------------------------------

    def reconstruction(self, batch, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Phase 1: mean per-sample reconstruction loss (encoder and decoder), with
        ``generator_weight`` plus that weight times the generator's loss on the same codes."""
        x, y = split_batch(batch)
        z = self.code(x, generator)
        loss = self._reconstruction_loss(z, x, y, "mean")
        return reconstruction_step(
            loss, lambda: generator_loss(self.critic(z, y, generator)), self.generator_weight,
            self.training,
        )  # fmt: skip

    def discriminate(self, batch, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Phase 2: ``-log D(z_prior) - log(1 - D(z_code))`` (the discriminator)."""
        x, y = split_batch(batch)
        with torch.no_grad():
            fake = self.code(x, generator)
            real = self.prior_sample(len(x), y, generator).to(fake.dtype)
        loss, accuracy = critic_loss(
            lambda z: self.critic(z, y, generator), real, fake, self.label_smoothing, self.penalty
        )
        return {"loss": loss, "discriminator_accuracy": accuracy}

    def fool(self, batch, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Phase 3: ``-log D(z_code)`` (the encoder, as the generator)."""
        x, y = split_batch(batch)
        return {"loss": generator_loss(self.critic(self.code(x, generator), y, generator))}

    def phases(self, discriminator: float | None = None, generator: float | None = None,
               options: dict | None = None):  # fmt: skip
        """The phases (two with a ``generator_weight``, else three); ``discriminator`` and
        ``generator`` are the adversarial phases' learning rates (None: the trainer's),
        ``options`` their optimisers' extra arguments."""
        return adversarial_phases(self, list(self.discriminator.parameters()), discriminator,
                                  generator, options)  # fmt: skip


def _knows_classes(model) -> bool:
    """``generate``'s availability (``hasattr`` is False, and says why, without classes)."""
    if not model._uses_labels():
        raise AttributeError(
            f"{type(model).__name__}.generate(labels) needs a model that knows classes "
            "(supervised=True or prior_labels=True); use sample(n)"
        )
    return True


def _decode_with_label(module: AAEModule, z: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """The supervised decoder on one-hot labels (``export``: ``decode`` takes class indices)."""
    return module.output(module.decoder(torch.cat([z, label], dim=1)))


@dataclass(kw_only=True, repr=False, eq=False)
class AdversarialAutoencoder(LabelsMixin, _AdversarialBase):
    """Adversarial autoencoder (Makhzani et al. 2015), a scikit-learn transformer.

    Takes the parameters of :class:`~aekit.Autoencoder` (``lr``: the reconstruction phase) and of
    the regularisation phase (``generator_weight``, ``discriminator_hidden``,
    ``discriminator_lr``, ``generator_lr``, ``label_smoothing``, ``discriminator_noise``; see
    :mod:`aekit.models.aae.common`), and:

    Parameters
    ----------
    encoder, decoder, discriminator : as for :class:`~aekit.Autoencoder`
        Your own networks. The encoder returns the code ``(n, latent_dim)``, or with
        ``posterior="gaussian"`` ``(mu, logvar)`` (or one tensor ``(n, 2 * latent_dim)``); a
        ``supervised`` model's decoder receives ``[code, one-hot label]``, ``(n, latent_dim +
        n_classes)``. The discriminator maps the codes it judges, ``(n, in_features)``
        (``latent_dim``, plus the one-hot label and a flag with ``prior_labels``), to one logit
        per row, ``(n, 1)`` or ``(n,)``; ``discriminator_kwargs`` are its constructor's.
    prior : str or callable, default="gaussian"
        ``"gaussian"``, ``"mixture"``, ``"swiss_roll"`` (2-D), ``"uniform"`` (see
        :mod:`aekit.priors`), a callable ``prior(n, generator) -> (n, latent_dim)`` that draws
        from the ``torch.Generator`` it is given, or the import path of one
        (``"package.module:function"``). A callable is saved as its import path, so it must be a
        top-level function of an importable module (``save`` says so otherwise).
    n_components : int, default=10
        Components of the mixture and swiss-roll priors.
    prior_params : dict or None, default=None
        The built-in prior's own parameters: mixture ``radius`` (4) and ``std`` (0.5); gaussian
        ``std`` (1); uniform ``low`` (-2) and ``high`` (2); swiss roll ``noise`` (0).
    posterior : {"deterministic", "gaussian"}, default="deterministic"
        The encoder ``q(z | x)``: a deterministic code, or a Gaussian with learned mean and
        variance, sampled during training (``transform`` gives the mean).
    supervised : bool, default=False
        The decoder also receives the one-hot label (every row needs one), so the code holds the
        style alone; ``generate(labels)`` draws images of chosen classes.
    prior_labels : bool, default=False
        The regularisation phase uses labels (rows labelled ``unlabeled_label`` are unlabelled):
        each class is pushed onto its own component of a mixture or swiss-roll prior
        (``n_components`` must equal the number of classes).
    unlabeled_label : int, str or None, default=-1
        The label of unlabelled rows (``prior_labels``); never a class.

    Attributes
    ----------
    module_ : AAEModule
        ``encoder``, ``decoder``, ``discriminator`` and ``prior``.
    classes_ : ndarray
        The class labels (``supervised`` or ``prior_labels`` only).
    history_ : list of dict
        Per epoch: ``loss`` (reconstruction, per sample), ``discriminator_loss``,
        ``discriminator_accuracy``, ``generator_loss`` (batch means), ``val_loss``, ...

    Notes
    -----
    ``y`` is used only when ``supervised`` or ``prior_labels`` asks for it, and ignored otherwise
    (a Pipeline passes y to every step). ``partial_fit(X, y, classes=...)`` streams; later
    batches of a ``prior_labels`` model may be wholly unlabelled.

    Examples
    --------
    >>> aae = AdversarialAutoencoder(prior="mixture", n_components=10, random_state=0)
    >>> codes = aae.fit(X).transform(X)                      # doctest: +SKIP
    >>> images = aae.sample(16, random_state=0)              # doctest: +SKIP
    """

    # A name (make_prior checks it, with latent_dim, n_components and prior_params) or a function.
    # A prior other than the built-in names is user code: load imports it only when trusted.
    prior: Any = param("gaussian", PRIOR_NAME, Function(builtin=PRIORS))
    n_components: int = param(10, Integer(1))
    prior_params: dict | None = param(None, None, Instance(dict, "a dict such as {'radius': 4.0}"))
    _structural_params: ClassVar[tuple[str, ...]] = (
        "discriminator", "discriminator_kwargs", "discriminator_hidden", "posterior", "supervised",
        "prior_labels",
    )  # fmt: skip

    # The joint objective (common.py's generator_weight); a model saved before the parameter
    # existed trained the separate generator phase, and loads to go on doing so.
    generator_weight: float | None = param_of(_AdversarialBase, "generator_weight", default=30.0)
    _params_before: ClassVar[dict[str, Any]] = {"generator_weight": None}

    posterior: str = param("deterministic", Options(*POSTERIORS))
    supervised: bool = param(False, Boolean())
    prior_labels: bool = param(False, Boolean())
    unlabeled_label: Any = param(-1, *LABEL_MARKER)

    def _capture_is_safe(self) -> bool:
        # A prior of the user's is Python called in every step, which a CUDA graph replays
        # without calling it.
        return super()._capture_is_safe() and isinstance(self.prior, str) and ":" not in self.prior

    def _check_params(self) -> None:
        super()._check_params()
        name = type(self).__name__
        if self.tied and (self.supervised or self.posterior == "gaussian"):
            raise ParameterError(
                f"{name}: tied=True needs a decoder that mirrors the encoder; supervised=True "
                "and posterior='gaussian' change their widths: use tied=False"
            )
        if self.posterior == "gaussian" and self.code_activation is not None:
            raise ParameterError(
                f"{name}: code_activation applies to a deterministic code; a Gaussian posterior "
                "outputs a mean and a log-variance: leave code_activation=None"
            )
        prior = self._make_prior()
        if isinstance(prior, CallablePrior):  # try the user's function once, before training
            try:
                prior.sample(2, torch.Generator())
            except ParameterError:
                raise
            except Exception as e:
                raise ParameterError(
                    f"{name}: prior {prior.name} failed on a test draw ({type(e).__name__}: {e}); "
                    "a prior is a function (n, generator) -> (n, latent_dim) codes that draws "
                    "from the torch.Generator it is given"
                ) from None
        if self.prior_labels and prior.n_components == 0:
            raise ParameterError(
                f"{name}: prior_labels=True puts each class on its own component of the prior; "
                f"prior={self.prior!r} has none: use prior='mixture' or 'swiss_roll'"
            )

    def _apply_settings(self, module) -> None:
        module.prior = self._make_prior()

    def _make_prior(self) -> Prior:
        return make_prior(self.prior, int(self.latent_dim), int(self.n_components),
                          self.prior_params)  # fmt: skip

    # -- labels ------------------------------------------------------------------------------

    def _uses_labels(self) -> bool:
        return bool(self.supervised or self.prior_labels)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.aekit.generative = tags.aekit.has_prior = True
        tags.aekit.uses_labels = tags.aekit.generates_by_class = self._uses_labels()
        tags.aekit.decoder_needs_labels = bool(self.supervised)
        tags.aekit.reconstruct_needs_labels = bool(self.supervised)
        return tags

    def _fit_targets(self, X: np.ndarray, y, reset: bool) -> np.ndarray | None:
        if not self._uses_labels():
            return None  # y ignored
        why = None
        if self.supervised:
            why = ("supervised=True gives each row's label to the decoder; for partly labelled "
                   "data use SemiSupervisedAAE, or prior_labels=True")  # fmt: skip
        if not reset and not self.supervised and (y is None or not self._labelled(
            np.asarray(y).ravel()).any()):  # fmt: skip
            # a later batch of unlabelled rows: they use the discriminator's "unlabelled" slot
            return np.full(len(X), -1, dtype=np.int64)
        targets = self._label_targets(X, y, reset, all_labelled=why)
        k = len(self.classes_)
        if self.prior_labels and k != self.n_components:
            raise DataError(
                f"prior_labels=True puts each class on its own component, but y holds {k} "
                f"classes and n_components={self.n_components}: set n_components={k} (or, "
                "when a first partial_fit batch lacks some classes, pass classes=...)"
            )
        return targets

    def _validation_rows(self, validation_data):
        if self.supervised and validation_data is not None:
            return self._labelled_validation(validation_data, keep_unlabelled=False)
        if isinstance(validation_data, tuple) and self.prior_labels:
            # checked, then dropped: the validation loss is the reconstruction loss alone
            return self._labelled_validation(validation_data, keep_unlabelled=True)[0], None
        return super()._validation_rows(validation_data)

    def _labels_tensor(self, y, n: int) -> torch.Tensor | None:
        """Class indices on the device for ``n`` rows of class labels ``y`` (or None)."""
        if y is None:
            return None
        y = np.asarray(y)
        if y.ndim == 0:
            y = np.full(n, y)
        if len(y) != n:
            raise DataError(f"{len(y)} labels for {n} rows")
        if not hasattr(self, "classes_"):
            raise DataError(
                "this model was fitted without labels (supervised=False, prior_labels=False): "
                "it takes no y"
            )
        idx = self._encode_labels(y)  # the unlabelled marker gives -1: any component
        return torch.as_tensor(idx, device=self.device_)

    def _decode_y(self, y, n: int) -> torch.Tensor | None:
        if not self.supervised:
            return None
        if y is None:
            raise DataError(
                "a supervised adversarial autoencoder decodes (code, label): pass y, the class "
                f"of each row (one of {self.classes_.tolist()[:20]})"
            )
        labels = self._labels_tensor(y, n)
        if bool((labels < 0).any()):
            raise DataError(f"y holds the unlabelled marker {self.unlabeled_label!r}: the "
                            "decoder of a supervised model needs each row's class")  # fmt: skip
        return labels

    # -- the network -------------------------------------------------------------------------

    def _build_module(self) -> AAEModule:
        latent = int(self.latent_dim)
        n_classes = len(self.classes_) if self.supervised else 0
        gaussian = self.posterior == "gaussian"
        if n_classes or gaussian:
            encoder, _ = self._build_networks(
                latent_dim=2 * latent if gaussian else latent, only="encoder",
                encoder_output=mean_and_logvar(latent) if gaussian else None,
            )  # fmt: skip
            _, decoder = self._build_networks(latent_dim=latent + n_classes, only="decoder")
        else:
            encoder, decoder = self._build_networks()
        n_conditions = len(self.classes_) if self.prior_labels else 0
        critic = self._discriminator(latent + (n_conditions + 1 if n_conditions else 0))
        return AAEModule(
            encoder, decoder, critic, self._make_prior(), latent_dim=latent, loss=self.loss_,
            output_activation=self.output_activation, posterior=self.posterior,
            n_classes=n_classes, n_conditions=n_conditions,
            label_smoothing=float(self.label_smoothing), noise=float(self.discriminator_noise),
            penalty=float(self.gradient_penalty), generator_weight=self._generator_weight(),
        )  # fmt: skip

    def _attach_module(self, module) -> None:
        super()._attach_module(module)
        self.discriminator_ = module.discriminator

    # -- using the model ---------------------------------------------------------------------

    def _export_decoder(self):
        if not self.supervised:
            return super()._export_decoder()
        return _decode_with_label, len(self.classes_)  # label: one-hot in classes_ order

    def inverse_transform(self, X: ArrayLike, y: ArrayLike | None = None) -> np.ndarray:
        """Decode codes ``(n, latent_dim)``; a supervised model also needs each row's class."""
        if not self.supervised:
            return super().inverse_transform(X)
        check_is_fitted(self)
        Z = check_array(X, dtype=np.float32)
        if Z.shape[1] != self.latent_dim:
            raise DataError(f"codes need {self.latent_dim} columns (latent_dim), got {Z.shape[1]}")
        labels = self._decode_y(y, len(Z))
        return self._rows(lambda z, yy: self.module_.decode(z, yy), Z, labels)

    def reconstruct(self, X: Input, y: ArrayLike | None = None) -> np.ndarray:
        if not self.supervised:
            return super().reconstruct(X)
        check_is_fitted(self)
        X = self._in_memory(self._validate_X(X, reset=False))
        labels = self._decode_y(y, len(X))
        return self._rows(lambda x, yy: self.module_.decode(self.module_.encode(x), yy), X, labels)

    def score_samples(self, X: Input, y: ArrayLike | None = None) -> np.ndarray:
        """Minus each row's reconstruction loss (per-sample units; a supervised model needs y)."""
        if not self.supervised:
            return super().score_samples(X)
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        self._check_values(X)
        X = self._in_memory(X)
        labels = self._decode_y(y, len(X))
        return self._rows(self.module_.score_samples, X, labels).astype(np.float64)

    def score(self, X: Input, y: ArrayLike | None = None) -> float:
        return float(np.mean(self.score_samples(X, y)))  # y is read by supervised models only

    @staticmethod
    def _in_memory(X) -> np.ndarray:
        """A source's rows read into memory: a supervised model pairs each with its label."""
        return X.to_array() if isinstance(X, Source) else X

    def _rows(self, fn, X: np.ndarray, labels: torch.Tensor) -> np.ndarray:
        """``fn(rows, labels)`` in batches (rows and labels stacked as one array)."""
        width = X.shape[1]
        packed = np.hstack([X, labels.cpu().numpy()[:, None].astype(np.float32)])
        out = self._batched(lambda b: fn(b[:, :width], b[:, width].long()), packed)
        return out.astype(np.float32, copy=False)

    @torch.no_grad()
    def sample_prior(
        self, n: int, random_state: RandomState = None, labels: ArrayLike | None = None
    ) -> np.ndarray:
        """``n`` codes drawn from the prior, ``(n, latent_dim)`` float32; with ``labels`` (a model
        fitted with ``prior_labels=True``), each from its class's component."""
        check_is_fitted(self)
        n = sample_count(n)
        if labels is not None and not self.prior_labels:
            raise DataError("sample_prior(labels=...) needs a model fitted with prior_labels=True")
        g = torch.Generator(device=self.device_).manual_seed(seed_from(random_state))
        y = self._labels_tensor(labels, n)
        z = self.module_.prior.sample(n, g, labels=y)
        return z.float().cpu().numpy()

    @torch.no_grad()
    def sample(self, n: int, random_state: RandomState = None, mean: bool = True) -> np.ndarray:
        """``n`` rows decoded from prior samples, ``(n, n_features)`` float32. A model that knows
        classes draws each row's class uniformly first (then, with ``prior_labels``, its code
        from that class's component). The decoder is deterministic: ``mean`` must be True."""
        check_is_fitted(self)
        n = sample_count(n, mean)
        g = torch.Generator(device=self.device_).manual_seed(seed_from(random_state))
        self.module_.eval()
        y = None
        if self._uses_labels():  # the class first, then (prior_labels) a code of its component
            y = torch.randint(len(self.classes_), (n,), generator=g, device=self.device_)
        z = self.module_.prior.sample(n, g, labels=y if self.prior_labels else None)
        decode_y = y if self.supervised else None
        return self.module_.decode(z.to(self.device_), decode_y).float().cpu().numpy()

    @available_if(_knows_classes)
    @torch.no_grad()
    def generate(self, labels: ArrayLike, random_state: RandomState = None) -> np.ndarray:
        """One row per label, of that class: the style drawn from the prior and decoded with the
        label (``supervised=True``), or a code drawn from the class's component
        (``prior_labels=True``). ``(len(labels), n_features)`` float32."""
        check_is_fitted(self)
        labels = np.atleast_1d(np.asarray(labels))
        n = len(labels)
        y = self._labels_tensor(labels, n)
        g = torch.Generator(device=self.device_).manual_seed(seed_from(random_state))
        self.module_.eval()
        z = self.module_.prior.sample(n, g, labels=y if self.prior_labels else None)
        return self.module_.decode(z.to(self.device_), y if self.supervised else None).float(
        ).cpu().numpy()  # fmt: skip

    # -- saving ------------------------------------------------------------------------------

    def _params_to_json(self) -> dict[str, Any]:
        params = super()._params_to_json()
        prior = self.prior
        if not (isinstance(prior, str)):
            path = import_path(prior)
            if path is None:
                what = getattr(prior, "__qualname__", repr(prior))
                raise ModelFileError(
                    f"cannot save: prior={what} is not importable by name (a lambda, a local "
                    "function or one defined in __main__), and models are saved as JSON and "
                    "weights, never pickle. Define it at the top level of a module, or pass "
                    "its import path, prior='package.module:function'"
                )
            params["prior"] = path
        return params


__all__ = ["PRIORS", "AAEModule", "AdversarialAutoencoder"]
