"""Callbacks of ``fit``: hooks that receive the trainer and the estimator.

A callback is any object with some of these methods (subclass :class:`Callback` to inherit
no-op defaults)::

    on_train_begin(trainer, estimator)
    on_epoch_end(trainer, estimator, logs)      # logs: this epoch's history_ entry
    on_train_end(trainer, estimator, reason)    # reason: becomes stop_reason_

``trainer`` is the :class:`~aekit.training.Trainer` (set ``trainer.stop_training = True`` to
stop after this epoch); ``estimator`` is the model being fitted, its ``n_epochs_`` current.
Nothing binds a callback to an estimator: the same object may serve several fits.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from . import io
from .errors import ParameterError


class Callback:
    """Base class with no-op hooks; override the ones you need."""

    def on_train_begin(self, trainer, estimator) -> None:
        pass

    def on_epoch_end(self, trainer, estimator, logs: dict) -> None:
        pass

    def on_train_end(self, trainer, estimator, reason: str) -> None:
        pass


class Checkpoint(Callback):
    """Save the model every ``every`` epochs, so a killed run loses little.

    With ``min_seconds``, a save is skipped until that many seconds have passed since the last
    one (saving costs little next to a long epoch, but a lot next to many short ones).
    ``extra_files`` (name to bytes) are saved with the model, in its save generation. Saves
    are crash-safe (see :meth:`aekit.Autoencoder.save`): ``aekit.load`` on the folder gives the
    model as of the last completed save, and ``partial_fit`` continues it with the saved
    optimiser state.

    Examples
    --------
    >>> model.fit(X, callbacks=[Checkpoint("runs/ckpt", every=5)])  # doctest: +SKIP
    """

    def __init__(
        self,
        path: str | Path,
        every: int = 1,
        metadata: dict | None = None,
        min_seconds: float = 0.0,
        extra_files: dict[str, bytes] | None = None,
    ):
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ParameterError(f"Checkpoint: every={every!r} is invalid; expected an int >= 1")
        if not (isinstance(min_seconds, int | float) and 0 <= min_seconds < math.inf):
            raise ParameterError(
                f"Checkpoint: min_seconds={min_seconds!r} is invalid; expected a number >= 0"
            )
        self.path = Path(path)
        self.every = int(every)
        self.metadata = metadata
        self.extra_files = extra_files
        self.min_seconds = float(min_seconds)
        self._last = -math.inf

    def on_train_begin(self, trainer, estimator) -> None:
        if not trainer.world.is_main:  # data-parallel training: rank 0 alone writes
            return
        io.ownership(self.path)  # a folder aekit may not write is refused before training
        self._last = -math.inf  # each fit's first due checkpoint is saved

    def on_epoch_end(self, trainer, estimator, logs: dict) -> None:
        now = time.monotonic()
        if trainer.epoch % self.every or now - self._last < self.min_seconds:
            return
        estimator.save(self.path, metadata=self.metadata, extra_files=self.extra_files)
        self._last = now


class TimeLimit(Callback):
    """Stop training at the end of the first epoch that finishes after ``seconds`` of training
    (a fixed compute budget; ``stop_reason_`` is then "callback")."""

    def __init__(self, seconds: float):
        if not (isinstance(seconds, int | float) and 0 < seconds < math.inf):
            raise ParameterError(
                f"TimeLimit: seconds={seconds!r} is invalid; expected a number > 0"
            )
        self.seconds = float(seconds)
        self._start = None

    def on_train_begin(self, trainer, estimator) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, trainer, estimator, logs: dict) -> None:
        if time.perf_counter() - self._start >= self.seconds:
            trainer.stop_training = True


class EstimatorHooks:
    """The loop's hooks (``hook(trainer, *args)``) for the estimator's callbacks: each call
    brings the estimator up to date with the trainer, then passes both on. Internal."""

    def __init__(self, callbacks, estimator: Any, sync):
        self.callbacks = list(callbacks or [])
        self.estimator = estimator
        self.sync = sync

    def _forward(self, hook: str, trainer, *args) -> None:
        self.sync()
        for cb in self.callbacks:
            fn = getattr(cb, hook, None)  # the Keras protocol: every hook is optional
            if fn is not None:
                fn(trainer, self.estimator, *args)

    def on_train_begin(self, trainer) -> None:
        self._forward("on_train_begin", trainer)

    def on_epoch_end(self, trainer, logs: dict) -> None:
        self._forward("on_epoch_end", trainer, logs)

    def on_train_end(self, trainer, reason: str) -> None:
        self._forward("on_train_end", trainer, reason)
