"""Partially labelled targets, shared by the models that learn from labels (the stacked
classifier, the adversarial autoencoders).

Labels are encoded once, at the estimator's edge, as class indices into ``classes_`` (int64), with
-1 for an unlabelled row (one labelled ``unlabeled_label``, default -1; None turns the marker off).
The marker can never be a class: scikit-learn's check that fits labels ``[-1, 1]`` is an expected
failure for these models for that reason.
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
from sklearn.utils import assert_all_finite
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import column_or_1d

from .._params import Instance, Integer
from .._typing import ArrayLike, Callbacks, Input
from ..errors import DataError
from ..sources import take_rows

#: The constraints of an ``unlabeled_label`` parameter: ``param(-1, *LABEL_MARKER)``.
LABEL_MARKER = (None, Integer(), Instance(str, "a string"))


class LabelsMixin:
    """``classes_`` and the class-index targets of a model with an ``unlabeled_label`` field."""

    unlabeled_label: Any
    _classes_hint: np.ndarray | None = None  # partial_fit(classes=...) on the first call

    def _labelled(self, y: np.ndarray) -> np.ndarray:
        marker = self.unlabeled_label
        if marker is None or (y.dtype.kind in "USO") != isinstance(marker, str):
            return np.ones(len(y), dtype=bool)  # a marker of another type matches no label
        return y != marker

    def _label_targets(
        self, X: np.ndarray, y, reset: bool, *, all_labelled: str | None = None
    ) -> np.ndarray:
        """Class indices (-1: unlabelled) of ``y``, one per row of ``X``; on ``reset``, sets
        ``classes_`` from the labelled rows. ``all_labelled``: why every row needs a label (an
        unlabelled row is then an error saying so)."""
        name = type(self).__name__
        if y is None:
            raise ValueError(
                f"{name} requires y to be passed, but the target y is None; give the labels "
                f"(rows labelled {self.unlabeled_label!r} count as unlabelled)"
            )
        y = column_or_1d(np.asarray(y), warn=True)
        if len(y) != len(X):
            raise DataError(f"y has {len(y)} labels but X has {len(X)} rows")
        if y.dtype.kind == "f":
            assert_all_finite(y, input_name="y")
        labelled = self._labelled(y)
        if not labelled.any():
            raise DataError(
                f"every row is labelled {self.unlabeled_label!r} (unlabelled): {name} needs some "
                "labelled rows"
            )
        if all_labelled and not labelled.all():
            first = int(np.flatnonzero(~labelled)[0])
            raise DataError(
                f"row {first} of y is unlabelled ({self.unlabeled_label!r}), but {all_labelled}"
            )
        check_classification_targets(y[labelled])
        if reset:
            hint = self._classes_hint
            self.classes_ = np.unique(y[labelled]) if hint is None else hint
            if len(self.classes_) < 2:
                raise DataError(
                    f"the labelled rows hold one class only ({self.classes_.tolist()[0]!r}); "
                    f"{name} needs at least two"
                )
        return self._encode_labels(y, labelled)

    def _encode_labels(self, y: np.ndarray, labelled: np.ndarray | None = None) -> np.ndarray:
        """Class indices, -1 for unlabelled rows; a class not in ``classes_`` is an error."""
        y = np.asarray(y)
        if labelled is None:
            labelled = self._labelled(y)
        idx = np.searchsorted(self.classes_, y[labelled])
        idx = np.clip(idx, 0, len(self.classes_) - 1)
        unknown = self.classes_[idx] != y[labelled]
        if unknown.any():
            new = sorted(set(y[labelled][unknown].tolist()))
            raise DataError(
                f"y holds classes not seen at fit time: {new[:5]} (known: "
                f"{self.classes_.tolist()[:20]})"
            )
        out = np.full(len(y), -1, dtype=np.int64)
        out[labelled] = idx
        return out

    def _labelled_validation(self, validation_data, *, keep_unlabelled: bool):
        """``(X_val, class indices)`` from ``validation_data = (X_val, y_val)``."""
        if not (isinstance(validation_data, tuple) and len(validation_data) == 2):
            raise DataError(
                f"validation_data for {type(self).__name__} is a tuple (X_val, y_val): the model "
                "learns from labels"
            )
        X_val = self._validate_X(validation_data[0], reset=False, source="validation_data")
        self._check_source(X_val, validation_data[1])  # an iterable has no rows to pair with y
        self._check_values(X_val, "validation_data")
        y_val = column_or_1d(np.asarray(validation_data[1]), warn=False)
        if len(y_val) != len(X_val):
            raise DataError(f"validation_data: {len(y_val)} labels for {len(X_val)} rows")
        labelled = self._labelled(y_val)
        if keep_unlabelled:
            return X_val, self._encode_labels(y_val, labelled)
        # unlabelled validation rows cannot be scored
        return take_rows(X_val, np.flatnonzero(labelled)), self._encode_labels(y_val[labelled])

    def partial_fit(
        self,
        X: Input,
        y: ArrayLike | None = None,
        classes: ArrayLike | None = None,
        *,
        validation_data: Input | None = None,
        callbacks: Callbacks = None,
    ) -> Self:
        """One more epoch over ``X``. ``classes`` (scikit-learn's incremental-learning
        convention) fixes ``classes_`` on the first call, so later batches may lack some
        classes."""
        self._set_classes_hint(classes)
        try:
            return super().partial_fit(X, y, validation_data=validation_data, callbacks=callbacks)
        finally:
            self._classes_hint = None

    def _set_classes_hint(self, classes) -> None:
        """``partial_fit(classes=...)`` (scikit-learn's incremental-learning convention) fixes
        ``classes_`` on the first call, so later batches may lack some classes."""
        if classes is not None:
            classes = np.unique(np.asarray(classes))
            classes = classes[self._labelled(classes)]  # the unlabelled marker is no class
            if hasattr(self, "classes_") and not np.array_equal(classes, self.classes_):
                raise DataError(
                    f"classes={classes.tolist()} differs from classes_={self.classes_.tolist()} "
                    "of the first partial_fit"
                )
        self._classes_hint = classes

    # -- saving: classes_ goes into config.json's "fitted" section ---------------------------

    def _fitted_to_json(self) -> dict[str, Any]:
        out = super()._fitted_to_json()
        if hasattr(self, "classes_"):
            out["classes_"] = self.classes_.tolist()
        return out

    def _restore(self, path, config, files, device_given: bool) -> None:
        if "classes_" in config["fitted"]:  # before the module is built: it sizes the network
            self.classes_ = np.asarray(config["fitted"]["classes_"])
        super()._restore(path, config, files, device_given)
