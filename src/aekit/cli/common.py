"""What the commands share: usage errors, parameters from the command line, output files,
results on stdout, the options every command that reads a run takes."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tomllib
from pathlib import Path
from typing import Any

from .._params import Options, code_fields, constraints_of, sequence_fields
from ..errors import AekitError, DataError


class UsageError(AekitError):
    """The command line itself is wrong (exit code 2)."""


# --- parameters from the command line --------------------------------------------------------


def _has_option_none(cls: type, key: str) -> bool:
    """Whether parameter ``key`` of ``cls`` has an option named "none" (``--set norm=none``)."""
    f = next((f for f in dataclasses.fields(cls) if f.name == key), None)
    options = [c for c in (constraints_of(f) or ()) if isinstance(c, Options)] if f else []
    return any("none" in c.options for c in options)


def _admits_none(cls: type, key: str) -> bool:
    """Whether parameter ``key`` of ``cls`` takes Python's None (a TOML file cannot write it)."""
    f = next((f for f in dataclasses.fields(cls) if f.name == key), None)
    return f is not None and None in (constraints_of(f) or ())


def parse_value(text: str) -> Any:
    """A ``--set`` value: none/null, true/false, int, float, a JSON object ('{"radius": 4.0}',
    for dict parameters) as a dict, comma lists ("64,32", "(64, 32)", "[64]", or a JSON array)
    as tuples, or else the string itself. Text that starts a JSON object but is not valid JSON
    is a :class:`UsageError`."""
    t = text.strip()
    low = t.lower()
    if low in ("none", "null"):
        return None
    if low in ("true", "false"):
        return low == "true"
    if t.startswith("{"):
        try:
            return json.loads(t)
        except json.JSONDecodeError as e:
            raise UsageError(f"not valid JSON ({e}); write an object such as "
                             '\'{"radius": 4.0}\' (quote the names)') from None  # fmt: skip
    if t.startswith("[") and t.endswith("]"):
        try:
            return tuple(json.loads(t))
        except json.JSONDecodeError:
            pass  # a list in the comma form, such as [64, 32] or [a, b]
    if t[:1] and t[:1] in "([" and t[-1:] in ")]":
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
    if key in sequence_fields(cls) and value is not None:
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
            # TOML has no null: "none" (any case, or "null") is the option of that name where
            # there is one, else None where the parameter takes it, as --set reads it
            if isinstance(value, str) and value.strip().lower() in ("none", "null"):
                if _has_option_none(cls, key):
                    value = "none"
                elif _admits_none(cls, key):
                    value = None
            put(key, value, f"in {path}")
    for item in args.set or []:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"--set {item!r}: expected key=value, for example --set lr=0.001")
        if not value.strip() and key not in sequence_fields(cls):  # a sequence: () (no layers)
            raise UsageError(f"--set {key}=: no value; give one (--set {key}=none for None), "
                             "or leave the parameter out for its default")  # fmt: skip
        try:
            parsed = parse_value(value)
        except UsageError as e:
            raise UsageError(f"--set {item}: {e}") from None
        if parsed is None and _has_option_none(cls, key):
            parsed = "none"  # the option named "none" (norm, lr_schedule), not Python's None
        put(key, parsed, "--set")
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
    for key, (_, builtin) in code_fields(cls).items():
        value = given.get(key)
        if isinstance(value, str) and value not in builtin and not args.trust_code:
            raise UsageError(
                f"{key}={value!r} names code to import, which aekit does only with --trust-code "
                "(importing a module runs its code)"
            )
    return given, set(given)


# --- runs, rows and results -------------------------------------------------------------------


def load_run(args: argparse.Namespace, *, need_data: bool = True):
    """The run folder ``args.run`` as a :class:`~aekit.runs.Run` (``--trust-code`` lets its
    model import the user code its config names). ``need_data``: a run trained by ``aekit
    train``, whose data.json says how its data were scaled."""
    from ..runs import Run

    run = Run.open(args.run, device=args.device, trust_code=args.trust_code)
    if run.data is not None:
        args._run_source = run.spec["source"]
    elif need_data:
        require_data(run)
    return run


def require_data(run) -> None:
    """Refuse a run without data.json: a model saved from Python, whose scaling is unknown."""
    if run.data is None:
        raise UsageError(
            f"{run.path}: no data.json (this model was saved from Python, not by `aekit train`), "
            "so the scaling of the data is unknown; encode it from Python with model.transform"
        )


def rows_for(args: argparse.Namespace, run, split: str):
    """``(X, y)``: ``--data`` (default the run's own data, the chosen split), scaled with the
    run's stored scaling."""
    return run.rows(split, source=args.data, data_dir=args.data_dir,
                    label_column=args.label_column, workers=args.workers)  # fmt: skip


def apply(method, X, source: str):
    """``method(X)``, with data errors prefixed by where the data came from."""
    try:
        return method(X)
    except DataError as e:
        raise DataError(f"{source}: {e}") from None


