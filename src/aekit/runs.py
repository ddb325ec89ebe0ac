"""A run folder, as ``aekit train`` writes it, usable from Python as well as from the CLI.

A run folder holds a model's files (:mod:`aekit.persist`), ``data.json`` (where the data came
from, the split, and the :class:`~aekit.datasets.Scaler` applied; saved in the model's save
generation and checksummed with it), and derived files: ``metrics.json``, the PNG figures and
``report.html``, each recorded in the folder's manifest (:mod:`aekit.io`).

>>> run = aekit.Run.open("runs/digits")            # doctest: +SKIP
>>> codes = run.encode(raw_rows)                    # the run's scaling, then model.transform
>>> X_test, y_test = run.rows("test")               # the run's own test split, scaled

The training side (:func:`check_run_folder`, :func:`commit`, :data:`STAGING`) keeps the rules of
``aekit train --overwrite``: the new run trains in ``RUN/staging`` and replaces the old model
only once it is complete.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import io, persist
from ._typing import ArrayLike
from .errors import DataError, FolderError, ModelFileError

DATA_FILE = "data.json"
METRICS_FILE = "metrics.json"
# ``--overwrite`` trains the new run here, inside the run folder, and replaces the old model only
# once the new run is complete; an interrupted or diverged new run stays here.
STAGING = "staging"
# one line of JSON per epoch, appended as training goes (aekit.callbacks.EpochLog); aekit's, in
# the manifest, but not in the model's save generation
EPOCH_LOG = "epochs.jsonl"
# `aekit export RUN`'s default folder and files: derived from the model, so a new model in the
# run folder removes them (commit)
EXPORT_FOLDER = "onnx"
EXPORT_FILES = ("encoder.onnx", "decoder.onnx")
RUN_FILES = [*persist.MODEL_FILES, DATA_FILE, METRICS_FILE, EPOCH_LOG, STAGING]


# --- where a run's rows come from -------------------------------------------------------------


def data_spec(
    source: str,
    *,
    data_dir: str | None = None,
    scale: str = "auto",
    test_fraction: float = 0.2,
    split_seed: int = 0,
    label_column: str | int | None = None,
    labeled: int | None = None,
    image_size: int | tuple[int, int] | None = None,
) -> dict[str, Any]:
    """The description of a run's data that ``data.json`` stores (its ``"spec"``): enough to
    read, split and scale the same rows again, from any working directory (a file or folder is
    stored as an absolute path; a dataset name as it is; ``image_size`` as [height, width])."""
    from .datasets import stored_data_paths

    if Path(source).expanduser().exists():  # (a missing one is reported as typed, by load_split)
        source = stored_data_paths(source)[0]
    data_dir = stored_data_paths(None, data_dir)[1]
    return {
        "source": source,
        "data_dir": data_dir,
        "scale": scale,
        "test_fraction": test_fraction,
        "split_seed": split_seed,
        "label_column": label_column,
        "labeled": labeled,  # the labels kept (classifiers): --resume keeps the same
        "image_size": _size_pair(image_size),  # a folder's images resized to it as they are read
    }


def _size_pair(image_size) -> list[int] | None:
    if image_size is None or isinstance(image_size, list | tuple):
        return None if image_size is None else list(image_size)
    return [image_size, image_size]


def load_split(spec: dict[str, Any], scale=None, workers: int = 0):
    """The rows of ``spec``, split and scaled (``scale``: a name, or a fitted Scaler to apply).
    A .npy is memory-mapped and its rows gathered and scaled chunk by chunk; a folder of
    images is decoded by ``workers`` processes, a batch at a time, into a scratch memory map."""
    from .datasets import load_dataset

    return load_dataset(
        spec["source"],
        data_dir=spec.get("data_dir"),
        scale=scale or spec.get("scale", "auto"),
        test_fraction=spec.get("test_fraction", 0.2),
        random_state=spec.get("split_seed", 0),
        label_column=spec.get("label_column"),
        image_size=_stored_size(spec.get("image_size")),
        workers=workers,
    )


def _stored_size(image_size) -> tuple[int, int] | None:
    """``data.json``'s [height, width] (JSON has no tuples) as ``image_size`` takes it."""
    return tuple(image_size) if isinstance(image_size, list) else image_size


