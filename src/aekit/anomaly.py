"""Anomaly detection with scikit-learn's outlier-detector contract (issue 15).

Every unsupervised family (the autoencoders, the VAE, the adversarial autoencoder) mixes in
:class:`OutlierMixin`: a ``contamination`` parameter, a threshold ``offset_`` learned at fit from
the training scores, ``decision_function(X) = score_samples(X) - offset_`` (negative for
anomalies), ``predict(X)`` (+1 inliers, -1 outliers, as :class:`sklearn.ensemble.IsolationForest`)
and ``fit_predict``. The models stay scikit-learn transformers (their ``estimator_type`` is not
"outlier_detector": scikit-learn would then run its outlier checks, which fit without a
threshold parameter it knows, in place of the transformer checks the models pass); the
capability is declared by the aekit tag ``outlier_detector`` (:mod:`aekit.tags`).

The classifiers (``StackedClassifier``, ``SemiSupervisedAAE``) and the clusterer
(``AAEClustering``) keep their own ``predict``; :class:`OutlierDetector` wraps any aekit model
(or any estimator with ``score_samples``) with the same contract.

The threshold
-------------
``contamination="auto"`` needs no anomalies: the threshold on the training rows' anomaly score
(``-score_samples``: the reconstruction deviance, the loss less a perfect reconstruction's;
docs/anomaly.md) is a robust upper bound, ``median + 3 * 1.4826 * MAD``. The median and the
median absolute deviation (scaled to the standard deviation of a normal distribution) are barely
moved by the anomalies the training rows may hold, unlike a mean and a standard deviation or a
high percentile of a few hundred rows; under a normal distribution 3 robust standard deviations
flag 0.13 % of the inliers, and the right-skewed reconstruction deviances flag a little more.
A fraction ``c`` in (0, 0.5]: ``offset_`` is the ``100 c``-th percentile of the training scores,
as IsolationForest's, so that a share ``c`` of the training rows is flagged.

Models saved before aekit had this have no ``offset_``: :meth:`OutlierMixin.decision_function`
raises :class:`~sklearn.exceptions.NotFittedError` asking to call ``set_offset(X)`` (with the
training rows) or to fit again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Self, Unpack

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.base import OutlierMixin as _SklearnOutlierMixin
from sklearn.exceptions import NotFittedError
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from ._params import Options, Real, param
from ._typing import ArrayLike, ContinueFitOptions, FitOptions, Input
from .errors import ParameterError
from .tags import aekit_tags

#: Robust standard deviations above the median training loss that "auto" puts the threshold at.
AUTO_SIGMAS = 3.0
_MAD_TO_SIGMA = 1.4826


def offset_from_scores(scores: np.ndarray, contamination: str | float) -> float:
    """The threshold on ``score_samples`` (higher is normal) for training scores ``scores``.

    ``"auto"``: ``median - 3 * 1.4826 * MAD`` of the scores (minus the robust upper bound of the
    losses); a fraction ``c``: ``np.percentile(scores, 100 * c)``.
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if scores.size == 0 or not np.all(np.isfinite(scores)):
        raise ValueError("the training scores must be finite and not empty to set a threshold")
    if isinstance(contamination, str):
        if contamination != "auto":
            raise ParameterError(f"contamination={contamination!r}: 'auto' or a fraction")
        median = float(np.median(scores))
        mad = float(np.median(np.abs(scores - median)))
        return median - AUTO_SIGMAS * _MAD_TO_SIGMA * mad
    return float(np.percentile(scores, 100.0 * float(contamination)))


CONTAMINATION = (Options("auto"), Real(0, 0.5, closed="right"))


def _is_outlier_detector(model) -> bool:
    """Availability of the detector methods: the ``outlier_detector`` tag (not a classifier's or a
    clusterer's ``predict``)."""
    if not model.__sklearn_tags__().aekit.outlier_detector:
        raise AttributeError(
            f"{type(model).__name__} has its own predict (a classifier or a clusterer): wrap it "
            "in aekit.OutlierDetector(model) for anomaly detection"
        )
    return True


