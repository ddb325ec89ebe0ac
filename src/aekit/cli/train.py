"""``aekit train``: train a model into a run folder, or continue one (``--resume``)."""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from pathlib import Path
from typing import Any

from .. import runs
from ..errors import TrainingDivergedError
from ..models.catalog import FAMILIES
from .common import (
    UsageError,
    add_trust_code,
    binarized,
    fmt,
    interrupted_code,
    metrics_lines,
    resolve_params,
    say,
)


def run_folder(text: str | None, flag: str = "--out") -> Path:
    if text is None:
        raise UsageError(f"train needs {flag} RUN, the run folder to write")
    if not str(text).strip():
        raise UsageError(f"{flag} is empty (an unset shell variable?); give the run folder to "
                         "write")  # fmt: skip
    return Path(text)


def cmd_train(args: argparse.Namespace) -> int:
    import torch

    from .. import distributed as dist

    _check_training_options(args)  # before anything is read or written
    if args.nproc_per_node is not None and dist.env_world_size() == 1:
        return _launch(args)
    joined = dist.env_world_size() > 1 and not dist.world().distributed
    world = dist.init_from_env(args.device)  # under torchrun: join its process group
    try:
        return _train(args, world)
    finally:  # the group this command joined is left before exit (gloo can abort at exit)
        if joined and world.distributed:
            torch.distributed.destroy_process_group()


def _train(args: argparse.Namespace, world) -> int:
    """``aekit train`` in this process (one rank of several under torchrun)."""
    from .. import distributed as dist
    from .. import io
    from ..models.catalog import cli_class
    from ..runtime import seed_from
    from ..tags import aekit_tags

    if args.resume is not None:
        return _resume(args, world)
    if args.model is None or args.data is None:
        raise UsageError("train needs a model name and --data (or --resume RUN, to continue "
                         "the run in RUN)")  # fmt: skip
    cls = cli_class(args.model)
    params, chosen = resolve_params(cls, args)
    out = run_folder(args.out)
    # In data-parallel training (torchrun), rank 0 alone checks, locks and writes the run folder.
    replacing = runs.check_run_folder(out, args.overwrite) if world.is_main else False
    spec = runs.data_spec(args.data, data_dir=args.data_dir, scale=args.scale,
                          test_fraction=args.test_fraction, split_seed=args.split_seed,
                          label_column=args.label_column, labeled=args.labeled,
                          image_size=args.image_size)  # fmt: skip
    ds = runs.load_split(spec, workers=args.workers)
    if "input_shape" not in chosen and ds.image_shape is not None:
        params["input_shape"] = tuple(ds.image_shape)
        if params.get("architecture") == "sequence" and len(ds.image_shape) == 3:
            # The data files read a 3-D array (n, T, C) as gray images (1, T, C): for sequences
            # each sample is a (time_steps, channels) window.
            params["input_shape"] = tuple(ds.image_shape[-2:])
    notes = []  # said once the settings are known to work, so that an error is the only line
    if ds.scaler.kind == "minmax":
        # Held-out rows scaled with the training rows' minimum and maximum leave [0, 1], where
        # "auto" would choose BCE (or Bernoulli) from the training rows alone: choose for them.
        defaults = cls().get_params()
        for name, value in (("loss", "mse"), ("likelihood", "gaussian")):
            if defaults.get(name) == "auto" and name not in chosen:
                params[name] = value
                notes.append(f"--scale minmax: held-out rows can leave [0, 1], so {name}="
                             f"{value!r}; --set {name}=... to choose")  # fmt: skip
    if params.get("random_state") is None:  # a fresh seed, recorded: the run can be resumed
        params["random_state"] = dist.broadcast_int(seed_from(None), world)  # (rank 0's)
    params.setdefault("verbose", 0 if args.quiet else 1)
    model = cls(**params)
    tags = aekit_tags(model)
    y_train = None
    if args.labeled is not None and not tags.uses_labels:
        raise UsageError(
            f"--labeled: {args.model} does not learn from labels here (classifiers do, and aae "
            "with --set supervised=true or prior_labels=true)"
        )
    if tags.uses_labels:
        if ds.y_train is None:
            raise UsageError(f"{args.model} needs labels, and {ds.source} has none")
        y_train = keep_labels(ds.y_train, args.labeled, args.split_seed, model.unlabeled_label)
    resolved = model.preflight(ds.X_train, y_train)  # fail before touching --out
    for note in [*notes, *_auto_notes(model, resolved)] if world.is_main and not args.quiet else ():
        say(f"note: {note}")
    run_data = runs.run_data(spec, ds)
    if not world.is_main:
        return _train_rank(args, model, lambda: model.fit(ds.X_train, y_train))
    with io.folder_lock(out):
        if runs.check_run_folder(out, args.overwrite) != replacing:  # as it is now, under the lock
            raise UsageError(f"another aekit run wrote a model into {out} while this one was "
                             "loading its data; run this one again")  # fmt: skip
        io.claim(out, [runs.STAGING] if replacing else [])
        if runs.discard_staging(out) and not args.quiet:
            say(f"note: removed the unfinished run that an earlier --overwrite left in "
                 f"{out / runs.STAGING}")  # fmt: skip
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