def run_data(spec: dict[str, Any], ds) -> dict[str, Any]:
    """``data.json``'s contents for a run trained on ``ds`` (``load_split(spec)``)."""
    return {
        "spec": spec,
        "source": ds.source,
        "scaling": ds.scaler.to_dict(),
        "image_shape": ds.image_shape,
        "label_names": ds.label_names,
        "n_train": len(ds.X_train),
        "n_test": len(ds.X_test),
        "n_features": int(ds.X_train.shape[1]),
    }


# --- a finished run ---------------------------------------------------------------------------


@dataclass(eq=False)
class Run:
    """A run folder's model with its data description (open one with :meth:`Run.open`).

    Attributes
    ----------
    path : Path
        The run folder.
    model : estimator
        The trained model (``aekit.load`` of the folder).
    data : dict or None
        ``data.json``: ``spec`` (source, split, scaling asked for), ``scaling`` (the fitted
        :class:`~aekit.datasets.Scaler` as a dict), ``n_features``, ``label_names``, ...; None
        for a model saved from Python, whose data scaling aekit does not know.
    """

    path: Path
    model: Any
    data: dict[str, Any] | None
    data_bytes: bytes | None = None

    @classmethod
    def open(cls, path: str | Path, *, device: str | None = None, trust_code: bool = False,
             objects: dict[str, Any] | None = None) -> Run:  # fmt: skip
        """Load the run in ``path``: its model (as :func:`aekit.load`, with the same
        ``device``, ``trust_code`` and ``objects``) and its ``data.json``, which must be the
        one saved with the model (the same save generation, by checksum)."""
        path = Path(path)
        model = persist.load(path, device=device, trust_code=trust_code, objects=objects)
        data, raw = _read_data_json(path)
        return cls(path, model, data, raw)

    # -- the data description --------------------------------------------------------------

    def _need_data(self) -> dict[str, Any]:
        if self.data is None:
            raise DataError(
                f"{self.path}: no {DATA_FILE} (this model was saved from Python, not by `aekit "
                "train`), so the scaling of the data is unknown; use the model itself "
                "(run.model.transform) on rows scaled as at fit time"
            )
        return self.data

    @property
    def spec(self) -> dict[str, Any]:
        """Where the run's data came from, and how it was split and scaled."""
        return self._need_data()["spec"]

    @property
    def scaler(self):
        """The :class:`~aekit.datasets.Scaler` the run applied to its data."""
        from .datasets import Scaler

        return Scaler.from_dict(self._need_data()["scaling"])

    @property
    def label_names(self) -> list | None:
        return None if self.data is None else self.data.get("label_names")

    def metrics(self) -> dict[str, Any] | None:
        """``metrics.json`` (the test metrics), or None when it was not written."""
        file = self.path / METRICS_FILE
        if not file.exists():
            return None
        metrics = io.read_json(file, "run metrics (metrics.json)")
        if not isinstance(metrics, dict):
            raise ModelFileError(f"{file}: not aekit run metrics (expected a JSON object)")
        return metrics

    def files(self, *, aekits: bool = False) -> list[str]:
        """The names of the files in the run folder (``aekits``: only those aekit wrote, as
        its manifest lists them)."""
        names = sorted(p.name for p in self.path.iterdir() if p.is_file()
                       and not p.name.startswith("."))  # fmt: skip
        if aekits:
            own = set(io.read_manifest(self.path) or ())
            names = [n for n in names if n in own]
        return names

    # -- data through the run's scaling ------------------------------------------------------

    def scale(self, raw: ArrayLike) -> np.ndarray:
        """Raw rows (the data's original units, 2-D) scaled as the run scaled its data."""
        return self.scaler.transform(raw)

    def encode(self, raw: ArrayLike) -> np.ndarray:
        """Codes of raw rows: the run's scaling, then ``model.transform``."""
        return self.model.transform(self.scale(raw))

    def reconstruct(self, raw: ArrayLike, *, scaled: bool = False) -> np.ndarray:
        """Reconstructions of raw rows, in the data's original units (``scaled=True``: in the
        model's scaled units)."""
        recon = self.model.reconstruct(self.scale(raw))
        return recon if scaled else self.scaler.inverse_transform(recon)

    def export(self, path: str | Path | None = None, format: str = "onnx") -> dict[str, Path]:
        """The model's :meth:`~aekit.estimator.BaseAutoencoder.export` with the run's scaling
        baked in: ``encoder.onnx`` takes raw rows (the data's original units, as ``aekit encode
        RUN --data raw.csv`` reads them) and ``decoder.onnx`` returns rows in those units.
        ``path``: a folder (default ``onnx`` inside the run folder). A model saved from Python
        (no ``data.json``, so no known scaling) exports as :meth:`model.export` does."""
        path = self.path / "onnx" if path is None else Path(path)
        scaling = None if self.data is None else self.scaler.affine()
        return self.model.export(path, format, scaling=scaling)

    def rows(self, split: str = "all", *, source: str | None = None, data_dir: str | None = None,
             label_column: str | int | None = None,
             workers: int = 0) -> tuple[np.ndarray, np.ndarray | None]:  # fmt: skip
        """``(X, y)``: rows scaled with the run's scaling, from the run's own data (``split``
        "train", "test" or "all", as the run split it) or from ``source`` (all its rows; the
        run's label column is dropped when a CSV has it; a folder of images is resized to the
        run's image size, if it had one). The scaling is applied while the rows are gathered,
        chunk by chunk: a memory-mapped .npy is never loaded whole; a folder of images is
        decoded by ``workers`` processes, a batch at a time."""
        from .datasets import read_data, scaled_rows

        if split not in ("all", "train", "test"):
            raise DataError(f"split={split!r}: expected 'all', 'train' or 'test'")
        spec = dict(self.spec)
        foreign = source is not None and not self.is_own_source(source)
        if foreign:
            label = _label_column_for(source, self._need_data(), label_column)
            size = spec.get("image_size") if Path(source).expanduser().is_dir() else None
            spec.update(source=source, data_dir=data_dir, label_column=label, image_size=size)
        elif data_dir is not None:
            spec["data_dir"] = data_dir
        scaler = self.scaler
        if split == "all":
            raw = read_data(spec["source"], data_dir=spec.get("data_dir"),
                            label_column=spec.get("label_column"),
                            image_size=_stored_size(spec.get("image_size")),
                            workers=workers)  # fmt: skip
            y = self._run_labels(raw.y, raw.label_names, raw.source) if foreign else raw.y
            return scaled_rows(raw.X, None, scaler, raw.source), y
        ds = load_split(spec, scale=scaler, workers=workers)
        X, y = (ds.X_train, ds.y_train) if split == "train" else (ds.X_test, ds.y_test)
        return X, (self._run_labels(y, ds.label_names, ds.source) if foreign else y)

    def _run_labels(self, y, names, source) -> np.ndarray | None:
        """``y`` of another source as the run's class numbers: every source numbers its labels
        by its own sorted values, so a file holding some of the classes would otherwise be read
        with 3 as class 0 (by a supervised decoder, the k-NN accuracy against the run's
        training labels, the figures' legend). A label the run never had is a DataError; a
        missing one stays -1."""
        run_names = self.label_names
        if y is None or names is None or run_names is None:
            return y
        index = {str(name): k for k, name in enumerate(run_names)}
        unknown = sorted({str(n) for n in names} - set(index))
        if unknown:
            shown = ", ".join(unknown[:5]) + (", ..." if len(unknown) > 5 else "")
            raise DataError(
                f"{source}: labels {shown} are not among the run's classes "
                f"({', '.join(map(str, run_names[:10]))}{', ...' if len(run_names) > 10 else ''}); "
                "labels are read as the run's classes (a supervised model's decoder, the k-NN "
                "accuracy and the figures' legend use them): drop those rows, leave the labels "
                "out, or train on data that has them"
            )
        table = np.array([index[str(n)] for n in names], dtype=np.int64)
        y = np.asarray(y)
        return np.where(y >= 0, table[np.clip(y, 0, None)], y) if len(table) else y

    def is_own_source(self, source: str) -> bool:
        """Whether ``source`` (as typed, relative or not) names the run's own data."""
        from .datasets import stored_data_paths

        return stored_data_paths(source)[0] == stored_data_paths(self.spec["source"])[0]

    # -- derived files -----------------------------------------------------------------------

    def write_metrics(self, metrics: dict[str, Any]) -> Path:
        """Write ``metrics.json`` (recorded in the folder's manifest, under its lock)."""
        with io.folder_lock(self.path):
            io.claim(self.path, [METRICS_FILE])
            return io.write_json(self.path / METRICS_FILE, metrics)

    def write_figures(
        self, X: ArrayLike, y: ArrayLike | None, out: str | Path | None = None, max_rows: int = 5000
    ) -> tuple[list[Path], list[str]]:
        """Draw the figures that fit the model for rows ``X`` (labels ``y``) into ``out`` (the
        run folder by default). Returns ``(written, skipped)``: a figure whose file aekit did
        not write is left as it is."""
        return write_figures(Path(out or self.path), self.model, X, y, self.label_names,
                             max_rows)  # fmt: skip


