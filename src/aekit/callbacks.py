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

import json
import math
import os
import time
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import io
from .errors import ParameterError

if TYPE_CHECKING:  # training imports torch, which this module leaves to the estimators
    from .training import Trainer
else:  # at run time the name resolves (typing.get_type_hints), as Any
    Trainer = Any


class Callback:
    """Base class with no-op hooks; override the ones you need."""

    def on_train_begin(self, trainer: Trainer, estimator: Any) -> None:
        pass

    def on_epoch_end(self, trainer: Trainer, estimator: Any, logs: dict[str, Any]) -> None:
        pass

    def on_train_end(self, trainer: Trainer, estimator: Any, reason: str) -> None:
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

    def on_train_begin(self, trainer: Trainer, estimator: Any) -> None:
        if not trainer.world.is_main:  # data-parallel training: rank 0 alone writes
            return
        io.ownership(self.path)  # a folder aekit may not write is refused before training
        self._last = -math.inf  # each fit's first due checkpoint is saved

    def on_epoch_end(self, trainer: Trainer, estimator: Any, logs: dict[str, Any]) -> None:
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

    def on_train_begin(self, trainer: Trainer, estimator: Any) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, trainer: Trainer, estimator: Any, logs: dict[str, Any]) -> None:
        if time.perf_counter() - self._start >= self.seconds:
            trainer.stop_training = True


EPOCH_LOG = "epochs.jsonl"


def _json_line(logs: dict) -> bytes:
    """One epoch as one line of JSON (NaN and infinity as Python's JSON extensions)."""
    return (json.dumps(logs, default=io._json_default, separators=(",", ":")) + "\n").encode()


def read_epoch_log(path: str | Path) -> list[dict]:
    """The epochs of a JSON-lines log written by :class:`EpochLog`. A last line cut short (a
    process killed while writing it) is skipped; any other line that is not a JSON object is
    an error."""
    lines = Path(path).read_bytes().split(b"\n")
    epochs = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            if i == len(lines) - 1:  # no newline after it: an append that did not finish
                break
            raise ValueError(f"{path}: line {i + 1} is not JSON") from None
        if not isinstance(obj, dict):
            raise ValueError(f"{path}: line {i + 1} is not a JSON object")
        epochs.append(obj)
    return epochs


class EpochLog(Callback):
    """Append each epoch's ``history_`` entry as one line of JSON to ``folder/epochs.jsonl``,
    flushed at once, so that a run's progress can be followed (``tail -f``) and survives a
    crash. ``aekit train`` writes it in every run folder.

    The file is recorded in the folder's manifest (:mod:`aekit.io`) before it is written: a
    file of that name that aekit did not write is refused, never touched. It is not part of the
    model's checksummed save generation. At the start of each fit the log is rewritten (atomically)
    from the estimator's ``history_``, so a continued run (``partial_fit``, ``aekit train
    --resume``) drops the lines of epochs after its last checkpoint that a killed process left.
    In data-parallel training only rank 0 writes.
    """

    def __init__(self, folder: str | Path, name: str = EPOCH_LOG):
        if not io._plain_name(name):
            raise ParameterError(f"EpochLog: name={name!r} is invalid; expected a file name")
        self.folder = Path(folder)
        self.name = name
        self._failed = False

    @property
    def path(self) -> Path:
        return self.folder / self.name

    def on_train_begin(self, trainer: Trainer, estimator: Any) -> None:
        if not trainer.world.is_main:
            return
        self._failed = False
        with io.folder_lock(self.folder):
            io.claim(self.folder, [self.name])
            history = getattr(estimator, "history_", None) or []
            io.atomic_write_bytes(self.path, b"".join(_json_line(h) for h in history))

    def on_epoch_end(self, trainer: Trainer, estimator: Any, logs: dict[str, Any]) -> None:
        if not trainer.world.is_main:
            return
        if self._failed:
            return
        # O_APPEND: each line lands at the end, whole or (killed mid-write) as a cut last line
        # that read_epoch_log skips and the next fit's rewrite drops. O_NOFOLLOW: a link put
        # in its place is not followed to a file aekit did not write.
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(self.path, flags, 0o666)
            try:
                os.write(fd, _json_line(logs))
            finally:
                os.close(fd)
        except OSError as e:  # a lost log line must not cost the run: said once, then skipped
            self._failed = True
            message = f"EpochLog: cannot append to {self.path} ({e}); the epochs are still in "
            warnings.warn(message + "the model's history_", RuntimeWarning, stacklevel=2)