def _launch(args: argparse.Namespace) -> int:
    """``aekit train --nproc-per-node N ...``: the same command under ``torchrun
    --standalone --nproc-per-node N`` (one machine; for several, call torchrun itself with its
    rendezvous options, ``torchrun ... -m aekit train ...``)."""
    import os
    import signal
    import subprocess
    import sys

    from .common import SIGNALS

    if args.nproc_per_node < 1:
        raise UsageError(f"--nproc-per-node {args.nproc_per_node}: give a number of processes "
                         ">= 1")  # fmt: skip
    # The usage errors that rank 0 would find, found here: one line and exit code 2, not a
    # failed process group.
    if args.resume is not None:
        out = resume_folder(args)
        if not runs.has_model(out / runs.STAGING) and not runs.has_model(out):
            raise UsageError(f"--resume: {out} holds no model to continue; train one first")
    else:
        if args.model is None or args.data is None:
            raise UsageError("train needs a model name and --data (or --resume RUN)")
        runs.check_run_folder(run_folder(args.out), args.overwrite)
    argv, skip = [], False
    for a in args.argv:  # the command line without --nproc-per-node
        if skip:
            skip = False
        elif a == "--nproc-per-node":
            skip = True
        elif not a.startswith("--nproc-per-node="):
            argv.append(a)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc-per-node={args.nproc_per_node}", "-m", "aekit", *argv]  # fmt: skip
    env = {**os.environ}
    if args.threads is None:  # torchrun's own default, said out loud rather than warned about
        env.setdefault("OMP_NUM_THREADS", "1")
    process = subprocess.Popen(command, env=env)
    forwarded = False
    while True:
        try:
            code = process.wait()
            break
        except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (main's handler): torchrun passes it on
            forwarded = True
            process.send_signal(SIGNALS[-1] if SIGNALS else signal.SIGINT)
    return interrupted_code() if forwarded else code


def _train_rank(args: argparse.Namespace, model, fit) -> int:
    """A rank other than 0 in data-parallel training: train alongside rank 0 (every step is a
    collective), write nothing, print nothing."""
    try:
        fit()
    except TrainingDivergedError:
        return 1  # rank 0 reports it and saves the best weights
    return interrupted_code() if model.stop_reason_ == "interrupted" else 0


def _check_training_options(args: argparse.Namespace) -> None:
    """The options of the run itself (not the model's parameters), checked before any work."""
    import math

    if args.checkpoint_every < 1:
        raise UsageError(f"--checkpoint-every {args.checkpoint_every}: give a number of epochs "
                         ">= 1")  # fmt: skip
    if not (0 <= args.checkpoint_seconds < math.inf):
        raise UsageError(f"--checkpoint-seconds {args.checkpoint_seconds}: give a number of "
                         "seconds >= 0")  # fmt: skip
    if args.time_limit is not None and not (0 < args.time_limit < math.inf):
        raise UsageError(f"--time-limit {args.time_limit}: give a number of seconds > 0")
    if args.labeled is not None and args.labeled < 1:
        raise UsageError(f"--labeled {args.labeled}: give a number of labels >= 1")
    if args.log_dir is not None:
        from ..callbacks import TensorBoard

        try:
            TensorBoard.writer_class()  # a missing extra fails now, before any work
        except ImportError as e:
            raise UsageError(f"--log-dir: {e}") from None


def _auto_notes(model, resolved: dict[str, str]) -> list[str]:
    """What ``"auto"`` parameters chose for this data, and how to choose otherwise."""
    from sklearn.base import is_classifier

    from ..tags import aekit_tags

    notes = []
    if resolved.get("loss") == "bce":
        if not aekit_tags(model).layerwise_pretraining or not is_classifier(model):
            notes.append("data in [0, 1], so loss='bce' (sigmoid output); --loss mse to override")
        elif model.pretrain:
            notes.append("data in [0, 1], so the first pre-trained layer reconstructs with "
                         "loss='bce'; --loss mse to override")  # fmt: skip
    if resolved.get("likelihood") == "bernoulli" and aekit_tags(model).binary_input:
        notes.append("binarised rows, so likelihood='bernoulli'")
    elif resolved.get("likelihood") == "bernoulli":
        notes.append("data in [0, 1], so likelihood='bernoulli'; --set likelihood=gaussian to "
                     "override")  # fmt: skip
    return notes


def resume_folder(args: argparse.Namespace) -> Path:
    """The run folder of ``--resume RUN``, or of ``--resume --out RUN`` (the two spellings; both
    given, they must name the same folder)."""
    if args.resume is True:  # --resume without a folder: the one in --out
        if args.out is None:
            raise UsageError("--resume needs the run to continue: aekit train --resume RUN")
        return run_folder(args.out)
    out = run_folder(args.resume, "--resume")
    if args.out is not None and Path(args.out) != out:
        raise UsageError(f"--resume {out} and --out {args.out} name two folders; give the run "
                         "to continue once (aekit train --resume RUN)")  # fmt: skip
    return out


def _resume(args: argparse.Namespace, world) -> int:
    """``aekit train --resume RUN`` (or ``--resume --out RUN``): continue the run that RUN holds
    (or the unfinished one an interrupted ``--overwrite`` left in RUN/staging) up to its
    ``max_epochs`` (or ``--epochs``), on the rows of its own data.json, then finish it as
    ``train`` would."""
    from .. import io
    from ..runs import Run
    from ..tags import aekit_tags

    out = resume_folder(args)
    given = [flag for flag, value in (("a model name", args.model), ("--data", args.data),
             ("--overwrite", args.overwrite), ("--image-size", args.image_size))
             if value]  # fmt: skip
    if given:
        raise UsageError(f"--resume continues the run in RUN with its own model and data; "
                         f"leave out {', '.join(given)}")  # fmt: skip
    replacing = runs.has_model(out / runs.STAGING)
    source = out / runs.STAGING if replacing else out
    if not runs.has_model(source):
        raise UsageError(f"--resume: {out} holds no model to continue; train one first")
    lock = contextlib.nullcontext()
    if world.is_main:  # in data-parallel training, rank 0 alone locks and writes the folder
        runs.check_writable(out, [])
        lock = io.folder_lock(out)
    with lock:
        run = Run.open(source, device=args.device, trust_code=args.trust_code)
        if run.data is None:
            raise UsageError(f"--resume: {source} holds a model saved from Python, without "
                             "data.json; continue it from Python with partial_fit")  # fmt: skip
        model, data_bytes = run.model, run.data_bytes
        if not aekit_tags(model).resumable:
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
        spec = run.spec
        ds = runs.load_split(spec, workers=args.workers)
        y_train = None
        if aekit_tags(model).uses_labels:
            y_train = keep_labels(ds.y_train, spec.get("labeled"), spec.get("split_seed", 0),
                                   model.unlabeled_label)  # fmt: skip
        model.set_params(verbose=0 if args.quiet else 1)
        if not world.is_main:
            return _train_rank(args, model,
                               lambda: model.continue_fit(ds.X_train, y_train))  # fmt: skip
        if not args.quiet:
            say(f"resuming {source} at epoch {model.n_epochs_} of {model.max_epochs} "
                f"(trained in {model.world_size_} process(es), now {world.size})")  # fmt: skip
        return _train_run(args, out, replacing, model, ds, y_train, data_bytes,
                          lambda callbacks: model.continue_fit(ds.X_train, y_train,
                                                                callbacks=callbacks))  # fmt: skip


def _train_run(args, out: Path, replacing: bool, model, ds, y_train, data_bytes: bytes,
               fit) -> int:  # fmt: skip
    """Train (``fit(callbacks)``) with checkpoints into the run folder, or into its staging
    folder when an earlier model stays until this run is complete; then commit the run and
    write its metrics and figures. Called holding the run folder's lock."""
    from .. import io
    from ..callbacks import Checkpoint

    metadata = {"label_names": ds.label_names, "data_source": ds.source}
    target = out / runs.STAGING if replacing else out
    started = time.perf_counter()
    checkpoint = Checkpoint(target, every=args.checkpoint_every, metadata=metadata,
                            min_seconds=args.checkpoint_seconds,
                            extra_files={runs.DATA_FILE: data_bytes})  # fmt: skip
    from ..callbacks import EpochLog

    callbacks = [checkpoint, EpochLog(target)]  # target/epochs.jsonl, one line per epoch
    board = None
    if args.log_dir is not None:
        from ..callbacks import TensorBoard

        board = TensorBoard(args.log_dir, figures=False)  # the run's own figures, at the end
        callbacks.append(board)
    if args.time_limit is not None:
        from ..callbacks import TimeLimit

        callbacks.append(TimeLimit(args.time_limit))
    try:
        fit(callbacks)
    except TrainingDivergedError as e:
        model.save(target, metadata=metadata, extra_files={runs.DATA_FILE: data_bytes})
        best = model.best_epoch_
        what = "the initial, untrained weights" if best == 0 else f"the weights of epoch {best}"
        say(f"aekit: error: {e}")
        say(f"aekit: saved the best so far, {what}, in {target}")
        if replacing:
            say(f"aekit: {out} keeps its earlier model; the diverged run stays in {target}")
        return 1
    seconds = time.perf_counter() - started
    metadata = {**metadata, "train_seconds": seconds}
    if model.stop_reason_ == "interrupted" and replacing:
        model.save(target, metadata=metadata, extra_files={runs.DATA_FILE: data_bytes})
        say(f"aekit: training was interrupted; {out} keeps its earlier model, and the new "
             f"run's best weights so far are in {target} (aekit train --resume {out} "
             "continues it)")  # fmt: skip
        return interrupted_code()
    with io.signals_deferred():  # the commit and the clean-up, as one step
        runs.commit(out, model, metadata, data_bytes)
        if replacing:  # the new run's epoch log replaces the old one's
            runs.write_epoch_log(out, model.history_)
        runs.discard_staging(out)
    try:
        result = _after_training(args, out, model, ds, y_train, seconds, board)
        if board is not None:
            board.close()
    except KeyboardInterrupt:
        say(f"aekit: interrupted after the run was saved in {out}; its test metrics and "
             f"figures were not written (aekit evaluate {out}; aekit plot {out})")  # fmt: skip
        return interrupted_code()
    if model.stop_reason_ == "interrupted":
        say(f"aekit: training was interrupted; the run holds the best weights so far (aekit "
             f"train --resume {out} continues it)")  # fmt: skip
        return interrupted_code()
    return result


def _after_training(args, out: Path, model, ds, y_train, seconds: float, board=None) -> int:
    """The test metrics, figures and summary of a committed run."""
    from sklearn.base import is_classifier

    from ..io import claim, write_json
    from ..metrics import evaluate_reconstruction, family_metrics, labelled_rows
    from ..tags import aekit_tags

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
        "chosen": {
            f"{k}_": getattr(model, f"{k}_")
            for k in ("loss", "likelihood")
            if k in model.get_params()
        },  # what "auto" chose: the unit of the losses
    }
    if y_train is not None:
        result["labeled_train_rows"] = int(labelled_rows(y_train, model.unlabeled_label).sum())
    result["fitted_rows"] = model.n_train_rows_  # after the validation split
    if len(ds.X_test) and is_classifier(model):
        # scored on the labelled test rows: an unlabelled row (-1, an empty label cell) is no miss
        keep = labelled_rows(ds.y_test)
        metrics = {"n_test": len(ds.X_test), "labeled_test_rows": int(keep.sum()), "model": {}}
        if keep.any():
            X_test, y_test = (ds.X_test, ds.y_test) if keep.all() else (
                ds.X_test[keep], ds.y_test[keep])  # fmt: skip
            metrics["test_accuracy"] = metrics["model"]["accuracy"] = model.score(X_test, y_test)
    elif len(ds.X_test):
        metrics = evaluate_reconstruction(model, ds.X_train, ds.X_test, ds.y_train, ds.y_test)
        X_eval = ds.X_test
        if aekit_tags(model).binary_input:  # as aekit evaluate: binary test rows
            X_eval = binarized(X_eval, 1)
        metrics["model"].update(family_metrics(model, X_eval, ds.y_test, ll_samples=100))
        if "ll_samples" in metrics["model"]:
            metrics["ll_samples"] = metrics["model"].pop("ll_samples")
    if len(ds.X_test):
        claim(out, [runs.METRICS_FILE])  # (under the lock train holds)
        write_json(out / runs.METRICS_FILE, metrics)
        result["test"] = metrics
    if not args.no_plots:
        written, skipped = runs.write_figures(out, model, ds.X_test, ds.y_test, ds.label_names)
        if board is not None:
            board.add_pngs(written)
        for name in skipped:
            say(f"note: {out / name} was not written by aekit; left as it is, not redrawn")
    result["files"] = runs.Run(out, model, None).files(aekits=True)  # not a user's own files
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print(_train_summary(result))
    return 0


