"""The commands that describe and measure runs: ``info``, ``evaluate``, ``report`` and
``compare``."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from .. import runs
from ..errors import DataError, ModelFileError
from .common import (
    UsageError,
    add_data_args,
    add_overwrite,
    add_run_options,
    add_workers,
    apply,
    binarized,
    claim_output,
    fmt,
    load_run,
    metrics_lines,
    output_file,
    report,
    rows_for,
    say,
)


def cmd_info(args: argparse.Namespace) -> int:
    info = runs.describe(args.run)  # reads the JSON files only: no torch, no weights
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return 0
    fitted = info["fitted"] or {}
    lines = [
        f"{info['run']}: {info['class']} (aekit {info['aekit_version']}), "
        f"{fitted.get('n_epochs_')} epochs, stopped: {fitted.get('stop_reason_')}",
        "parameters: " + ", ".join(f"{k}={v}" for k, v in sorted((info["params"] or {}).items())),
    ]
    chosen = {k: v for k, v in fitted.items() if k in ("loss_", "likelihood_")}
    if chosen:  # what "auto" resolved to
        lines.append("in use: " + ", ".join(f"{k}={v}" for k, v in chosen.items()))
    run_data = info["data"]
    if run_data:
        lines.append(
            f"data: {run_data['source']} ({run_data['n_train']} train / {run_data['n_test']} "
            f"test rows, {run_data['n_features']} features, scaling {run_data['scaling']['kind']})"
        )
    if info["last_epoch"]:
        last = info["last_epoch"]
        lines.append(
            "last epoch: " + ", ".join(f"{k} {fmt(v)}" for k, v in last.items() if "loss" in k)
        )
    if info["metrics"]:
        try:
            lines += metrics_lines(info["metrics"])
        except (KeyError, TypeError, ValueError, AttributeError):
            raise ModelFileError(
                f"{Path(args.run) / runs.METRICS_FILE}: not the metrics aekit "
                "writes; run `aekit evaluate` to write them again"
            ) from None
    lines.append("files: " + ", ".join(info["files"]))
    print("\n".join(lines))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """The model's numbers next to PCA and the raw inputs (``metrics.evaluate_model``), as a
    table (or JSON), written to the run's metrics.json; with ``--anomalies``, anomaly detection
    against PCA's reconstruction error and an IsolationForest."""
    result = evaluation(args, load_run(args))
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print(_evaluation_table(result))
    return 0


def evaluation(args: argparse.Namespace, run) -> dict[str, Any]:
    """Evaluate on ``--data`` (all rows) or the run's test split, with baselines fitted on the
    run's training split; returns the numbers, and writes them to metrics.json when they are
    the run's whole test split."""
    from ..metrics import anomaly_detection, evaluate_model
    from ..tags import aekit_tags

    model, run_data = run.model, run.data
    if args.data is not None and run.is_own_source(args.data):
        args.data = None  # the run's own data: its test rows, never the rows it was fitted on
    standard = args.data is None and args.max_rows is None  # the run's own test split, whole
    X, y = rows_for(args, run, "all" if args.data is not None else "test")
    if not len(X):
        raise UsageError(f"{args.run} has no test rows (trained with --test-fraction 0): give "
                         "--data with rows to evaluate")  # fmt: skip
    try:
        X_train, y_train = run.rows("train", data_dir=args.data_dir, workers=args.workers)
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
    if args.binarize is None and aekit_tags(model).binary_input:
        args.binarize = 1
        say("note: the model was trained on binarised data; evaluating one seeded "
             "binarisation (seed 1) of the rows (--binarize SEED to choose)")  # fmt: skip
    if args.binarize is not None:  # one seeded draw: the binary test set of the IWAE paper
        X = binarized(X, args.binarize)
        X_train = binarized(X_train, args.binarize + 1)  # the baselines see binary rows too
    labels = None
    if args.anomalies is not None:
        labels = _read_anomaly_labels(args.anomalies, len(X))
        if aekit_tags(model).reconstruct_needs_labels and y is None:
            raise UsageError("--anomalies: a supervised model scores (row, label) pairs, and "
                             "these rows have no labels")  # fmt: skip
    source = args.data or run_data["source"]
    say(f"evaluating {type(model).__name__} on {len(X)} rows of {source} (baselines fitted on "
         f"{len(X_train)} training rows)")  # fmt: skip
    started = time.perf_counter()
    result = {"run": str(args.run), "model_class": type(model).__name__, "n_rows": len(X),
              "data": source}  # fmt: skip
    result.update(apply(lambda rows: evaluate_model(
        model, X_train, rows, y_train, y, trust_rows=args.trust_rows,
        ll_samples=args.ll_samples, progress=lambda m: say(f"  {m}")), X, source))  # fmt: skip
    if "ll_samples" in result["model"]:
        result["ll_samples"] = result["model"].pop("ll_samples")
    if labels is not None:
        result["anomalies"] = _anomaly_table(model, X_train, X, y, labels, anomaly_detection)
    result["seconds"] = round(time.perf_counter() - started, 3)
    result["split"] = "test" if standard else "other"
    if standard:  # metrics.json holds the run's own whole test split (for report and compare)
        from ..errors import FolderError, FolderLockedError

        try:
            run.write_metrics(result)
        except (FolderError, FolderLockedError) as e:  # the numbers are printed all the same
            say(f"note: not written to {runs.METRICS_FILE}: {e}")
    else:
        say(f"note: not written to {runs.METRICS_FILE}, which holds the run's whole test split")
    return result


