"""The ``aekit`` command: train, encode, reconstruct, info, plot.

Results go to stdout (``--json`` for machine-readable output), progress and notes to stderr.
Exit codes: 0 ok, 1 a failure while running (the loss diverged), 2 bad input or usage (one line,
no traceback; set ``AEKIT_DEBUG=1`` for the traceback). torch is imported only by the commands
that need it, so ``aekit --help`` is fast.

A run folder (``--out``) holds the model files (``config.json``, ``model.safetensors``,
``optimizer.*``, ``history.json``), ``data.json`` (where the data came from, and the scaling it
applied, which ``encode`` and ``reconstruct`` re-apply to new raw data), ``metrics.json`` and the
figures.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

from ._version import __version__
from .errors import AekitError, DataError, TrainingDivergedError
from .models.catalog import FAMILIES

# CLI model name -> estimator class name
MODELS = {cli: name for cli, (_, name) in FAMILIES.items()}

DATA_FILE = "data.json"
METRICS_FILE = "metrics.json"
# ``--overwrite`` trains the new run here, inside the run folder, and replaces the old model only
# once the new run is complete; an interrupted or diverged new run stays here.
STAGING = "staging"


class UsageError(AekitError):
    """The command line itself is wrong (exit code 2)."""


# --- parameters from the command line --------------------------------------------------------


def parse_value(text: str) -> Any:
    """A ``--set`` value: none/null, true/false, int, float, comma lists ("64,32", "(64, 32)",
    "[64]") as tuples, or else the string itself."""
    t = text.strip()
    low = t.lower()
    if low in ("none", "null"):
        return None
    if low in ("true", "false"):
        return low == "true"
    if t[:1] in "([" and t[-1:] in ")]":
        return tuple(parse_value(p) for p in t[1:-1].split(",") if p.strip())
    if "," in t:
        return tuple(parse_value(p) for p in t.split(",") if p.strip())
    for cast in (int, float):
        try:
            return cast(t)
        except ValueError:
            pass
    return t


def _coerce(cls, key: str, value: Any) -> Any:
    if key in cls._sequence_params and value is not None:
        if value == "" or value == ():
            return ()
        if isinstance(value, int | float | str):
            value = (value,)
        return tuple(value)
    return value


def resolve_params(cls, args: argparse.Namespace) -> tuple[dict[str, Any], set[str]]:
    """Defaults < ``--config`` file < ``--set`` < explicit flags. Returns the parameters that were
    given and the set of names the user chose explicitly (anywhere)."""
    known = set(cls().get_params(deep=False))
    given: dict[str, Any] = {}

    def put(key: str, value: Any, where: str):
        if key not in known:
            raise UsageError(
                f"unknown parameter {key!r} ({where}) for {cls.__name__}; known: "
                + ", ".join(sorted(known))
            )
        given[key] = _coerce(cls, key, value)

    if args.config:
        path = Path(args.config)
        try:
            with path.open("rb") as f:
                table = tomllib.load(f)
        except FileNotFoundError:
            raise UsageError(f"{path}: config file not found") from None
        except tomllib.TOMLDecodeError as e:
            raise UsageError(f"{path}: not valid TOML ({e})") from None
        for key, value in table.items():
            put(key, value, f"in {path}")
    for item in args.set or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set {item!r}: expected key=value, for example --set lr=0.001")
        put(key.strip(), parse_value(value), "--set")
    flags = {
        "latent": "latent_dim",
        "hidden": "hidden",
        "epochs": "max_epochs",
        "batch_size": "batch_size",
        "lr": "lr",
        "loss": "loss",
        "architecture": "architecture",
        "device": "device",
        "seed": "random_state",
        "prior": "prior",
        "n_components": "n_components",
        "n_clusters": "n_clusters",
    }
    for flag, key in flags.items():
        value = getattr(args, flag, None)
        if value is not None:
            put(key, parse_value(value) if isinstance(value, str) else value, f"--{flag}")
    for key, (_, builtin) in cls._code_params.items():
        value = given.get(key)
        if isinstance(value, str) and value not in builtin and not args.trust_code:
            raise UsageError(
                f"{key}={value!r} names code to import, which aekit does only with --trust-code "
                "(importing a module runs its code)"
            )
    return given, set(given)


# --- data -----------------------------------------------------------------------------------


def _data_spec(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "source": args.data,
        "data_dir": args.data_dir,
        "scale": args.scale,
        "test_fraction": args.test_fraction,
        "split_seed": args.split_seed,
        "label_column": args.label_column,
        "labeled": args.labeled,  # the labels kept (classifiers): --resume keeps the same
    }


def _load_split(spec: dict[str, Any], scale=None):
    """The run's rows, split and scaled (``scale``: a name, or a fitted Scaler to apply). A .npy
    is memory-mapped and its rows gathered and scaled chunk by chunk (see ``load_dataset``)."""
    from .datasets import load_dataset

    return load_dataset(
        spec["source"],
        data_dir=spec.get("data_dir"),
        scale=scale or spec.get("scale", "auto"),
        test_fraction=spec.get("test_fraction", 0.2),
        random_state=spec.get("split_seed", 0),
        label_column=spec.get("label_column"),
    )


def _label_column_for(source: str, run_data: dict[str, Any], explicit: str | None):
    """The label column to drop from new data: ``--label-column`` if given; else the run's own
    label column when the new source is a CSV file that has it (by name, or by index when the file
    has one column more than the model's features); else none."""
    if explicit is not None:
        return explicit
    column = run_data["spec"].get("label_column")
    if column is None or not str(source).lower().endswith(".csv"):
        return None
    try:
        with open(source, newline="") as f:
            fields = [c.strip() for c in next(csv.reader(f), [])]
    except OSError:
        return None  # read_data reports the file problem itself
    if str(column) in fields:
        return column
    if str(column).lstrip("-").isdigit() and len(fields) == run_data["n_features"] + 1:
        return column
    return None


def _rows_for(args: argparse.Namespace, run_data: dict[str, Any], split: str):
    """Raw rows to encode, reconstruct or plot: ``--data`` (default the run's own data), the
    chosen split, scaled with the run's stored scaling. Returns ``(X_scaled, y, scaler)``."""
    from .datasets import Scaler, read_data, scaled_rows

    spec = dict(run_data["spec"])
    source, data_dir = args.data, args.data_dir
    if source is not None and source != spec["source"]:
        label = _label_column_for(source, run_data, args.label_column)
        spec.update(source=source, data_dir=data_dir, label_column=label)
    elif data_dir is not None:
        spec["data_dir"] = data_dir
    scaler = Scaler.from_dict(run_data["scaling"])
    # The stored scaling is applied while the rows are gathered, chunk by chunk: no unscaled
    # copy, and a memory-mapped .npy is never loaded whole.
    if split == "all":
        raw = read_data(
            spec["source"], data_dir=spec.get("data_dir"), label_column=spec.get("label_column")
        )
        return scaled_rows(raw.X, None, scaler, raw.source), raw.y, scaler
    ds = _load_split(spec, scale=scaler)
    if split == "train":
        return ds.X_train, ds.y_train, scaler
    return ds.X_test, ds.y_test, scaler


def _output_file(args: argparse.Namespace, flag: str = "--out", default: str | None = None) -> Path:
    """The file a command writes its result to (``--out``, ``--html``), checked before any work:
    not empty, not one of the command's inputs (its ``--data`` and the run's data source, or
    any file of the run folders it reads, except ``default``, the command's own output there),
    and not an existing file unless ``--overwrite`` says to replace it. A file written into an
    aekit folder is recorded in its manifest."""
    from .io import claim, folder_lock, read_manifest

    text = getattr(args, flag.lstrip("-").replace("-", "_"))
    if text is None or not str(text).strip():
        raise UsageError(f"{flag} is empty (an unset shell variable?); give the file to write")
    path = Path(text)
    inputs = [Path(p) for p in (getattr(args, "data", None), getattr(args, "_run_source", None))
              if p]  # fmt: skip
    runs = getattr(args, "runs", None) or [getattr(args, "run", None)]
    for run in map(Path, filter(None, runs)):
        if run.is_dir():
            inputs += [run / name for name in os.listdir(run) if name != default]
    for source in inputs:
        if _same_file(path, source):
            raise UsageError(
                f"{flag} {path} is one of this command's inputs ({source}); write to another file"
            )
    if path.is_dir():
        raise UsageError(f"{flag} {path} is a folder; give a file name")
    if os.path.lexists(path) and not getattr(args, "overwrite", False):
        raise UsageError(f"{flag} {path} already exists; pass --overwrite to replace it")
    if read_manifest(path.parent) is not None:  # into an aekit folder: aekit's file from now on
        with folder_lock(path.parent):
            claim(path.parent, [path.name])
    return path


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _array_output(args: argparse.Namespace, what: str) -> Path:
    path = _output_file(args)
    if path.suffix not in (".npy", ".csv"):
        raise UsageError(f"--out {path}: write {what} to a .npy or .csv file")
    return path


def _write_array(path: Path, array) -> Path:
    import io as _io

    import numpy as np

    from .io import atomic_write_bytes

    if path.suffix == ".npy":
        buf = _io.BytesIO()
        np.save(buf, array, allow_pickle=False)
        return atomic_write_bytes(path, buf.getvalue())
    if path.suffix == ".csv":
        buf = _io.StringIO()
        np.savetxt(buf, array, delimiter=",", fmt="%.8g")
        return atomic_write_bytes(path, buf.getvalue().encode())
    raise UsageError(f"--out {path}: write to a .npy or .csv file")  # _array_output checks it


# --- commands -----------------------------------------------------------------------------


def _say(msg: str) -> None:
    print(msg, file=sys.stderr)


def _check_writable(folder: Path, names: list[str]) -> None:
    """Fail now, before long work, if aekit could not write ``names`` into ``folder`` later: a
    folder holding files aekit did not write, such a file among ``names``, or another writer."""
    from .io import check_claimable, check_unlocked

    check_claimable(folder, names)
    check_unlocked(folder)


def _run_files(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if p.is_file() and not p.name.startswith("."))


def _run_folder(text: str | None) -> Path:
    if text is None or not str(text).strip():
        raise UsageError("--out is empty (an unset shell variable?); give the run folder to write")
    return Path(text)


def _has_model(folder: Path) -> bool:
    from .base import MODEL_FILES
    from .io import resolve_generation

    return folder.is_dir() and resolve_generation(folder, MODEL_FILES) is not None


def _discard_staging(out: Path) -> bool:
    """Remove ``out/staging`` (what aekit wrote there, then the folder if that empties it);
    True if there was one."""
    from .io import remove_owned_folder

    return remove_owned_folder(out / STAGING)


def _check_run_folder(out: Path, overwrite: bool) -> bool:
    """Whether ``out`` holds a model that this run will replace. Refused (before any work, and
    again under the lock): a folder aekit may not write, one another writer holds, a model
    without ``--overwrite``, a staging folder that is not aekit's own."""
    from .base import MODEL_FILES
    from .errors import FolderError

    replacing = _has_model(out)
    if replacing and not overwrite:
        raise UsageError(
            f"{out} already holds a trained model; pass --overwrite to replace it, or choose "
            "another --out"
        )
    staging = out / STAGING
    if staging.is_symlink() or (staging.exists() and not staging.is_dir()):
        raise FolderError(f"{staging} is not a folder aekit created (a link or a file); move "
                          "it, and train again")  # fmt: skip
    _check_writable(out, [*MODEL_FILES, DATA_FILE, METRICS_FILE, STAGING])
    return replacing


def _commit_run(out: Path, model, metadata: dict, data_bytes: bytes) -> None:
    """Make ``out`` hold the finished run: the files an earlier run left there (its metrics,
    figures, report) go first, then the model and data.json replace the old ones in one save
    generation, so that the folder never pairs one run's model with another's data."""
    from .base import MODEL_FILES
    from .io import LOCK_FILE, MANIFEST, PREVIOUS, read_manifest, remove_owned

    keep = {*MODEL_FILES, DATA_FILE, MANIFEST, LOCK_FILE, STAGING}
    stale = [n for n in read_manifest(out) or () if n.removesuffix(PREVIOUS) not in keep]
    remove_owned(out, stale)
    model.save(out, metadata=metadata, extra_files={DATA_FILE: data_bytes})


def cmd_train(args: argparse.Namespace) -> int:
    from sklearn.base import is_classifier

    from . import io
    from .base import seed_from
    from .models.catalog import cli_class

    if args.resume:
        return _resume(args)
    if args.model is None or args.data is None:
        raise UsageError("train needs a model name and --data (or --resume, to continue the "
                         "run in --out)")  # fmt: skip
    cls = cli_class(args.model)
    params, chosen = resolve_params(cls, args)
    out = _run_folder(args.out)
    replacing = _check_run_folder(out, args.overwrite)  # before any work
    spec = _data_spec(args)
    ds = _load_split(spec)
    images_in_unit = (
        ds.image_shape is not None and float(ds.X_train.min()) >= 0 and ds.X_train.max() <= 1
    )
    defaults = cls().get_params()
    notes = []  # said once the settings are known to work, so that an error is the only line
    if "loss" not in chosen and "loss" in defaults and images_in_unit:
        params["loss"] = "bce"
        if not is_classifier(cls()):
            notes.append(
                "image data in [0, 1], so loss='bce' (sigmoid output); --loss mse to override"
            )
        elif "pretrain" in defaults and params.get("pretrain", True):
            notes.append("image data in [0, 1], so the first pre-trained layer reconstructs "
                         "with loss='bce'; --loss mse to override")  # fmt: skip
    if "likelihood" not in chosen and "likelihood" in defaults and images_in_unit:
        params["likelihood"] = "bernoulli"
        notes.append("image data in [0, 1], so likelihood='bernoulli'; --set "
                     "likelihood=gaussian to override")  # fmt: skip
    if "input_shape" not in chosen and ds.image_shape is not None:
        params["input_shape"] = tuple(ds.image_shape)
    if params.get("random_state") is None:  # a fresh seed, recorded: the run can be resumed
        params["random_state"] = seed_from(None)  # (its validation split drawn again)
    params.setdefault("verbose", 0 if args.quiet else 1)
    model = cls(**params)
    y_train = None
    if args.labeled is not None and not _uses_labels(model):
        raise UsageError(
            f"--labeled: {args.model} does not learn from labels here (classifiers do, and aae "
            "with --set supervised=true or prior_labels=true)"
        )
    if _uses_labels(model):
        if ds.y_train is None:
            raise UsageError(f"{args.model} needs labels, and {ds.source} has none")
        y_train = _keep_labels(ds.y_train, args.labeled, args.split_seed, model.unlabeled_label)
    model._preflight(ds.X_train, y_train)  # fail before touching --out
    for note in notes if not args.quiet else ():
        _say(f"note: {note}")
    run_data = {
        "spec": spec,
        "source": ds.source,
        "scaling": ds.scaler.to_dict(),
        "image_shape": ds.image_shape,
        "label_names": ds.label_names,
        "n_train": len(ds.X_train),
        "n_test": len(ds.X_test),
        "n_features": int(ds.X_train.shape[1]),
    }
    with io.folder_lock(out):
        if _check_run_folder(out, args.overwrite) != replacing:  # as it is now, under the lock
            raise UsageError(f"another aekit run wrote a model into {out} while this one was "
                             "loading its data; run this one again")  # fmt: skip
        io.claim(out, [STAGING] if replacing else [])
        if _discard_staging(out) and not args.quiet:
            _say(f"note: removed the unfinished run that an earlier --overwrite left in "
                 f"{out / STAGING}")  # fmt: skip
        return _train_run(
            args,
            out,
            replacing,
            model,
            ds,
            y_train,
            io.json_bytes(run_data),
            lambda callbacks: model.fit(ds.X_train, y_train, callbacks=callbacks),
        )


def _resume(args: argparse.Namespace) -> int:
    """``aekit train --resume --out RUN``: continue the run that RUN holds (or the unfinished
    one an interrupted ``--overwrite`` left in RUN/staging) up to its ``max_epochs`` (or
    ``--epochs``), on the rows of its own data.json, then finish it as ``train`` would."""
    from . import io

    out = _run_folder(args.out)
    given = [flag for flag, value in (("a model name", args.model), ("--data", args.data),
             ("--overwrite", args.overwrite)) if value]  # fmt: skip
    if given:
        raise UsageError(f"--resume continues the run in --out with its own model and data; "
                         f"leave out {', '.join(given)}")  # fmt: skip
    replacing = _has_model(out / STAGING)
    source = out / STAGING if replacing else out
    if not _has_model(source):
        raise UsageError(f"--resume: {out} holds no model to continue; train one first")
    _check_writable(out, [])
    with io.folder_lock(out):
        model, run_data, data_bytes = _read_run(source, args.device, args.trust_code)
        run_data = _need_run_data(str(source), run_data)
        if not type(model)._resumable:
            raise UsageError(f"--resume: a {type(model).__name__} trains in stages (pre-"
                             "training, then fine-tuning) and cannot be continued; train it "
                             "again")  # fmt: skip
        if args.epochs is not None:
            model.set_params(max_epochs=args.epochs)
        if model.stop_reason_ == "early_stopping" or model.n_epochs_ >= model.max_epochs:
            raise UsageError(
                f"--resume: the run in {source} is complete ({model.n_epochs_} epochs, stopped: "
                f"{model.stop_reason_}); --epochs N (more than {model.n_epochs_}) trains it on"
            )
        if not isinstance(model.random_state, int):
            raise UsageError(
                f"--resume: the run in {source} has no recorded seed (random_state None, a run "
                "of an older aekit), so its validation split cannot be drawn again; continue it "
                "from Python with partial_fit, or train it again"
            )
        spec = run_data["spec"]
        ds = _load_split(spec)
        y_train = None
        if _uses_labels(model):
            y_train = _keep_labels(ds.y_train, spec.get("labeled"), spec.get("split_seed", 0),
                                   model.unlabeled_label)  # fmt: skip
        model.set_params(verbose=0 if args.quiet else 1)
        if not args.quiet:
            _say(f"resuming {source} at epoch {model.n_epochs_} of {model.max_epochs}")
        return _train_run(args, out, replacing, model, ds, y_train, data_bytes,
                          lambda callbacks: model._continue_fit(ds.X_train, y_train,
                                                                callbacks=callbacks))  # fmt: skip


def _train_run(args, out: Path, replacing: bool, model, ds, y_train, data_bytes: bytes,
               fit) -> int:  # fmt: skip
    """Train (``fit(callbacks)``) with checkpoints into the run folder, or into its staging
    folder when an earlier model stays until this run is complete; then commit the run and
    write its metrics and figures. Called holding the run folder's lock."""
    from . import io
    from .base import Checkpoint

    metadata = {"label_names": ds.label_names, "data_source": ds.source}
    target = out / STAGING if replacing else out
    started = time.perf_counter()
    checkpoint = Checkpoint(target, every=args.checkpoint_every, metadata=metadata,
                            min_seconds=args.checkpoint_seconds,
                            extra_files={DATA_FILE: data_bytes})  # fmt: skip
    callbacks = [checkpoint]
    if args.time_limit:
        from .training import TimeLimit

        callbacks.append(TimeLimit(args.time_limit))
    try:
        fit(callbacks)
    except TrainingDivergedError as e:
        model.save(target, metadata=metadata, extra_files={DATA_FILE: data_bytes})
        best = model._trainer.best.epoch
        what = "the initial, untrained weights" if best == 0 else f"the weights of epoch {best}"
        _say(f"aekit: error: {e}")
        _say(f"aekit: saved the best so far, {what}, in {target}")
        if replacing:
            _say(f"aekit: {out} keeps its earlier model; the diverged run stays in {target}")
        return 1
    seconds = time.perf_counter() - started
    metadata = {**metadata, "train_seconds": seconds}
    if model.stop_reason_ == "interrupted" and replacing:
        model.save(target, metadata=metadata, extra_files={DATA_FILE: data_bytes})
        _say(f"aekit: training was interrupted; {out} keeps its earlier model, and the new "
             f"run's best weights so far are in {target} (aekit train --resume --out {out} "
             "continues it)")  # fmt: skip
        return _interrupted_code()
    with io.signals_deferred():  # the commit and the clean-up, as one step
        _commit_run(out, model, metadata, data_bytes)
        _discard_staging(out)
    try:
        result = _after_training(args, out, model, ds, y_train, seconds)
    except KeyboardInterrupt:
        _say(f"aekit: interrupted after the run was saved in {out}; its test metrics and "
             f"figures were not written (aekit evaluate {out}; aekit plot {out})")  # fmt: skip
        return _interrupted_code()
    if model.stop_reason_ == "interrupted":
        _say(f"aekit: training was interrupted; the run holds the best weights so far (aekit "
             f"train --resume --out {out} continues it)")  # fmt: skip
        return _interrupted_code()
    return result


def _after_training(args, out: Path, model, ds, y_train, seconds: float) -> int:
    """The test metrics, figures and summary of a committed run."""
    from sklearn.base import is_classifier

    from .io import claim, write_json
    from .metrics import evaluate_reconstruction, family_metrics

    result: dict[str, Any] = {
        "run": str(out),
        "model": type(model).__name__,
        "data": ds.source,
        "n_train": len(ds.X_train),
        "n_test": len(ds.X_test),
        "n_features": int(ds.X_train.shape[1]),
        "epochs": model.n_epochs_,
        "stop_reason": model.stop_reason_,
        "train_seconds": round(seconds, 3),
        "final": {k: v for k, v in model.history_[-1].items() if k.endswith("loss")}
        if model.history_
        else {},
    }
    if y_train is not None:
        labelled = int(model._labelled(y_train).sum())
        result["labeled_train_rows"] = labelled
        if hasattr(model, "layer_model"):  # the stacked classifier splits its labelled rows
            held_out = int(labelled * model.validation_fraction)  # as fit's split
            result["finetune_rows"] = labelled - held_out if 1 <= held_out < labelled else labelled
    if len(ds.X_test) and is_classifier(model):
        accuracy = model.score(ds.X_test, ds.y_test)
        metrics = {"n_test": len(ds.X_test), "test_accuracy": accuracy,
                   "model": {"accuracy": accuracy}}  # fmt: skip
    elif len(ds.X_test):
        metrics = evaluate_reconstruction(model, ds.X_train, ds.X_test, ds.y_train, ds.y_test)
        X_eval = ds.X_test
        if getattr(model, "binarize", None) is not None:  # as aekit evaluate: binary test rows
            X_eval = _binarized(X_eval, 1)
        metrics["model"].update(family_metrics(model, X_eval, ds.y_test, ll_samples=100))
        if "ll_samples" in metrics["model"]:
            metrics["ll_samples"] = metrics["model"].pop("ll_samples")
    if len(ds.X_test):
        claim(out, [METRICS_FILE])
        write_json(out / METRICS_FILE, metrics)
        result["test"] = metrics
    if not args.no_plots:
        _write_figures(out, model, ds.X_test, ds.y_test, ds.label_names)
    result["files"] = _run_files(out)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print(_train_summary(result))
    return 0


def _uses_labels(model) -> bool:
    """Whether ``fit`` learns from labels: classifiers, and the adversarial autoencoders with
    ``supervised`` or ``prior_labels``."""
    from sklearn.base import is_classifier

    return is_classifier(model) or bool(getattr(model, "_uses_labels", lambda: False)())


def _write_figures(out: Path, model, X, y, label_names, max_rows: int = 5000) -> list[Path]:
    """Draw the run's figures and write them into ``out`` (a run folder or a folder of figures:
    new, empty or aekit's), each recorded in its manifest."""
    from .io import claim, folder_lock, unclaimable
    from .plotting import run_figures, save_figure
    from .report import figure_inputs

    figures = run_figures(**figure_inputs(model, X, y, label_names, max_rows))
    with folder_lock(out):
        skipped = set(unclaimable(out, [f"{name}.png" for name in figures]))
        for name in sorted(skipped):
            _say(f"note: {out / name} was not written by aekit; left as it is, not redrawn")
        names = [f"{name}.png" for name in figures if f"{name}.png" not in skipped]
        claim(out, names)
        return [save_figure(figures[n[:-4]], out / n) for n in names]


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _train_summary(r: dict[str, Any]) -> str:
    lines = [
        f"trained {r['model']} on {r['data']}: {r['n_train']} train / {r['n_test']} test rows, "
        f"{r['n_features']} features, {r['epochs']} epochs in {r['train_seconds']:.1f} s "
        f"(stopped: {r['stop_reason']})"
    ]
    if r["final"]:
        lines.append("final " + ", ".join(f"{k} {_fmt(v)}" for k, v in r["final"].items()))
    if "test" in r:
        lines += _metrics_lines(r["test"])
    lines.append(f"wrote {r['run']}/: " + ", ".join(r["files"]))
    return "\n".join(lines)


def _metrics_lines(m: dict[str, Any]) -> list[str]:
    accuracy = m.get("test_accuracy", m.get("model", {}).get("accuracy"))
    if accuracy is not None:
        return [f"test accuracy {accuracy:.4f} ({m.get('n_test', m.get('n_rows'))} rows)"]
    extra, mm = [], m["model"]
    if "prior_mmd2" in mm:
        extra.append(f"  codes vs prior: squared MMD {mm['prior_mmd2']:.4g} (two prior samples: "
                     f"{mm['prior_mmd2_floor']:.4g})")  # fmt: skip
    if "cluster_accuracy" in mm:
        extra.append(f"  cluster accuracy {mm['cluster_accuracy']:.4f}")
    d = m["latent_dim"]
    rows = [
        ("squared error per sample", "squared_error_per_sample"),
        ("MSE per feature", "mse_per_feature"),
        ("BCE per feature", "bce_per_feature"),
        ("5-NN accuracy of codes", "knn5_accuracy"),
    ]
    lines = [f"test set ({m['n_test']} rows)          model      PCA-{d}"]
    for label, key in rows:
        if key in m["model"]:
            lines.append(f"  {label:<26} {m['model'][key]:>9.4g}  {m['pca'][key]:>9.4g}")
    return lines + extra


def _load_run(args: argparse.Namespace):
    """The run's model (``--trust-code`` lets it import the user code its config names) and its
    data.json."""
    model, run_data, _ = _read_run(Path(args.run), args.device, args.trust_code)
    if run_data is not None:
        args._run_source = (run_data.get("spec") or {}).get("source")
    return model, run_data


def _read_run(run: Path, device, trust_code: bool):
    """``(model, run_data, data.json's bytes)`` of a run folder; the data description must be
    the one saved with the model (the same save generation), read again here in case a save
    happened since ``load`` read the model."""
    from .base import CONFIG_FILE, MODEL_FILES, load
    from .io import read_json, resolve_generation, sha256_bytes

    model = load(run, device=device, trust_code=trust_code)
    files = resolve_generation(run, [*MODEL_FILES[:-1], DATA_FILE, CONFIG_FILE]) or {}
    data_path = files.get(DATA_FILE, run / DATA_FILE)
    if not data_path.exists():
        return model, None, None
    data = data_path.read_bytes()
    config = read_json(files.get(CONFIG_FILE, run / CONFIG_FILE), "model config (config.json)")
    saved = (config.get("checksums") or {}).get(DATA_FILE)
    if saved is not None and sha256_bytes(data) != saved:
        raise UsageError(
            f"{data_path}: not the data description saved with this model (its checksum differs: "
            "edited, or written by another run); train the run again"
        )
    return model, read_json(data_path, "run data description"), data


def _need_run_data(run: str, run_data):
    if run_data is None:
        raise UsageError(
            f"{run}: no {DATA_FILE} (this model was saved from Python, not by `aekit train`), so "
            "the scaling of the data is unknown; encode it from Python with model.transform"
        )
    return run_data


def _apply(method, X, source: str):
    """``method(X)``, with data errors prefixed by where the data came from."""
    try:
        return method(X)
    except DataError as e:
        raise DataError(f"{source}: {e}") from None


def cmd_encode(args: argparse.Namespace) -> int:
    model, run_data = _load_run(args)
    run_data = _need_run_data(args.run, run_data)
    path = _array_output(args, "codes")
    X, _, _ = _rows_for(args, run_data, args.split)
    codes = _apply(model.transform, X, args.data or run_data["source"])
    _write_array(path, codes)
    _report(args, f"wrote codes of shape {codes.shape} to {path}", out=path, shape=codes.shape)
    return 0


def _keep_labels(y, n_labeled: int | None, seed: int, marker):
    """``y`` with all but ``n_labeled`` rows (stratified by class) set to the model's
    ``unlabeled_label`` marker."""
    import numpy as np

    if n_labeled is None or n_labeled >= len(y):
        return y
    n_classes = len(np.unique(y))
    if n_labeled < n_classes:
        raise UsageError(
            f"--labeled {n_labeled}: keep at least one label per class ({n_classes} classes)"
        )
    if marker is None:
        raise UsageError("--labeled needs an unlabelled marker, but unlabeled_label is None")
    from sklearn.model_selection import train_test_split

    keep, _ = train_test_split(
        np.arange(len(y)), train_size=n_labeled, stratify=y, random_state=seed
    )
    out = np.full(len(y), marker, dtype=object if isinstance(marker, str) else np.int64)
    out[keep] = y[keep]
    return out


def _report(args: argparse.Namespace, text: str, **fields) -> None:
    """One result: a line of text, or with --json the same facts as JSON, on stdout."""
    if getattr(args, "json", False):
        print(json.dumps(fields, default=str))
    else:
        print(text)


def cmd_reconstruct(args: argparse.Namespace) -> int:
    model, run_data = _load_run(args)
    if args.command == "denoise" and not hasattr(model, "denoise"):
        raise UsageError(
            f"{args.run} holds a {type(model).__name__}, not a denoising model; train one with "
            "`aekit train denoising ...`, or use `aekit reconstruct`"
        )
    run_data = _need_run_data(args.run, run_data)
    path = _array_output(args, "reconstructions")
    X, y, scaler = _rows_for(args, run_data, args.split)
    method = model.reconstruct
    if getattr(model, "supervised", False):  # its decoder reads (code, label)
        if y is None:
            raise UsageError(
                f"{args.run} holds a supervised model, whose decoder also reads each row's "
                "label: give --data with labels (--label-column for a CSV)"
            )
        method = lambda rows: model.reconstruct(rows, y)  # noqa: E731
    recon = _apply(method, X, args.data or run_data["source"])
    if not args.scaled:
        recon = scaler.inverse_transform(recon)
    _write_array(path, recon)
    units = "the model's scaled units" if args.scaled else "the data's original units"
    what = "denoised data" if args.command == "denoise" else "reconstructions"
    _report(args, f"wrote {what} of shape {recon.shape} ({units}) to {path}", out=path,
            shape=recon.shape, scaled=args.scaled)  # fmt: skip
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from .io import read_json

    run = Path(args.run)
    if not run.is_dir():
        raise UsageError(f"{run}: no such run folder")
    config = read_json(run / "config.json", "model config (config.json)")
    saved = read_json(run / "history.json", "history") if (run / "history.json").exists() else {}
    history = saved.get("history", [])
    run_data = read_json(run / DATA_FILE, "data") if (run / DATA_FILE).exists() else None
    metrics = read_json(run / METRICS_FILE, "metrics") if (run / METRICS_FILE).exists() else None
    info = {
        "run": str(run),
        "class": config.get("class"),
        "aekit_version": config.get("aekit_version"),
        "params": config.get("params"),
        "fitted": config.get("fitted"),
        "data": run_data,
        "last_epoch": history[-1] if history else None,
        "metrics": metrics,
        "files": _run_files(run),
    }
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return 0
    fitted = info["fitted"] or {}
    lines = [
        f"{run}: {info['class']} (aekit {info['aekit_version']}), "
        f"{fitted.get('n_epochs_')} epochs, stopped: {fitted.get('stop_reason_')}",
        "parameters: " + ", ".join(f"{k}={v}" for k, v in sorted((info["params"] or {}).items())),
    ]
    if run_data:
        lines.append(
            f"data: {run_data['source']} ({run_data['n_train']} train / {run_data['n_test']} "
            f"test rows, {run_data['n_features']} features, scaling {run_data['scaling']['kind']})"
        )
    if info["last_epoch"]:
        last = info["last_epoch"]
        lines.append(
            "last epoch: " + ", ".join(f"{k} {_fmt(v)}" for k, v in last.items() if "loss" in k)
        )
    if metrics:
        lines += _metrics_lines(metrics)
    lines.append("files: " + ", ".join(info["files"]))
    print("\n".join(lines))
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    model, run_data = _load_run(args)
    run_data = _need_run_data(args.run, run_data)
    split = "all" if args.data is not None else "test"
    X, y, _ = _rows_for(args, run_data, split)
    if args.out_dir is not None and not args.out_dir.strip():
        raise UsageError("--out-dir is empty (an unset shell variable?); give a folder")
    out = Path(args.out_dir or args.run)
    _check_writable(out, [])
    written = _write_figures(out, model, X, y, run_data.get("label_names"))
    _report(args, "\n".join(map(str, written)), files=[str(p) for p in written])
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    model, run_data = _load_run(args)
    if not hasattr(model, "sample"):
        raise UsageError(
            f"{args.run} holds a {type(model).__name__}, which has no generative model; train "
            "a `vae` or an `aae` to generate"
        )
    if args.n < 1:
        raise UsageError(f"-n {args.n}: give a positive number of samples")
    out = _output_file(args)
    if out.suffix not in (".png", ".npy", ".csv"):
        raise UsageError(f"--out {out}: write samples to a .png, .npy or .csv file")
    if args.draw and (hasattr(model, "sample_prior") or hasattr(model, "_n_categories")):
        raise UsageError("--draw: an adversarial autoencoder's decoder is deterministic")
    if args.label is not None:
        if not hasattr(model, "generate"):
            raise UsageError(f"--label: {args.run} holds a {type(model).__name__}, which does "
                             "not generate by class")  # fmt: skip
        import numpy as np

        label = parse_value(args.label)
        try:
            rows = model.generate(np.repeat(np.asarray([label]), args.n), random_state=args.seed)
        except DataError as e:
            raise UsageError(f"--label {args.label}: {e}") from None
    else:
        rows = model.sample(args.n, random_state=args.seed, mean=not args.draw)
    if out.suffix == ".png":
        from .plotting import plot_image_grid, save_figure

        shape = getattr(model, "input_shape_", None)
        if shape is None:
            raise UsageError(f"{args.run}: the data are not images; write the samples to .npy")
        save_figure(plot_image_grid(rows, shape), out)
    else:
        if run_data is not None and not args.scaled:
            from .datasets import Scaler

            rows = Scaler.from_dict(run_data["scaling"]).inverse_transform(rows)
        _write_array(out, rows)
    _report(args, f"wrote {args.n} samples to {out}", out=out, n=args.n)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """The model's numbers next to PCA and the raw inputs (``metrics.evaluate_model``), as a
    table (or JSON), written to the run's metrics.json; with ``--anomalies``, anomaly detection
    against PCA's reconstruction error and an IsolationForest."""
    model, run_data = _load_run(args)
    result = _evaluation(args, model, _need_run_data(args.run, run_data))
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print(_evaluation_table(result))
    return 0


def _evaluation(args: argparse.Namespace, model, run_data: dict[str, Any]) -> dict[str, Any]:
    """Evaluate on ``--data`` (all rows) or the run's test split, with baselines fitted on the
    run's training split; returns the numbers, and writes them to metrics.json when they are
    the run's whole test split."""
    from .io import write_json
    from .metrics import anomaly_detection, evaluate_model

    if args.data is not None and args.data == run_data["spec"]["source"]:
        args.data = None  # the run's own data: its test rows, never the rows it was fitted on
    standard = args.data is None and args.max_rows is None  # the run's own test split, whole
    X, y, _ = _rows_for(args, run_data, "all" if args.data is not None else "test")
    if not len(X):
        raise UsageError(f"{args.run} has no test rows (trained with --test-fraction 0): give "
                         "--data with rows to evaluate")  # fmt: skip
    train_args = argparse.Namespace(data=None, data_dir=args.data_dir, label_column=None)
    try:
        X_train, y_train, _ = _rows_for(train_args, run_data, "train")
    except (DataError, OSError) as e:
        raise UsageError(
            f"the baselines (PCA, the raw inputs) are fitted on the run's training data, "
            f"{run_data['spec']['source']}, which cannot be read now ({e}); put it back, or "
            "give --data-dir for mnist / fashion-mnist"
        ) from None
    for flag in ("max_rows", "ll_samples", "trust_rows"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise UsageError(f"--{flag.replace('_', '-')} {value}: give a positive number")
    if args.max_rows is not None:
        X = X[: args.max_rows]
        y = None if y is None else y[: args.max_rows]
    if args.binarize is None and getattr(model, "binarize", None) is not None:
        args.binarize = 1
        _say("note: the model was trained on binarised data; evaluating one seeded "
             "binarisation (seed 1) of the rows (--binarize SEED to choose)")  # fmt: skip
    if args.binarize is not None:  # one seeded draw: the binary test set of the IWAE paper
        X = _binarized(X, args.binarize)
        X_train = _binarized(X_train, args.binarize + 1)  # the baselines see binary rows too
    labels = None
    if args.anomalies is not None:
        labels = _read_anomaly_labels(args.anomalies, len(X))
        if getattr(model, "supervised", False) and y is None:
            raise UsageError("--anomalies: a supervised model scores (row, label) pairs, and "
                             "these rows have no labels")  # fmt: skip
    source = args.data or run_data["source"]
    _say(f"evaluating {type(model).__name__} on {len(X)} rows of {source} (baselines fitted on "
         f"{len(X_train)} training rows)")  # fmt: skip
    started = time.perf_counter()
    result = {"run": str(args.run), "model_class": type(model).__name__, "n_rows": len(X),
              "data": source}  # fmt: skip
    result.update(_apply(lambda rows: evaluate_model(
        model, X_train, rows, y_train, y, trust_rows=args.trust_rows,
        ll_samples=args.ll_samples, progress=lambda m: _say(f"  {m}")), X, source))  # fmt: skip
    if "ll_samples" in result["model"]:
        result["ll_samples"] = result["model"].pop("ll_samples")
    if labels is not None:
        result["anomalies"] = _anomaly_table(model, X_train, X, y, labels, anomaly_detection)
    result["seconds"] = round(time.perf_counter() - started, 3)
    result["split"] = "test" if standard else "other"
    if standard:  # metrics.json holds the run's own whole test split (for report and compare)
        from .errors import FolderError, FolderLockedError
        from .io import claim, folder_lock

        try:
            with folder_lock(Path(args.run)):
                claim(Path(args.run), [METRICS_FILE])
                write_json(Path(args.run) / METRICS_FILE, result)
        except (FolderError, FolderLockedError) as e:  # the numbers are printed all the same
            _say(f"note: not written to {METRICS_FILE}: {e}")
    else:
        _say(f"note: not written to {METRICS_FILE}, which holds the run's whole test split")
    return result


def _binarized(X, seed: int):
    import numpy as np

    return (np.random.default_rng(seed).random(X.shape, dtype=np.float32) < X).astype(np.float32)


def cmd_report(args: argparse.Namespace) -> int:
    """RUN/report.html: the run's summary, its metrics against the baselines (from a full
    metrics.json, or computed now), and the figures that fit the model kind."""
    from .io import atomic_write_bytes, read_json
    from .plotting import run_figures
    from .report import figure_inputs, render_report

    model, run_data = _load_run(args)
    run_data = _need_run_data(args.run, run_data)
    run = Path(args.run)
    if args.out is not None:
        out = _output_file(args, default="report.html")
    else:
        out = run / "report.html"
        _check_writable(run, [out.name])
    config = read_json(run / "config.json", "model config (config.json)")
    path = Path(args.run) / METRICS_FILE
    metrics = read_json(path, "metrics") if path.exists() else {}
    if metrics.get("split") != "test" or "raw" not in metrics:  # aekit train's short form
        metrics = _evaluation(args, model, run_data)
    _say("drawing the figures")
    X, y, _ = _rows_for(args, run_data, "test")
    figures = run_figures(**figure_inputs(model, X, y, run_data.get("label_names")))
    page = render_report(run=str(args.run), model=model, config=config, run_data=run_data,
                         metrics=metrics, figures=figures)  # fmt: skip
    from .io import claim, folder_lock

    with folder_lock(out.parent):
        if args.out is None:
            claim(run, [out.name])
        atomic_write_bytes(out, page.encode("utf-8"))
    _report(args, str(out), report=str(out), figures=list(figures))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """The runs' model metrics side by side (from each run's metrics.json)."""
    from .io import atomic_write_bytes, read_json
    from .report import comparison_rows, render_comparison

    html = _output_file(args, "--html") if args.html is not None else None
    metrics = []
    for run in args.runs:
        path = Path(run) / METRICS_FILE
        if not path.exists():
            raise UsageError(f"{run}: no {METRICS_FILE}; run `aekit evaluate {run}` first")
        m = read_json(path, "metrics")
        if "model_class" not in m:
            cfg = Path(run) / "config.json"
            m["model_class"] = (
                read_json(cfg, "model config").get("class", "?") if cfg.exists() else "?"
            )
        metrics.append(m)
    header, rows = comparison_rows(args.runs, metrics)
    if html is not None:
        atomic_write_bytes(html, render_comparison(args.runs, metrics).encode())
    if args.json:
        print(json.dumps({"runs": args.runs, "metrics": metrics}, indent=2, default=str))
        return 0
    width = max(len(str(r[0])) for r in rows) + 2
    texts = [len(str(v)) for r in rows for v in r[1:] if not isinstance(v, float)]
    cell = 2 + max(10, *texts, *(len(Path(h).name) for h in header[1:]))
    print(f"{header[0]:<{width}}" + "".join(f"{Path(h).name:>{cell}}" for h in header[1:]))
    for r in rows:
        cells = [f"{v:>{cell}.4g}" if isinstance(v, float) else f"{v!s:>{cell}}" for v in r[1:]]
        print(f"{r[0]!s:<{width}}" + "".join(cells))
    if args.html:
        _say(f"wrote {args.html}")
    return 0


def _read_anomaly_labels(path: str, n: int):
    import numpy as np

    try:
        labels = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise UsageError(f"--anomalies {path}: not a readable .npy file ({e})") from None
    labels = np.asarray(labels).ravel()
    if len(labels) != n:
        raise UsageError(
            f"--anomalies {path}: {len(labels)} labels for {n} evaluated rows; give one 0/1 label "
            "per row (1 = anomaly), in the rows' order"
        )
    if not np.isin(labels, [0, 1]).all():
        bad = int(np.flatnonzero(~np.isin(labels, [0, 1]))[0])
        raise UsageError(f"--anomalies {path}: row {bad} holds {labels[bad]!r}; labels are 0 "
                         "(normal) or 1 (anomaly)")  # fmt: skip
    if labels.min() == labels.max():
        raise UsageError(f"--anomalies {path}: every label is {labels[0]}; give both normal (0) "
                         "and anomalous (1) rows")  # fmt: skip
    return labels


def _anomaly_table(model, X_train, X, y, labels, anomaly_detection) -> dict:
    """ROC-AUC and average precision of the model's anomaly score (minus ``score_samples``),
    of PCA's reconstruction error at the same code size, and of an IsolationForest, all
    fitted on the training rows."""
    from sklearn.ensemble import IsolationForest

    from .metrics import pca_reconstruction

    if getattr(model, "supervised", False):
        model_scores = -model.score_samples(X, y)
    else:
        model_scores = -model.score_samples(X)
    d = model.transform(X[:1]).shape[1]
    _, P_rec, _ = pca_reconstruction(X_train, X, d)
    forest = IsolationForest(random_state=0).fit(X_train)
    return {
        "n_anomalies": int(labels.sum()),
        "model": anomaly_detection(model_scores, labels),
        "pca": anomaly_detection(((X - P_rec) ** 2).sum(1), labels),
        "isolation_forest": anomaly_detection(-forest.score_samples(X), labels),
    }


def _evaluation_table(r: dict) -> str:
    d = r.get("pca_components", r["latent_dim"])
    names = list(dict.fromkeys([*r["model"], *r["pca"], *r["raw"]]))
    lines = [f"{r['n_rows']} rows of {r['data']} ({r['seconds']:.1f} s)",
             f"  {'metric':<36} {'model':>10} {f'PCA-{d}':>10} {'raw':>10}"]  # fmt: skip
    for name in names:
        cells = [r[c].get(name) for c in ("model", "pca", "raw")]
        text = [f"{v:>10.4g}" if isinstance(v, int | float) else " " * 10 for v in cells]
        lines.append(f"  {name:<36} " + " ".join(text))
    if "anomalies" in r:
        a = r["anomalies"]
        lines.append(f"anomaly detection ({a['n_anomalies']} anomalies)   ROC-AUC  avg precision")
        for key, label in (("model", "model"), ("pca", f"PCA-{d} error"),
                           ("isolation_forest", "IsolationForest")):  # fmt: skip
            lines.append(
                f"  {label:<30} {a[key]['roc_auc']:>8.4f} {a[key]['average_precision']:>14.4f}"
            )
    return "\n".join(lines)


# --- parser ---------------------------------------------------------------------------------


def _add_data_args(p: argparse.ArgumentParser, required: bool) -> None:
    p.add_argument(
        "--data",
        required=required,
        help="digits, fashion-mnist, mnist, or a .npy/.npz/.csv file or a folder of images",
    )
    p.add_argument("--data-dir", help="folder holding the IDX files of mnist / fashion-mnist")
    p.add_argument(
        "--label-column",
        help="CSV column (name or index) holding labels, left out of the features (for new data "
        "the run's own label column is dropped when the CSV has it)",
    )


def _add_trust_code(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--trust-code",
        action="store_true",
        help="import the user code (an aae's own prior) that the model's config.json names; "
        "only for runs you trust: importing a module runs its code",
    )


def _add_overwrite(p: argparse.ArgumentParser) -> None:
    p.add_argument("--overwrite", action="store_true", help="replace the output file if it exists")


def _add_run_options(p: argparse.ArgumentParser) -> None:
    """Options of every command that loads a run's model."""
    _add_trust_code(p)
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N, mps")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aekit",
        description="Autoencoders from the shell: train, encode, reconstruct, inspect and plot.",
    )
    parser.add_argument("--version", action="version", version=f"aekit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser("train", help="train a model and write a run folder")
    t.add_argument("model", nargs="?", choices=sorted(MODELS), help="model family")
    _add_data_args(t, required=False)
    t.add_argument(
        "--scale",
        default="auto",
        choices=["auto", "none", "standard", "minmax", "divide"],
        help="scaling of the data (auto: images to [0, 1], tables standardised)",
    )
    t.add_argument("--test-fraction", type=float, default=0.2, help="held-out test share")
    t.add_argument("--split-seed", type=int, default=0, help="seed of the train/test split")
    t.add_argument(
        "--labeled",
        type=int,
        help="classifiers: keep only this many training labels (stratified, seeded by "
        "--split-seed); the other rows are unlabelled and serve pre-training only",
    )
    t.add_argument("--latent", type=int, help="latent_dim: width of the code")
    t.add_argument("--hidden", help="hidden widths, e.g. 256,128 ('' for none)")
    t.add_argument("--epochs", type=int, help="max_epochs")
    t.add_argument("--batch-size", type=int, dest="batch_size")
    t.add_argument("--lr", type=float)
    t.add_argument("--loss", choices=["mse", "bce"])
    t.add_argument("--architecture", choices=["mlp", "conv"])
    t.add_argument("--device", help="auto, cpu, cuda, cuda:N, mps")
    t.add_argument("--seed", type=int, help="random_state")
    t.add_argument("--prior", help="aae: gaussian, mixture, swiss_roll, uniform or pkg.module:fn")
    t.add_argument("--n-components", type=int, dest="n_components", help="aae: mixture components")
    t.add_argument("--n-clusters", type=int, dest="n_clusters", help="aae-cluster: clusters")
    t.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="any estimator parameter, e.g. --set lr_schedule=cosine (repeatable)",
    )
    t.add_argument("--config", help="TOML file whose keys are estimator parameters")
    t.add_argument("--out", required=True, help="run folder to write")
    t.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the model already in --out, once the new run is complete (it trains in "
        "--out/staging meanwhile); only an aekit run folder can be replaced",
    )
    _add_trust_code(t)
    t.add_argument(
        "--resume",
        action="store_true",
        help="continue the interrupted run in --out (or in --out/staging) up to its epochs "
        "(or --epochs) on its own data; no model name or --data",
    )
    t.add_argument("--checkpoint-every", type=int, default=1, help="save every N epochs")
    t.add_argument(
        "--checkpoint-seconds",
        type=float,
        default=30.0,
        help="and at most once per this many seconds (default 30; 0: every N epochs)",
    )
    t.add_argument("--threads", type=int, help="torch CPU threads")
    t.add_argument(
        "--time-limit",
        type=float,
        help="stop after the epoch that ends past this many seconds of (fine-)tuning",
    )
    t.add_argument("--no-plots", action="store_true", help="skip the figures")
    t.add_argument("--json", action="store_true", help="print the result as JSON")
    t.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    t.set_defaults(func=cmd_train)

    for name, func, what in (
        ("encode", cmd_encode, "codes"),
        ("reconstruct", cmd_reconstruct, "reconstructions"),
        ("denoise", cmd_reconstruct, "denoised data"),
    ):
        p = sub.add_parser(name, help=f"write the {what} of data with a trained run")
        p.add_argument("run", help="run folder")
        _add_data_args(p, required=False)
        p.add_argument(
            "--split",
            default="all",
            choices=["all", "train", "test"],
            help="rows of the data to use (default all, in the source's order)",
        )
        p.add_argument("--out", required=True, help=f".npy or .csv file for the {what}")
        _add_overwrite(p)
        _add_run_options(p)
        if name in ("reconstruct", "denoise"):
            p.add_argument("--scaled", action="store_true", help="keep the model's scaling")
        p.set_defaults(func=func)

    gen = sub.add_parser("generate", help="draw new samples from a generative model (VAE, AAE)")
    gen.add_argument("run")
    gen.add_argument("-n", type=int, default=64, help="number of samples (default 64)")
    gen.add_argument("--out", required=True, help=".png (an image grid), .npy or .csv")
    gen.add_argument("--seed", type=int, help="seed, for reproducible samples")
    gen.add_argument("--draw", action="store_true", help="draw from p(x|z), not its mean (VAE)")
    gen.add_argument(
        "--label",
        help="samples of this class (a supervised or label-conditioned AAE, aae-semi) or cluster "
        "index (aae-cluster)",
    )
    gen.add_argument("--scaled", action="store_true", help="keep the model's scaling (.npy)")
    _add_overwrite(gen)
    _add_run_options(gen)
    gen.set_defaults(func=cmd_generate)

    ev = sub.add_parser(
        "evaluate", help="a run's numbers next to PCA and the raw inputs (writes metrics.json)"
    )
    ev.add_argument("run")
    _add_data_args(ev, required=False)
    ev.add_argument("--ll-samples", type=int, default=1000,
                    help="VAE: importance samples per row for log p(x) (default 1000)")  # fmt: skip
    ev.add_argument("--max-rows", type=int, help="evaluate the first N rows only (a cost cap)")
    ev.add_argument("--trust-rows", type=int, default=2000,
                    help="rows (seeded subsample) for trustworthiness (default 2000)")  # fmt: skip
    ev.add_argument("--anomalies", metavar="LABELS.npy",
                    help="0/1 per evaluated row (1 = anomaly): ROC-AUC and average precision of "
                    "the model's score next to PCA's error and an IsolationForest")  # fmt: skip
    ev.add_argument(
        "--binarize",
        type=int,
        metavar="SEED",
        help="evaluate a seeded Bernoulli draw of the rows (binarised data)",
    )
    _add_run_options(ev)
    ev.set_defaults(func=cmd_evaluate)

    rep = sub.add_parser("report", help="write RUN/report.html (self-contained: figures inside)")
    rep.add_argument("run")
    rep.add_argument("--data-dir", help="folder holding the IDX files of mnist / fashion-mnist")
    rep.add_argument("--out", help="the HTML file (default RUN/report.html)")
    rep.add_argument(
        "--ll-samples", type=int, default=1000, help="VAE: samples per row for log p(x)"
    )
    rep.add_argument("--trust-rows", type=int, default=2000, help="rows for trustworthiness")
    rep.add_argument("--binarize", type=int, metavar="SEED", help="as for evaluate")
    _add_overwrite(rep)
    _add_run_options(rep)
    rep.set_defaults(func=cmd_report, anomalies=None, data=None, label_column=None, max_rows=None)

    cmp_ = sub.add_parser("compare", help="the metrics of several runs side by side")
    cmp_.add_argument("runs", nargs="+", help="run folders (each with a metrics.json)")
    cmp_.add_argument("--html", help="also write the table as an HTML page")
    _add_overwrite(cmp_)
    cmp_.add_argument("--json", action="store_true", help="print the metrics as JSON")
    cmp_.set_defaults(func=cmd_compare)

    i = sub.add_parser("info", help="describe a run folder")
    i.add_argument("run")
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=cmd_info)

    pl = sub.add_parser("plot", help="write the figures of a run (PNG)")
    pl.add_argument("run")
    _add_data_args(pl, required=False)
    pl.add_argument("--out-dir", help="folder for the PNG files (default: the run folder)")
    _add_run_options(pl)
    pl.set_defaults(func=cmd_plot)
    return parser