@dataclass(kw_only=True, repr=False, eq=False)
class OutlierMixin:
    """The outlier-detector contract for aekit's unsupervised estimators (see module doc).

    Parameters
    ----------
    contamination : "auto" or float in (0, 0.5], default="auto"
        The share of anomalies expected in the training rows, which sets the threshold
        ``offset_``: ``"auto"``, a robust upper bound of the training rows' anomaly scores
        (their reconstruction deviances; median + 3 x
        1.4826 x MAD; needs no anomalies); a fraction ``c``, the ``c``-quantile of the training
        scores. Ignored by the classifiers and the clusterer (use :class:`aekit.OutlierDetector`).

    Attributes
    ----------
    offset_ : float
        The threshold on ``score_samples``: ``decision_function = score_samples - offset_``. Set
        by ``fit``, ``partial_fit`` and ``continue_fit`` from one pass of ``score_samples`` over
        the rows they were given (the held-out validation rows included), or by
        :meth:`set_offset`.
    """

    contamination: str | float = param("auto", *CONTAMINATION)

    # False on an instance: training sets no threshold (a stacked model's pre-trained layers,
    # whose scores no one reads, so their fits cost no extra pass over the codes).
    _sets_threshold: ClassVar[bool] = True

    def fit(self, X: Input, y: ArrayLike | None = None, **kwargs: Unpack[FitOptions]) -> Self:
        super().fit(X, y, **kwargs)
        self._offset_after_training(X, y)
        return self

    def partial_fit(
        self, X: Input, y: ArrayLike | None = None, **kwargs: Unpack[FitOptions]
    ) -> Self:
        super().partial_fit(X, y, **kwargs)
        self._offset_after_training(X, y)
        return self

    def continue_fit(
        self, X: Input, y: ArrayLike | None = None, **kwargs: Unpack[ContinueFitOptions]
    ) -> Self:
        super().continue_fit(X, y, **kwargs)
        self._offset_after_training(X, y)
        return self

    def _offset_after_training(self, X, y) -> None:
        tags = self.__sklearn_tags__().aekit
        if not (tags.outlier_detector and self._sets_threshold and "module_" in self.__dict__):
            return
        if self.__dict__.get("stop_reason_") == "interrupted":  # Ctrl-C: stop now, no threshold
            self.__dict__.pop("offset_", None)
            return
        self.set_offset(X, y)

    def set_offset(self, X: Input, y: ArrayLike | None = None) -> Self:
        """Set ``offset_`` from the scores of ``X`` (the training rows) and ``contamination``:
        for a model saved before aekit had thresholds, or to change ``contamination`` without
        training again. ``y``: each row's label, for a model whose decoder reads it."""
        check_is_fitted(self)
        scores = self._anomaly_scores(X, y)
        self.offset_ = offset_from_scores(scores, self.contamination)
        return self

    def _offset(self) -> float:
        check_is_fitted(self)
        if "offset_" not in self.__dict__:
            raise NotFittedError(
                f"this {type(self).__name__} has no anomaly threshold offset_ (saved before "
                "aekit had thresholds, or its fit was interrupted): call set_offset(X) with its "
                "training rows, or fit it again"
            )
        return self.offset_

    @available_if(_is_outlier_detector)
    def decision_function(self, X: Input, y: ArrayLike | None = None) -> np.ndarray:
        """``detector_scores(X) - offset_``, shape ``(n_samples,)``: negative for anomalies. That
        is ``score_samples(X) - offset_`` for every family but the VAE (see
        :meth:`detector_scores`).
        ``y``: each row's label, for a supervised adversarial autoencoder, whose decoder reads
        it (tag ``reconstruct_needs_labels``); ignored otherwise."""
        offset = self._offset()
        return self._anomaly_scores(X, y) - offset

    @available_if(_is_outlier_detector)
    def detector_scores(self, X: Input, y: ArrayLike | None = None) -> np.ndarray:
        """The per-row score that ``decision_function`` thresholds, higher is normal, shape
        ``(n_samples,)``: ``decision_function(X, y) + offset_``, available without a threshold.
        ``score_samples`` for every family but the VAE, whose score is its ELBO (or ``log p(x)``)
        less each row's best ``log p(x | z)`` (docs/anomaly.md). ``y`` as for
        :meth:`decision_function`."""
        return self._anomaly_scores(X, y)

    def _anomaly_scores(self, X, y=None) -> np.ndarray:
        """The score the detector thresholds: ``score_samples`` (a VAE may use ``log p(x)``)."""
        if self.__sklearn_tags__().aekit.reconstruct_needs_labels:
            return self.score_samples(X, y)
        return self.score_samples(X)

    @available_if(_is_outlier_detector)
    def predict(self, X: Input, y: ArrayLike | None = None) -> np.ndarray:
        """+1 for inliers, -1 for anomalies (``decision_function(X) < 0``), shape
        ``(n_samples,)``; ``y`` as for :meth:`decision_function`."""
        return np.where(self.decision_function(X, y) < 0, -1, 1)

    @available_if(_is_outlier_detector)
    def fit_predict(self, X: Input, y: ArrayLike | None = None, **kwargs: Any) -> np.ndarray:
        """``fit(X, y)`` then ``predict(X)`` (``y`` reaches ``predict`` only where the decoder
        reads labels)."""
        self.fit(X, y, **kwargs)
        return self.predict(
            X, y if self.__sklearn_tags__().aekit.reconstruct_needs_labels else None
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.aekit.outlier_detector = True
        return tags

    def _fitted_to_json(self) -> dict[str, Any]:
        out = super()._fitted_to_json()
        if "offset_" in self.__dict__:
            out["offset_"] = float(self.offset_)
        return out

    def _restore(self, path, config, files, device_given: bool) -> None:
        super()._restore(path, config, files, device_given)
        offset = config["fitted"].get("offset_")  # absent from saves before issue 15
        if offset is not None:
            self.offset_ = float(offset)


class OutlierDetector(_SklearnOutlierMixin, BaseEstimator):
    """Any aekit model (or estimator with ``score_samples``) as an outlier detector.

    ``fit`` fits a clone of ``model`` (scikit-learn style), then sets ``offset_`` from the
    training scores as :class:`OutlierMixin` does; ``decision_function``, ``predict`` and
    ``fit_predict`` follow :class:`sklearn.ensemble.IsolationForest`. For the classifiers
    (``StackedClassifier``, ``SemiSupervisedAAE``) and ``AAEClustering``, whose ``predict`` is a
    class or a cluster.

    Parameters
    ----------
    model : estimator
        The model, unfitted; its ``score_samples`` (higher is normal) is the score (see
        :meth:`score_samples`). A supervised adversarial autoencoder, whose score needs each
        row's label, is refused: it is an outlier detector itself.
    contamination : "auto" or float in (0, 0.5], default="auto"
        As :class:`OutlierMixin`'s.

    Attributes
    ----------
    model_ : estimator
        The fitted clone of ``model``.
    offset_ : float
        The threshold on ``score_samples``.
    """

    def __init__(self, model: Any = None, *, contamination: str | float = "auto"):
        self.model = model
        self.contamination = contamination

    def fit(self, X: Input, y: ArrayLike | None = None, **fit_params: Any) -> Self:
        """Fit a clone of ``model`` on ``X`` (``y`` for a model that learns from labels), then
        set ``offset_`` from the scores of ``X``."""
        if self.model is None:
            raise ParameterError("OutlierDetector: model is required")
        if not any(c.accepts(self.contamination) for c in CONTAMINATION):
            raise ParameterError(
                f"OutlierDetector: contamination={self.contamination!r}: 'auto' or a number in "
                "(0, 0.5]"
            )
        if aekit_tags(self.model).reconstruct_needs_labels:
            raise ParameterError(
                f"OutlierDetector: a {type(self.model).__name__} with supervised=True decodes "
                "(code, label), so its score needs each row's label, which predict and "
                "decision_function do not take: use the model itself, an outlier detector "
                "already (decision_function(X, y), predict(X, y))"
            )
        self.model_ = clone(self.model).fit(X, y, **fit_params)
        self.offset_ = offset_from_scores(self._scores(X), self.contamination)
        if hasattr(self.model_, "n_features_in_"):
            self.n_features_in_ = self.model_.n_features_in_
        return self

    def score_samples(self, X: Input) -> np.ndarray:
        """The model's score, higher is normal: its ``score_samples``, or for an aekit model
        that is an outlier detector itself, the score its own ``decision_function`` thresholds
        (a VAE's ELBO relative to each row's best ``log p(x | z)``)."""
        check_is_fitted(self)
        return self._scores(X)

    def _scores(self, X: Input) -> np.ndarray:
        if aekit_tags(self.model_).outlier_detector:
            return np.asarray(self.model_.detector_scores(X), dtype=np.float64)
        return np.asarray(self.model_.score_samples(X), dtype=np.float64)

    def decision_function(self, X: Input) -> np.ndarray:
        """``score_samples(X) - offset_``: negative for anomalies."""
        return self.score_samples(X) - self.offset_

    def predict(self, X: Input) -> np.ndarray:
        """+1 for inliers, -1 for anomalies."""
        return np.where(self.decision_function(X) < 0, -1, 1)

    def fit_predict(self, X: Input, y: ArrayLike | None = None, **fit_params: Any) -> np.ndarray:
        """``fit(X, y)`` then ``predict(X)`` (``y`` reaches a model that learns from labels)."""
        return self.fit(X, y, **fit_params).predict(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        if self.model is not None:
            inner = self.model.__sklearn_tags__()
            tags.input_tags = inner.input_tags
        return tags
