"""What a model can do, declared: aekit's tags, next to scikit-learn's.

Every aekit estimator's ``__sklearn_tags__()`` returns :class:`Tags`, scikit-learn's tags with
one more field, ``aekit`` (:class:`AekitTags`). Code that serves every family (the CLI, metrics,
the report, the figures) reads these instead of probing a model for attributes: a family
declares what it does, once, in its own file.

>>> from aekit.tags import aekit_tags
>>> aekit_tags(aekit.VAE()).generative                               # doctest: +SKIP
True

Tags depend on parameters, as scikit-learn's do (an ``AdversarialAutoencoder`` with
``supervised=True`` learns from labels; with the default it does not), and on the loss that
``loss="auto"`` resolved to once the model is fitted.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from sklearn.utils import Tags as _SklearnTags
from sklearn.utils import get_tags


@dataclass
class AekitTags:
    """aekit's own tags (``get_tags(model).aekit``); the defaults describe a plain autoencoder.

    Attributes
    ----------
    uses_labels : bool
        ``fit(X, y)`` learns from ``y`` (classifiers; adversarial autoencoders with
        ``supervised`` or ``prior_labels``). Otherwise ``y`` is ignored.
    decoder_needs_labels : bool
        Decoding a code needs a class or category: ``inverse_transform(Z, y)``,
        ``generate(labels)`` (supervised and categorical adversarial autoencoders).
    reconstruct_needs_labels : bool
        ``reconstruct``, ``score_samples`` and ``score`` need each row's label, which the
        decoder reads (a supervised adversarial autoencoder).
    has_decoder : bool
        The model decodes: ``inverse_transform``, ``reconstruct``, ``interpolate`` and
        ``traverse`` exist (not for a classifier, which has a head instead).
    generative : bool
        ``sample(n)`` draws new rows.
    generates_by_class : bool
        ``generate(labels)`` draws rows of given classes (or clusters).
    stochastic_decoder : bool
        ``sample(n, mean=False)`` draws from ``p(x | z)`` (a VAE); otherwise the decoder is
        deterministic and ``mean`` must stay True.
    has_prior : bool
        The codes are matched to a prior that ``sample_prior(n)`` draws from (adversarial
        autoencoders).
    adversarial : bool
        The codes are matched to their priors by discriminators trained against the encoder
        (adversarial autoencoders): ``history_`` holds each discriminator's accuracy
        (``*discriminator_accuracy``).
    has_likelihood : bool
        ``elbo(X)``, ``log_likelihood(X)`` and ``active_units(X)`` exist (a VAE).
    unit_interval_input : bool
        Inputs must lie in [0, 1] (``loss="bce"`` or ``likelihood="bernoulli"``, as chosen or as
        ``"auto"`` resolved them at fit).
    binary_input : bool
        The model trains on binarised draws of its rows (``binarize``): evaluate it on binary
        rows too.
    denoising : bool
        ``corrupt(X)`` and ``denoise(X)`` exist.
    contractive : bool
        ``jacobian_norm(X)`` exists.
    sparse_code : bool
        The codes are trained to be sparse (a sparse autoencoder, or a stack of sparse layers).
    layerwise_pretraining : bool
        Trained greedily layer by layer, then fine-tuned (the stacked models).
    outlier_detector : bool
        ``decision_function``, ``predict`` (+1 inliers, -1 anomalies) and ``fit_predict`` flag
        anomalies against the threshold ``offset_`` (the unsupervised families; see
        :mod:`aekit.anomaly`). Not for classifiers and clusterers, whose ``predict`` is a class
        or a cluster: wrap those in :class:`aekit.OutlierDetector`.
    resumable : bool
        An interrupted ``fit`` can be continued from its checkpoint (``continue_fit``); not for
        a model that trains in stages, whose files do not say which stage was under way.
    """

    uses_labels: bool = False
    decoder_needs_labels: bool = False
    reconstruct_needs_labels: bool = False
    has_decoder: bool = True
    generative: bool = False
    generates_by_class: bool = False
    stochastic_decoder: bool = False
    has_prior: bool = False
    adversarial: bool = False
    has_likelihood: bool = False
    unit_interval_input: bool = False
    binary_input: bool = False
    denoising: bool = False
    contractive: bool = False
    sparse_code: bool = False
    layerwise_pretraining: bool = False
    outlier_detector: bool = False
    resumable: bool = True


@dataclass
class Tags(_SklearnTags):
    """scikit-learn's :class:`sklearn.utils.Tags` and aekit's own, as ``aekit``."""

    aekit: AekitTags = field(default_factory=AekitTags)

    @classmethod
    def extend(cls, tags: _SklearnTags) -> Tags:
        """scikit-learn's ``tags`` with aekit's defaults added."""
        if isinstance(tags, cls):
            return tags
        return cls(**{f.name: getattr(tags, f.name) for f in fields(_SklearnTags)})


def _tags(model: Any) -> _SklearnTags | None:
    try:
        return get_tags(model)
    except (AttributeError, TypeError):  # not a scikit-learn estimator (a duck-typed model)
        return None


def aekit_tags(model: Any) -> AekitTags:
    """The aekit tags of ``model``. A model that is not aekit's (a scikit-learn estimator, or a
    duck-typed object with ``transform`` and ``reconstruct``) is taken as a plain autoencoder:
    the defaults, and nothing that needs labels."""
    tags = _tags(model)
    return tags.aekit if isinstance(tags, Tags) else AekitTags()


def estimator_type(model: Any) -> str | None:
    """scikit-learn's ``estimator_type`` tag ("classifier", "clusterer", ...), or None."""
    tags = _tags(model)
    return None if tags is None else tags.estimator_type