_SIGNALS: list[int] = []  # the signals that interrupted this command (SIGTERM acts as Ctrl-C)


def _on_sigterm(signum, frame):
    _SIGNALS.append(signum)
    raise KeyboardInterrupt


def _interrupted_code() -> int:
    """128 + the signal: 143 after SIGTERM, 130 after Ctrl-C."""
    import signal

    return 128 + (_SIGNALS[-1] if _SIGNALS else signal.SIGINT)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 1 failure while running, 2 bad input,
    130 after Ctrl-C and 143 after SIGTERM, each of which stops training as Ctrl-C does: the run
    is saved first)."""
    import signal
    import threading

    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)
    _SIGNALS.clear()
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if main_thread else None
    try:
        return _run_command(args)
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def _run_command(args: argparse.Namespace) -> int:
    try:
        return int(args.func(args))
    except TrainingDivergedError as e:
        _say(f"aekit: error: {e}")
        return 1
    except (AekitError, DataError, OSError) as e:
        if os.environ.get("AEKIT_DEBUG"):
            raise
        if isinstance(e, OSError) and e.filename is not None:  # one line: what, and which file
            e = f"{e.strerror or e}: {e.filename}"
        _say(f"aekit: error: {e}")
        return 2
    except KeyboardInterrupt:
        _say("aekit: interrupted")
        return _interrupted_code()