def cmd_report(args: argparse.Namespace) -> int:
    """RUN/report.html: the run's summary, its metrics against the baselines (from a full
    metrics.json, or computed now), and the figures that fit the model kind."""
    from ..io import atomic_write_bytes
    from ..persist import read_config
    from ..plotting import figure_inputs, run_figures
    from ..report import render_report

    run = load_run(args)
    if args.out is not None:
        out = output_file(args, default="report.html")
    else:
        out = run.path / "report.html"
        runs.check_writable(run.path, [out.name])
    _, config, _ = read_config(run.path)
    metrics = run.metrics() or {}
    if metrics.get("split") != "test" or "raw" not in metrics:  # aekit train's short form
        metrics = evaluation(args, run)
    say("drawing the figures")
    X, y = rows_for(args, run, "test")
    figures = run_figures(**figure_inputs(run.model, X, y, run.label_names))
    page = render_report(run=str(args.run), model=run.model, config=config, run_data=run.data,
                         metrics=metrics, figures=figures)  # fmt: skip
    from ..io import claim, folder_lock

    if args.out is not None:
        claim_output(out)
    with folder_lock(out.parent):
        if args.out is None:
            claim(run.path, [out.name])
        atomic_write_bytes(out, page.encode("utf-8"))
    report(args, str(out), report=str(out), figures=list(figures))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """The runs' model metrics side by side (from each run's metrics.json)."""
    from ..io import atomic_write_bytes
    from ..report import comparison_rows, render_comparison

    html = output_file(args, "--html") if args.html is not None else None
    metrics = []
    for run in args.runs:
        m = runs.Run(Path(run), None, None).metrics()
        if m is None:
            raise UsageError(f"{run}: no {runs.METRICS_FILE}; run `aekit evaluate {run}` first")
        if "model_class" not in m:
            m["model_class"] = runs.describe(run)["class"]
        metrics.append(m)
    header, rows = comparison_rows(args.runs, metrics)
    if html is not None:
        claim_output(html)
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
        say(f"wrote {args.html}")
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
    """ROC-AUC and average precision of the model's anomaly score (minus the score its
    ``decision_function`` thresholds, for a model without one minus ``score_samples``),
    of PCA's reconstruction error at the same code size, and of an IsolationForest, all
    fitted on the training rows."""
    from sklearn.ensemble import IsolationForest

    from ..metrics import pca_reconstruction
    from ..tags import aekit_tags

    tags = aekit_tags(model)
    if tags.outlier_detector:  # the score its decision_function thresholds (a VAE's may differ)
        model_scores = -model.detector_scores(X, y)
    elif tags.reconstruct_needs_labels:
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
    lines = [f"{r['n_rows']} rows of {r['data']} ({r['seconds']:.1f} s)"]
    if r.get("labeled_test_rows", r["n_rows"]) != r["n_rows"]:  # -1: an empty label cell
        lines.append(f"accuracies on the {r['labeled_test_rows']} labelled rows (probes fitted "
                     f"on {r['labeled_train_rows']} labelled training rows); unlabelled rows "
                     "left out")  # fmt: skip
    lines.append(f"  {'metric':<36} {'model':>10} {f'PCA-{d}':>10} {'raw':>10}")
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


def add_parsers(sub) -> None:
    ev = sub.add_parser(
        "evaluate", help="a run's numbers next to PCA and the raw inputs (writes metrics.json)"
    )
    ev.add_argument("run")
    add_data_args(ev, required=False)
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
    add_run_options(ev)
    ev.set_defaults(func=cmd_evaluate)

    rep = sub.add_parser("report", help="write RUN/report.html (self-contained: figures inside)")
    rep.add_argument("run")
    rep.add_argument("--data-dir", help="folder holding the IDX files of mnist / fashion-mnist")
    add_workers(rep)
    rep.add_argument("--out", help="the HTML file (default RUN/report.html)")
    rep.add_argument(
        "--ll-samples", type=int, default=1000, help="VAE: samples per row for log p(x)"
    )
    rep.add_argument("--trust-rows", type=int, default=2000, help="rows for trustworthiness")
    rep.add_argument("--binarize", type=int, metavar="SEED", help="as for evaluate")
    add_overwrite(rep)
    add_run_options(rep)
    rep.set_defaults(func=cmd_report, anomalies=None, data=None, label_column=None, max_rows=None)

    cmp_ = sub.add_parser("compare", help="the metrics of several runs side by side")
    cmp_.add_argument("runs", nargs="+", help="run folders (each with a metrics.json)")
    cmp_.add_argument("--html", help="also write the table as an HTML page")
    add_overwrite(cmp_)
    cmp_.add_argument("--json", action="store_true", help="print the metrics as JSON")
    cmp_.set_defaults(func=cmd_compare)

    i = sub.add_parser("info", help="describe a run folder")
    i.add_argument("run")
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=cmd_info)