def write_figures(out: Path, model, X, y, label_names, max_rows: int = 5000):
    """Draw a model's figures into ``out`` (a run folder or a folder of figures: new, empty or
    aekit's), each recorded in its manifest. Returns ``(written paths, skipped names)``."""
    from .plotting import figure_inputs, run_figures, save_figure

    figures = run_figures(**figure_inputs(model, X, y, label_names, max_rows))
    with io.folder_lock(out):
        skipped = sorted(set(io.unclaimable(out, [f"{name}.png" for name in figures])))
        names = [f"{name}.png" for name in figures if f"{name}.png" not in skipped]
        io.claim(out, names)
        return [save_figure(figures[n[:-4]], out / n) for n in names], skipped


def _read_data_json(run: Path) -> tuple[dict[str, Any] | None, bytes | None]:
    """``data.json`` of the save generation that ``load`` took (re-read here, in case a save
    happened since), checked against the checksum its config records."""
    files = io.resolve_generation(run, [*persist.MODEL_FILES[:-1], DATA_FILE,
                                        persist.CONFIG_FILE]) or {}  # fmt: skip
    data_path = files.get(DATA_FILE, run / DATA_FILE)
    if not data_path.exists():
        return None, None
    raw = data_path.read_bytes()
    config = io.read_json(files.get(persist.CONFIG_FILE, run / persist.CONFIG_FILE),
                          "model config (config.json)")  # fmt: skip
    sums = config.get("checksums") if isinstance(config, dict) else None
    saved = sums.get(DATA_FILE) if isinstance(sums, dict) else None
    if saved is not None and io.sha256_bytes(raw) != saved:
        raise ModelFileError(
            f"{data_path}: not the data description saved with this model (its checksum differs: "
            "edited, or written by another run); train the run again"
        )
    data = io.read_json(data_path, "run data description (data.json)")
    check_run_data(data, data_path)
    return data, raw