def output_file(
    args: argparse.Namespace,
    flag: str = "--out",
    default: str | None = None,
    suffixes: tuple[str, ...] = (),
    what: str = "the result",
) -> Path:
    """The file a command writes its result to (``--out``, ``--html``), checked before any work:
    not empty, not one of the command's inputs (its ``--data`` and the run's data source, or
    any file of the run folders it reads, except ``default``, the command's own output there),
    and not an existing file unless ``--overwrite`` says to replace it; with ``suffixes``, one
    of those kinds. Nothing is written or recorded here: :func:`claim_output` does that when the
    file is written."""
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
    if suffixes and path.suffix not in suffixes:
        kinds = (
            ", ".join(suffixes[:-1]) + f" or {suffixes[-1]}" if len(suffixes) > 1 else suffixes[0]
        )
        raise UsageError(f"{flag} {path}: write {what} to a {kinds} file")
    if os.path.lexists(path) and not getattr(args, "overwrite", False):
        raise UsageError(f"{flag} {path} already exists; pass --overwrite to replace it")
    return path


def claim_output(path: Path) -> None:
    """Record ``path`` in its folder's manifest when the folder is aekit's (a run folder): the
    file is aekit's from now on. Called just before the file is written, once every check has
    passed, so that a refused command records nothing."""
    from ..io import claim, folder_lock, read_manifest

    if read_manifest(path.parent) is not None:
        with folder_lock(path.parent):
            claim(path.parent, [path.name])


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def array_output(args: argparse.Namespace, what: str) -> Path:
    return output_file(args, suffixes=(".npy", ".csv"), what=what)


def write_array(path: Path, array) -> Path:
    import io as _io

    import numpy as np

    from ..io import atomic_write_bytes

    claim_output(path)
    if path.suffix == ".npy":
        buf = _io.BytesIO()
        np.save(buf, array, allow_pickle=False)
        return atomic_write_bytes(path, buf.getvalue())
    if path.suffix == ".csv":
        buf = _io.StringIO()
        np.savetxt(buf, array, delimiter=",", fmt="%.8g")
        return atomic_write_bytes(path, buf.getvalue().encode())
    raise UsageError(f"--out {path}: write to a .npy or .csv file")  # _array_output checks it


def say(msg: str) -> None:
    print(msg, file=sys.stderr)


def report(args: argparse.Namespace, text: str, **fields) -> None:
    """One result: a line of text, or with --json the same facts as JSON, on stdout."""
    if getattr(args, "json", False):
        print(json.dumps(fields, default=str))
    else:
        print(text)


def fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def metrics_lines(m: dict[str, Any]) -> list[str]:
    accuracy = m.get("test_accuracy", m.get("model", {}).get("accuracy"))
    n = m.get("n_test", m.get("n_rows"))
    labelled = m.get("labeled_test_rows", n)  # accuracies leave unlabelled rows out
    counted = f"{n} rows" if labelled == n else f"{labelled} labelled of {n} rows"
    if accuracy is not None:
        return [f"test accuracy {accuracy:.4f} ({counted})"]
    if "latent_dim" not in m:  # a classifier's test rows, none of them labelled
        return [f"no test accuracy: none of the {n} test rows is labelled"]
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
    if labelled != n:
        lines.append(f"  accuracies on the {labelled} labelled test rows (unlabelled rows left "
                     "out)")  # fmt: skip
    return lines + extra


# --- options ------------------------------------------------------------------------------


def add_data_args(p: argparse.ArgumentParser, required: bool) -> None:
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
    add_workers(p)


def add_workers(p: argparse.ArgumentParser) -> None:
    default = min(4, os.cpu_count() or 1)
    p.add_argument(
        "--workers",
        type=workers_arg,
        default=default,
        help=f"processes that decode a folder of images (default {default}; 0: this process)",
    )


def workers_arg(text: str) -> int:
    """``--workers N``: an int >= 0."""
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError(f"give a number of processes >= 0, not {text!r}")
    return n


def image_size_arg(text: str) -> tuple[int, int]:
    """``--image-size``: N (a square) or HEIGHTxWIDTH, as (height, width)."""
    parts = text.lower().replace("*", "x").split("x")
    try:
        size = tuple(int(p) for p in parts)
    except ValueError:
        size = ()
    if len(size) == 1:
        size = size * 2
    if len(size) != 2 or min(size) < 1:
        raise argparse.ArgumentTypeError(
            f"give N (N x N pixels) or HEIGHTxWIDTH (for example 64 or 48x64), not {text!r}"
        )
    return size


def add_trust_code(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--trust-code",
        action="store_true",
        help="import the user code (a network class, an aae's own prior) that the model's "
        "config.json or --set names; "
        "only for runs you trust: importing a module runs its code",
    )


def add_overwrite(p: argparse.ArgumentParser) -> None:
    p.add_argument("--overwrite", action="store_true", help="replace the output file if it exists")


def add_run_options(p: argparse.ArgumentParser) -> None:
    """Options of every command that loads a run's model."""
    add_trust_code(p)
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N, mps")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


# --- signals ------------------------------------------------------------------------------

SIGNALS: list[int] = []  # the signals that interrupted this command (SIGTERM acts as Ctrl-C)


def on_sigterm(signum, frame):
    SIGNALS.append(signum)
    raise KeyboardInterrupt


def interrupted_code() -> int:
    """128 + the signal: 143 after SIGTERM, 130 after Ctrl-C."""
    import signal

    return 128 + (SIGNALS[-1] if SIGNALS else signal.SIGINT)


def binarized(X, seed: int):
    import numpy as np

    return (np.random.default_rng(seed).random(X.shape, dtype=np.float32) < X).astype(np.float32)