def _scalar_tag(key: str, logs: dict) -> str:
    """TensorBoard's name for a history key: the losses grouped by what they measure, training
    and validation side by side (``loss/train``, ``loss/val``), timings under ``time/``."""
    if key.startswith("val_"):
        return f"{key[4:]}/val"
    if key.endswith("loss") or f"val_{key}" in logs:
        return f"{key}/train"
    if key in ("seconds", "samples_per_second"):
        return f"time/{key}"
    return f"train/{key}"


def _numbers(logs: dict):
    """The numeric values of an epoch's logs (not its epoch number, not a stage name)."""
    for key, value in logs.items():
        if key == "epoch" or isinstance(value, bool) or not isinstance(value, int | float):
            continue
        yield key, float(value)


def _missing_extra(package: str, extra: str, what: str) -> ImportError:
    return ImportError(
        f"{what} needs the {package!r} package, which is not installed: pip install "
        f"'aekit[{extra}]' (or pip install {package})"
    )


class TensorBoard(Callback):
    """Write each epoch's numbers to TensorBoard event files in ``log_dir``, through torch's
    own :class:`torch.utils.tensorboard.SummaryWriter` (``pip install 'aekit[tensorboard]'``).

    Every numeric value of the epoch's ``history_`` entry is a scalar at step ``epoch``: the
    losses as ``<name>/train`` and ``<name>/val`` (``loss/train``, ``loss/val``), the timings
    under ``time/``, the rest (``lr``, ``best_epoch``) under ``train/``. At the end of training
    the learning curves are added as an image (``figures/learning_curves``); with
    ``figures=False`` nothing is drawn. :meth:`add_figures` adds more (``aekit train --log-dir``
    adds the run's latent map and reconstructions). Only rank 0 writes in data-parallel
    training.

    Examples
    --------
    >>> model.fit(X, callbacks=[TensorBoard("runs/tb")])  # doctest: +SKIP
    $ tensorboard --logdir runs/tb
    """

    def __init__(self, log_dir: str | Path, figures: bool = True):
        self.log_dir = Path(log_dir)
        self.figures = bool(figures)
        self._writer = None
        self._step = 0

    @staticmethod
    def writer_class() -> type[Any]:  # torch's SummaryWriter
        """torch's SummaryWriter; ImportError naming the extra if ``tensorboard`` is missing."""
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # torch's module imports the tensorboard package
            raise _missing_extra("tensorboard", "tensorboard", "TensorBoard") from None
        return SummaryWriter

    def open(self, purge_step: int | None = None) -> Any:  # torch's SummaryWriter
        """The SummaryWriter, created on first use. ``purge_step``: a continued run drops the
        events a killed one wrote from that step on (TensorBoard's own mechanism)."""
        if self._writer is None:
            self._writer = self.writer_class()(log_dir=str(self.log_dir), purge_step=purge_step)
        return self._writer

    def on_train_begin(self, trainer: Trainer, estimator: Any) -> None:
        if trainer.world.is_main:
            # continued from epoch n (--resume, continue_fit): epochs after n are written again
            self._step = int(trainer.epoch)
            self.open(purge_step=trainer.epoch + 1 if trainer.epoch else None)

    def on_epoch_end(self, trainer: Trainer, estimator: Any, logs: dict[str, Any]) -> None:
        if not trainer.world.is_main:
            return
        writer = self.open()
        self._step = int(logs.get("epoch", trainer.epoch))
        for key, value in _numbers(logs):
            writer.add_scalar(_scalar_tag(key, logs), value, global_step=self._step)
        writer.flush()

    def on_train_end(self, trainer: Trainer, estimator: Any, reason: str) -> None:
        if not trainer.world.is_main or self._writer is None:
            return
        history = getattr(estimator, "history_", None)
        if self.figures and history:
            from .plotting import plot_learning_curves

            self.add_figures({"learning_curves": plot_learning_curves(history)})
        self._writer.flush()

    def add_figures(self, figures: dict, step: int | None = None) -> None:
        """Add matplotlib figures (name to figure) as images under ``figures/<name>``, at
        ``step`` (the last epoch by default); each figure is closed."""
        writer = self.open()
        for name, fig in figures.items():
            fig = getattr(fig, "figure", fig)  # an Axes gives its figure
            writer.add_figure(f"figures/{name}", fig, global_step=self._step if step is None
                              else step, close=True)  # fmt: skip
        writer.flush()

    def add_pngs(self, paths: Iterable[str | Path], step: int | None = None) -> None:
        """Add PNG files (figures already drawn, e.g. a run folder's) as images under
        ``figures/<file stem>``."""
        from matplotlib.image import imread

        writer = self.open()
        for path in paths:
            image = imread(str(path))  # (H, W, 3 or 4) floats in [0, 1]
            writer.add_image(f"figures/{Path(path).stem}", image[..., :3], dataformats="HWC",
                             global_step=self._step if step is None else step)  # fmt: skip
        writer.flush()

    def close(self) -> None:
        """Close the event file (a later epoch opens a new one)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class MLflow(Callback):
    """Log a fit to MLflow (``pip install 'aekit[mlflow]'``): the estimator's parameters once
    (``mlflow.log_params``), each epoch's numbers (``mlflow.log_metrics`` at step ``epoch``),
    and, with ``artifact_folder``, that folder (a model saved there, a run folder) as artifacts
    at the end (``mlflow.log_artifacts``). It logs into the active MLflow run, or starts one
    (named ``run_name``) and ends it at the end of training. Only rank 0 logs in data-parallel
    training.

    Examples
    --------
    >>> model.fit(X, callbacks=[MLflow(experiment="digits")])  # doctest: +SKIP
    """

    def __init__(
        self,
        experiment: str | None = None,
        run_name: str | None = None,
        tracking_uri: str | None = None,
        artifact_folder: str | Path | None = None,
        log_params: bool = True,
    ):
        self.experiment = experiment
        self.run_name = run_name
        self.tracking_uri = tracking_uri
        self.artifact_folder = artifact_folder
        self.log_params = log_params
        self._started = False

    @staticmethod
    def _mlflow():
        try:
            import mlflow
        except ImportError:
            raise _missing_extra("mlflow", "mlflow", "MLflow") from None
        return mlflow

    def on_train_begin(self, trainer: Trainer, estimator: Any) -> None:
        if not trainer.world.is_main:
            return
        mlflow = self._mlflow()
        if self.tracking_uri is not None:
            mlflow.set_tracking_uri(self.tracking_uri)
        if self.experiment is not None:
            mlflow.set_experiment(self.experiment)
        self._started = mlflow.active_run() is None
        if self._started:
            mlflow.start_run(run_name=self.run_name)
        if self.log_params:
            params = {"model": type(estimator).__name__}
            for key, value in estimator.get_params(deep=False).items():
                ok = value is None or isinstance(value, str | int | float | bool | tuple | list)
                params[key] = value if ok else type(value).__name__  # a module: its class name
            mlflow.log_params(params)

    def on_epoch_end(self, trainer: Trainer, estimator: Any, logs: dict[str, Any]) -> None:
        if not trainer.world.is_main:
            return
        metrics = dict(_numbers(logs))
        self._mlflow().log_metrics(metrics, step=int(logs.get("epoch", trainer.epoch)))

    def on_train_end(self, trainer: Trainer, estimator: Any, reason: str) -> None:
        if not trainer.world.is_main:
            return
        mlflow = self._mlflow()
        mlflow.set_tag("stop_reason", reason)
        if self.artifact_folder is not None and Path(self.artifact_folder).is_dir():
            mlflow.log_artifacts(str(self.artifact_folder))
        if self._started:
            mlflow.end_run()
            self._started = False


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