def keep_labels(y, n_labeled: int | None, seed: int, marker):
    """The labels the model learns from: ``y`` (the data layer's, -1 where a label cell was
    empty) with its unlabelled rows set to the model's ``unlabeled_label`` ``marker`` and, with
    ``n_labeled``, all labelled rows but ``n_labeled`` of them (stratified by class, seeded by
    ``seed``) unlabelled too. Only a labelled row can be kept, and -1 is no class."""
    import numpy as np

    from ..metrics import labelled_rows

    y = np.asarray(y)
    has = np.flatnonzero(labelled_rows(y))  # the data layer's marker, -1
    keep = has
    if n_labeled is not None and n_labeled < len(has):
        n_classes = len(np.unique(y[has]))
        if n_labeled < n_classes:
            raise UsageError(
                f"--labeled {n_labeled}: keep at least one label per class ({n_classes} classes)"
            )
        if marker is None:
            raise UsageError("--labeled needs an unlabelled marker, but unlabeled_label is None")
        keep = _stratified(has, y[has], n_labeled, seed)
    if len(keep) == len(y):
        return y
    if marker is None:
        raise UsageError(
            f"{len(y) - len(has)} training rows have no label (an empty label cell), but "
            "unlabeled_label is None, which takes every label for a class; leave it at -1, or "
            "fill the labels in"
        )
    if not isinstance(marker, str) and np.any(y[keep] == marker):
        raise UsageError(f"unlabeled_label={marker!r} is one of the classes (the data's labels "
                         "are coded 0..K-1); give a negative marker, such as -1")  # fmt: skip
    out = np.full(len(y), marker, dtype=object if isinstance(marker, str) else np.int64)
    out[keep] = y[keep]
    return out


