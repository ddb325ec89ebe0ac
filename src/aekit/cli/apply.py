"""The commands that put a run's model to work on data: ``encode``, ``reconstruct``,
``denoise``, ``detect``, ``generate`` and ``plot``."""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import runs
from ..errors import DataError
from .common import (
    UsageError,
    add_data_args,
    add_overwrite,
    add_run_options,
    apply,
    array_output,
    claim_output,
    load_run,
    output_file,
    parse_value,
    report,
    require_data,
    rows_for,
    say,
    write_array,
)


def cmd_encode(args: argparse.Namespace) -> int:
    run = load_run(args)
    path = array_output(args, "codes")
    X, _ = rows_for(args, run, args.split)
    codes = apply(run.model.transform, X, args.data or run.data["source"])
    write_array(path, codes)
    report(args, f"wrote codes of shape {codes.shape} to {path}", out=path, shape=codes.shape)
    return 0


def _contamination(text: str | None):
    if text is None or text == "auto":
        return text
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value <= 0.5:
        raise UsageError(f"--contamination {text}: 'auto' or a fraction in (0, 0.5]")
    return value


def cmd_detect(args: argparse.Namespace) -> int:
    """Each row's anomaly score (``decision_function``: negative for anomalies) and flag (1
    inlier, -1 anomaly), as a CSV with a header ``score,flag``. The run's scaling applies. A
    model without its own threshold (a classifier, a clusterer, a model saved before issue 15)
    or ``--contamination`` gets one from the scores of the run's training rows."""
    import io as _io

    import numpy as np

    from ..anomaly import offset_from_scores
    from ..io import atomic_write_bytes
    from ..tags import aekit_tags

    contamination = _contamination(args.contamination)
    run = load_run(args)
    model = run.model
    tags = aekit_tags(model)
    out = output_file(args, suffixes=(".csv",), what="the scores and flags")
    X, y = rows_for(args, run, args.split)
    source = args.data or run.data["source"]
    labelled = tags.reconstruct_needs_labels  # its decoder, so its score, reads each row's label
    if labelled and y is None:
        raise UsageError(
            f"{args.run} holds a supervised model, whose decoder also reads each row's label: "
            "give --data with labels (--label-column for a CSV)"
        )
    if tags.outlier_detector:  # its own score (a VAE's may be log p(x)) and threshold
        if contamination is not None or "offset_" not in model.__dict__:
            if contamination is not None:
                model.set_params(contamination=contamination)
            X_train, y_train = run.rows("train", workers=args.workers)
            threshold = (lambda rows: model.set_offset(rows, y_train)) if labelled else (
                model.set_offset)  # fmt: skip
            apply(threshold, X_train, run.data["source"])
        offset = model.offset_
        method = (lambda rows: model.decision_function(rows, y)) if labelled else (
            model.decision_function)  # fmt: skip
        decision = apply(method, X, source)
    else:  # a classifier or a clusterer: its score_samples, thresholded on the training rows
        X_train, _ = run.rows("train", workers=args.workers)
        train_scores = apply(model.score_samples, X_train, run.data["source"])
        offset = offset_from_scores(train_scores, contamination or "auto")
        decision = apply(model.score_samples, X, source) - offset
    flags = np.where(decision < 0, -1, 1)
    buf = _io.StringIO()
    buf.write("score,flag\n")
    for value, flag in zip(decision, flags, strict=True):
        buf.write(f"{value:.8g},{flag}\n")
    claim_output(out)
    atomic_write_bytes(out, buf.getvalue().encode())
    n_out = int((flags == -1).sum())
    report(args, f"wrote the scores and flags of {len(flags)} rows ({n_out} flagged as "
           f"anomalies, threshold {offset:.6g}) to {out}", out=out, rows=len(flags),
           anomalies=n_out, offset=float(offset))  # fmt: skip
    return 0