def check_run_data(data: Any, where: Path) -> None:
    """Refuse a ``data.json`` whose fields do not have the types aekit wrote."""

    def bad(what: str):
        raise ModelFileError(f"{where}: {what}; not an aekit run data description. Train the "
                             "run again, or load the model alone with aekit.load")  # fmt: skip

    if not isinstance(data, dict):
        bad(f"expected a JSON object, found {type(data).__name__}")
    spec = data.get("spec")
    if not isinstance(spec, dict) or not isinstance(spec.get("source"), str):
        bad("'spec' must be an object whose 'source' is a string")
    scaling = data.get("scaling")
    if not isinstance(scaling, dict) or not isinstance(scaling.get("kind"), str):
        bad("'scaling' must be an object with a 'kind'")
    for key in ("n_features", "n_train", "n_test"):
        v = data.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
            bad(f"'{key}' must be an integer, found {v!r}")
    names = data.get("label_names")
    if names is not None and not isinstance(names, list):
        bad("'label_names' must be a list")


def describe(path: str | Path) -> dict[str, Any]:
    """What ``aekit info`` shows: the run's class, parameters, fitted attributes, data, last
    epoch, metrics and files, from its JSON files alone (no torch, no weights), as of its last
    complete save (after an interrupted save, the one ``aekit.load`` takes)."""
    folder, config, files = persist.read_config(path)
    history = persist.read_history(folder, config, files)
    if history and not isinstance(history[-1], dict):
        raise ModelFileError(f"{files[persist.HISTORY_FILE]}: its epochs are not JSON objects")
    data, _ = _read_data_json(folder)
    run = Run(folder, None, data)  # the folder's files, without its model (no torch)
    return {
        "run": str(path),
        "class": config["class"],
        "aekit_version": config.get("aekit_version"),
        "params": config["params"],
        "fitted": config["fitted"],
        "data": data,
        "last_epoch": history[-1] if history else None,
        "metrics": run.metrics(),
        "files": run.files(),
    }