def _stratified(idx, y, n: int, seed: int):
    """``n`` of the rows ``idx`` (labels ``y``), stratified by class; where a class has one row
    or fewer rows are left out than there are classes (no stratified split exists), one row of
    each class and the rest at random."""
    import numpy as np
    from sklearn.model_selection import train_test_split

    try:
        return train_test_split(idx, train_size=n, stratify=y, random_state=seed)[0]
    except ValueError:
        rng = np.random.default_rng(seed)
        first = np.array([rng.choice(idx[y == c]) for c in np.unique(y)])
        rest = rng.permutation(np.setdiff1d(idx, first))[: n - len(first)]
        return np.concatenate([first, rest])


def _train_summary(r: dict[str, Any]) -> str:
    lines = [
        f"trained {r['model']} on {r['data']}: {r['n_train']} train / {r['n_test']} test rows, "
        f"{r['n_features']} features, {r['epochs']} epochs in {r['train_seconds']:.1f} s "
        f"(stopped: {r['stop_reason']})"
    ]
    if r["final"]:
        unit = "".join(f" ({v} per sample)" for v in r["chosen"].values())
        lines.append("final " + ", ".join(f"{k} {fmt(v)}" for k, v in r["final"].items()) + unit)
    if "test" in r:
        lines += metrics_lines(r["test"])
    lines.append(f"wrote {r['run']}/: " + ", ".join(r["files"]))
    return "\n".join(lines)