def cmd_reconstruct(args: argparse.Namespace) -> int:
    from ..tags import aekit_tags

    run = load_run(args, need_data=False)
    model = run.model
    tags = aekit_tags(model)
    if args.command == "denoise" and not tags.denoising:
        raise UsageError(
            f"{args.run} holds a {type(model).__name__}, not a denoising model; train one with "
            "`aekit train denoising ...`, or use `aekit reconstruct`"
        )
    require_data(run)
    path = array_output(args, "reconstructions")
    X, y = rows_for(args, run, args.split)
    if not tags.has_decoder:
        raise UsageError(f"{args.run} holds a {type(model).__name__}, which has no decoder: it "
                         "cannot reconstruct; use `aekit encode`")  # fmt: skip
    method = model.denoise if args.command == "denoise" else model.reconstruct
    if tags.reconstruct_needs_labels:  # its decoder reads (code, label)
        if y is None:
            raise UsageError(
                f"{args.run} holds a supervised model, whose decoder also reads each row's "
                "label: give --data with labels (--label-column for a CSV)"
            )
        method = lambda rows: model.reconstruct(rows, y)  # noqa: E731
    recon = apply(method, X, args.data or run.data["source"])
    if not args.scaled:
        recon = run.scaler.inverse_transform(recon)
    write_array(path, recon)
    units = "the model's scaled units" if args.scaled else "the data's original units"
    what = "denoised data" if args.command == "denoise" else "reconstructions"
    report(args, f"wrote {what} of shape {recon.shape} ({units}) to {path}", out=path,
            shape=recon.shape, scaled=args.scaled)  # fmt: skip
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from ..tags import aekit_tags

    run = load_run(args, need_data=False)
    model = run.model
    tags = aekit_tags(model)
    if not tags.generative:
        raise UsageError(
            f"{args.run} holds a {type(model).__name__}, which has no generative model; train "
            "a `vae` or an `aae` to generate"
        )
    if args.n < 1:
        raise UsageError(f"-n {args.n}: give a positive number of samples")
    out = output_file(args, suffixes=(".png", ".npy", ".csv"), what="samples")
    if args.draw and not tags.stochastic_decoder:
        raise UsageError(f"--draw: a {type(model).__name__}'s decoder is deterministic; only a "
                         "VAE's draws from p(x|z)")  # fmt: skip
    if args.label is not None:
        if not tags.generates_by_class:
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
        from ..plotting import plot_image_grid, save_figure

        shape = model.input_shape_
        if shape is None or len(shape) != 3:
            raise UsageError(f"{args.run}: the data are not images; write the samples to .npy")
        claim_output(out)
        save_figure(plot_image_grid(rows, shape), out)
    else:
        if run.data is not None and not args.scaled:
            rows = run.scaler.inverse_transform(rows)
        write_array(out, rows)
    report(args, f"wrote {args.n} samples to {out}", out=out, n=args.n)
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    run = load_run(args)
    X, y = rows_for(args, run, "all" if args.data is not None else "test")
    if args.out_dir is not None and not args.out_dir.strip():
        raise UsageError("--out-dir is empty (an unset shell variable?); give a folder")
    out = Path(args.out_dir or args.run)
    runs.check_writable(out, [])
    written, skipped = run.write_figures(X, y, out)
    for name in skipped:
        say(f"note: {out / name} was not written by aekit; left as it is, not redrawn")
    report(args, "\n".join(map(str, written)), files=[str(p) for p in written])
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from ..tags import aekit_tags

    run = load_run(args, need_data=False)
    if args.out is not None and not args.out.strip():
        raise UsageError("--out is empty (an unset shell variable?); give a folder")
    out = Path(args.out) if args.out else run.path / runs.EXPORT_FOLDER
    runs.check_writable(out, list(runs.EXPORT_FILES))
    try:
        files = run.export(out, args.format)
    except ImportError as e:
        raise UsageError(str(e)) from None
    if not aekit_tags(run.model).has_decoder:
        say(f"note: a {type(run.model).__name__} has no decoder: wrote encoder.onnx only")
    if run.data is None:
        say(f"note: {args.run} has no data.json (saved from Python): the files take rows scaled "
            "as the model was fitted")  # fmt: skip
    scaling = "raw rows in, the run's scaling baked in" if run.data else "no scaling baked in"
    report(args, f"wrote {', '.join(files)} to {out} ({scaling})",
           out=str(out), files=[str(p) for p in files.values()])  # fmt: skip
    return 0


def _add_split(p) -> None:
    p.add_argument(
        "--split",
        default="all",
        choices=["all", "train", "test"],
        help="rows of the data to use (default all, in the source's order)",
    )


def add_parsers(sub) -> None:
    for name, func, what in (
        ("encode", cmd_encode, "codes"),
        ("reconstruct", cmd_reconstruct, "reconstructions"),
        ("denoise", cmd_reconstruct, "denoised data"),
    ):
        p = sub.add_parser(name, help=f"write the {what} of data with a trained run")
        p.add_argument("run", help="run folder")
        add_data_args(p, required=False)
        _add_split(p)
        p.add_argument("--out", required=True, help=f".npy or .csv file for the {what}")
        add_overwrite(p)
        add_run_options(p)
        if name in ("reconstruct", "denoise"):
            p.add_argument("--scaled", action="store_true", help="keep the model's scaling")
        p.set_defaults(func=func)

    det = sub.add_parser("detect", help="write each row's anomaly score and flag (CSV)")
    det.add_argument("run", help="run folder")
    add_data_args(det, required=False)
    _add_split(det)
    det.add_argument("--out", required=True,
                     help=".csv file: score (decision_function, negative for anomalies), flag "
                     "(1 inlier, -1 anomaly)")  # fmt: skip
    det.add_argument(
        "--contamination",
        help="'auto' or the share of anomalies in the training rows (0, 0.5]: the "
        "threshold from the run's training rows (default: the model's own)",
    )
    add_overwrite(det)
    add_run_options(det)
    det.set_defaults(func=cmd_detect)

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
    add_overwrite(gen)
    add_run_options(gen)
    gen.set_defaults(func=cmd_generate)

    ex = sub.add_parser(
        "export",
        help="write the run's encoder and decoder as ONNX files that take raw rows",
        description="Write encoder.onnx (raw rows -> codes) and decoder.onnx (codes -> raw "
        "rows) with a dynamic batch size; the run's scaling is part of both graphs.",
    )
    ex.add_argument("run")
    ex.add_argument("--format", default="onnx", choices=["onnx"], help="file format (onnx)")
    ex.add_argument("--out", help="folder for the files (default: RUN/onnx)")
    add_run_options(ex)
    ex.set_defaults(func=cmd_export)

    pl = sub.add_parser("plot", help="write the figures of a run (PNG)")
    pl.add_argument("run")
    add_data_args(pl, required=False)
    pl.add_argument("--out-dir", help="folder for the PNG files (default: the run folder)")
    add_run_options(pl)
    pl.set_defaults(func=cmd_plot)