def _label_column_for(source: str, data: dict[str, Any], explicit):
    """The label column to drop from new data: ``explicit`` if given; else the run's own label
    column when the new source is a CSV file that has it (by name, or by index when the file
    has one column more than the model's features); else none."""
    import csv

    if explicit is not None:
        return explicit
    column = data["spec"].get("label_column")
    if column is None or not str(source).lower().endswith(".csv"):
        return None
    try:
        with open(source, newline="", encoding="utf-8", errors="replace") as f:
            fields = [c.strip() for c in next(csv.reader(f), [])]
    except OSError:
        return None  # read_data reports the file problem itself
    if str(column) in fields:
        return column
    if str(column).lstrip("-").isdigit() and len(fields) == data.get("n_features", -2) + 1:
        return column
    return None


# --- training into a run folder ---------------------------------------------------------------


def has_model(folder: Path) -> bool:
    """Whether ``folder`` holds a saved model (a complete save generation)."""
    return folder.is_dir() and io.resolve_generation(folder, persist.MODEL_FILES) is not None


def check_writable(folder: Path, names: list[str]) -> None:
    """Fail now, before long work, if aekit could not write ``names`` into ``folder`` later: a
    folder holding files aekit did not write, such a file among ``names``, or another writer."""
    io.check_claimable(folder, names)
    io.check_unlocked(folder)


def check_run_folder(out: Path, overwrite: bool) -> bool:
    """Whether ``out`` holds a model that a new run will replace. Refused (before any work, and
    again under the lock): a folder aekit may not write, one another writer holds, a model
    without ``overwrite``, a staging folder that is not aekit's own."""
    replacing = has_model(out)
    if replacing and not overwrite:
        raise FolderError(
            f"{out} already holds a trained model; pass --overwrite to replace it, or choose "
            "another --out"
        )
    staging = out / STAGING
    if staging.is_symlink() or (staging.exists() and not staging.is_dir()):
        raise FolderError(f"{staging} is not a folder aekit created (a link or a file); move "
                          "it, and train again")  # fmt: skip
    check_writable(out, RUN_FILES)
    return replacing


def write_epoch_log(out: Path, history) -> Path:
    """Write ``out/epochs.jsonl`` from ``history`` at once (recorded in the manifest)."""
    from .callbacks import _json_line

    with io.folder_lock(out):
        io.claim(out, [EPOCH_LOG])
        return io.atomic_write_bytes(out / EPOCH_LOG, b"".join(_json_line(h) for h in history))


def discard_staging(out: Path) -> bool:
    """Remove ``out/staging`` (what aekit wrote there, then the folder if that empties it);
    True if there was one."""
    return io.remove_owned_folder(out / STAGING)


def derived_files() -> set[str]:
    """The names of the files aekit derives from a run's model in its folder (metrics, figures,
    report): a new model in the folder makes them stale."""
    from .plotting import CAPTIONS

    return {METRICS_FILE, "report.html", *(f"{name}.png" for name in CAPTIONS)}


def remove_export(out: Path) -> None:
    """Remove the ONNX files ``aekit export RUN`` wrote into ``RUN/onnx`` (the old model's),
    and the folder if nothing else is in it. Files aekit did not write there stay (with the
    folder's manifest), and so does a folder that is a link."""
    folder = out / EXPORT_FOLDER
    if folder.is_symlink() or not folder.is_dir() or io.read_manifest(folder) is None:
        return
    with io.folder_lock(folder):
        io.remove_owned(folder, list(EXPORT_FILES))
    # the folder goes only when nothing else is in it: with a file of the user's there, the
    # manifest stays, so that a later export may write next to that file again
    if {p.name for p in folder.iterdir()} <= {io.MANIFEST, io.LOCK_FILE}:
        io.remove_owned_folder(folder)


def commit(out: Path, model, metadata: dict, data_bytes: bytes) -> None:
    """Make ``out`` hold the finished run: the files an earlier run derived there (its metrics,
    figures, report) go first, then the model and data.json replace the old ones in one save
    generation, so that the folder never pairs one run's model with another's data (the ONNX
    files `aekit export` wrote into RUN/onnx go too). Outputs a
    user asked for by name (``aekit encode RUN --out RUN/codes.npy``) stay: aekit wrote them, but
    they are the user's results."""
    stale = [n for n in io.read_manifest(out) or () if n in derived_files()]
    io.remove_owned(out, stale)
    remove_export(out)
    model.save(out, metadata=metadata, extra_files={DATA_FILE: data_bytes})