def add_parsers(sub) -> None:
    from .common import add_data_args, image_size_arg

    t = sub.add_parser("train", help="train a model and write a run folder")
    t.add_argument("model", nargs="?", choices=sorted(FAMILIES), help="model family")
    add_data_args(t, required=False)
    t.add_argument(
        "--image-size",
        type=image_size_arg,
        metavar="N|HxW",
        help="a folder of images: resize each image to N x N (or HEIGHTxWIDTH) pixels as it is "
        "read, so the images may have any sizes (stored in the run: encode and evaluate resize "
        "alike)",
    )
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
        help="classifiers: keep only this many of the labelled training rows' labels "
        "(stratified, seeded by --split-seed); the other rows are unlabelled and serve "
        "pre-training only",
    )
    t.add_argument("--latent", type=int, help="latent_dim: width of the code")
    t.add_argument("--hidden", help="hidden widths, e.g. 256,128 ('' for none)")
    t.add_argument("--epochs", type=int, help="max_epochs")
    t.add_argument("--batch-size", type=int, dest="batch_size")
    t.add_argument("--lr", type=float)
    t.add_argument("--loss", choices=["mse", "bce"])
    t.add_argument("--architecture", choices=["mlp", "conv", "sequence"])
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
    t.add_argument("--out", help="run folder to write (required unless --resume RUN names it)")
    t.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the model already in --out, once the new run is complete (it trains in "
        "--out/staging meanwhile); only an aekit run folder can be replaced",
    )
    add_trust_code(t)
    t.add_argument(
        "--resume",
        nargs="?",
        const=True,
        metavar="RUN",
        help="continue the interrupted run in RUN (or in RUN/staging) from its last checkpoint "
        "up to its epochs (or --epochs), on its own data; no model name or --data. Without "
        "RUN, the run in --out",
    )
    t.add_argument("--log-dir", dest="log_dir",
                   help="also write TensorBoard event files (scalars per epoch, the run's "
                   "figures at the end) into this folder; needs pip install "
                   "'aekit[tensorboard]'")  # fmt: skip
    t.add_argument("--checkpoint-every", type=int, default=1, help="save every N epochs")
    t.add_argument(
        "--checkpoint-seconds",
        type=float,
        default=30.0,
        help="and at most once per this many seconds (default 30; 0: every N epochs)",
    )
    t.add_argument("--threads", type=int, help="torch CPU threads")
    t.add_argument(
        "--nproc-per-node",
        type=int,
        dest="nproc_per_node",
        metavar="N",
        help="data-parallel training in N processes on this machine (one per GPU; gloo on the "
        "CPU): shorthand for `torchrun --standalone --nproc-per-node N -m aekit train ...`; "
        "--batch-size stays the global batch",
    )
    t.add_argument(
        "--time-limit",
        type=float,
        help="stop after the epoch that ends past this many seconds of (fine-)tuning",
    )
    t.add_argument("--no-plots", action="store_true", help="skip the figures")
    t.add_argument("--json", action="store_true", help="print the result as JSON")
    t.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    t.set_defaults(func=cmd_train)
