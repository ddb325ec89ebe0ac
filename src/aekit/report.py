"""The HTML report of a run, and the comparison of runs: one self-contained file each (figures
embedded as PNG data URIs, styles inline, no script and nothing fetched from the network).

The figures are a run's own (:func:`aekit.plotting.figure_inputs` chooses them by the model's
tags, :func:`aekit.plotting.run_figures` draws them), so the report and a run folder's PNG files
always agree: every model gets learning curves, the latent map coloured by label and, for
images, reconstructions (not a classifier); a generative model (VAE, AAE) samples, an
interpolation and the decoded 2-D manifold; a model with a prior its codes over the prior; a
model that generates by class samples by class; a denoising model noisy / denoised / clean
triplets; the stacked and denoising models their first-layer filters; a sparse model the
histogram of its code activations.
"""

from __future__ import annotations

import base64
import html
import io as _io
from collections.abc import Sequence
from typing import Any

import numpy as np

from .plotting import CAPTIONS


def png_data_uri(fig) -> str:
    buf = _io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.6rem; }
h2 { font-size: 1.25rem; margin-top: 2rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.5rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead th { background: #f3f3f3; }
figure { margin: 1rem 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.9rem; color: #555; }
.params td { font-family: ui-monospace, monospace; }
"""


def _fmt(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return html.escape(str(v))
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, int | np.integer):
        return str(int(v))
    return html.escape(str(v))


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], cls: str = "",
           table_id: str = "") -> str:  # fmt: skip
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(c)}</td>" for c in r) + "</tr>" for r in rows)
    ident = f' id="{table_id}"' if table_id else ""
    return (f'<table{ident} class="{cls}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table>")  # fmt: skip


def metrics_table(metrics: dict[str, Any]) -> str:
    """The model / PCA / raw columns of :func:`aekit.metrics.evaluate_model`, one metric a row."""
    cols = [c for c in ("model", "pca", "raw") if c in metrics]
    names = list(dict.fromkeys(k for c in cols for k in metrics[c]))
    k = metrics.get("pca_components", metrics.get("latent_dim", "?"))
    header = ["metric", "model", f"PCA-{k}", "raw inputs"][: len(cols) + 1]
    rows = [[n, *(metrics[c].get(n, "") for c in cols)] for n in names]
    return _table(header, rows, table_id="metrics")


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>\n"
    )


def render_report(
    *, run: str, model, config: dict[str, Any], run_data: dict[str, Any] | None,
    metrics: dict[str, Any], figures: dict[str, Any],
) -> str:  # fmt: skip
    """The report page: summary, parameters, metrics against the baselines, figures."""
    meta = config.get("metadata") or {}
    fitted = config.get("fitted") or {}
    history = model.history_
    summary = [
        ("model", type(model).__name__),
        ("data", (run_data or {}).get("source", meta.get("data_source", "?"))),
        ("training rows", (run_data or {}).get("n_train", "?")),
        ("test rows", metrics.get("n_rows", metrics.get("n_test", "?"))),
        ("features", fitted.get("n_features_in_", "?")),
        ("code size", metrics.get("latent_dim", "?")),
        ("epochs", fitted.get("n_epochs_", len(history))),
        ("stopped", fitted.get("stop_reason_", "?")),
        ("training wall time (s)", meta.get("train_seconds", "not recorded")),
        ("device", fitted.get("device_", "?")),
        (
            "aekit / torch",
            f"{config.get('aekit_version', '?')} / {config.get('torch_version', '?')}",
        ),
    ]
    n_test = metrics.get("n_rows", metrics.get("n_test"))
    if metrics.get("labeled_test_rows", n_test) != n_test:  # rows with an empty label cell
        summary.insert(4, ("labelled test rows (the accuracies')", metrics["labeled_test_rows"]))
    if history and "loss" in history[-1]:
        summary.append(("final training loss (per sample)", history[-1]["loss"]))
    if history and "val_loss" in history[-1]:
        summary.append(("final validation loss (per sample)", history[-1]["val_loss"]))
    params = sorted((k, v) for k, v in (config.get("params") or {}).items())
    parts = [
        "<h2>Summary</h2>", _table(["", "value"], summary),
        "<h2>Metrics on the test rows, against PCA and the raw inputs</h2>",
        "<p>Reconstruction errors are per sample (summed over features) or per feature; "
        "accuracies are of classifiers fitted on training codes and scored on test codes; "
        "trustworthiness uses k = 5"
        + (f" on {metrics['trust_rows']} rows" if "trust_rows" in metrics else "") + ".</p>",
        metrics_table(metrics),
    ]  # fmt: skip
    if "anomalies" in metrics:
        a = metrics["anomalies"]
        rows = [[k, a[k]["roc_auc"], a[k]["average_precision"]]
                for k in ("model", "pca", "isolation_forest")]  # fmt: skip
        parts += ["<h2>Anomaly detection</h2>", _table(["score", "ROC-AUC", "avg precision"], rows)]
    parts.append("<h2>Figures</h2>")
    for name, fig in figures.items():
        caption = html.escape(CAPTIONS.get(name, name.replace("_", " ")))
        parts.append(
            f'<figure id="fig-{name}"><img alt="{caption}" src="{png_data_uri(fig)}">'
            f"<figcaption>{caption}</figcaption></figure>"
        )
    parts += ["<h2>Parameters</h2>", _table(["parameter", "value"], params, "params")]
    return _page(f"aekit report: {run}", "".join(parts))


def render_comparison(runs: Sequence[str], metrics: Sequence[dict[str, Any]]) -> str:
    """A page with :func:`comparison_rows` as a table."""
    header, rows = comparison_rows(runs, metrics)
    return _page("aekit: runs compared", _table(header, rows, table_id="metrics"))


def comparison_rows(runs: Sequence[str], metrics: Sequence[dict[str, Any]]):
    """``(header, rows)``: one row per metric of the runs' model columns, one column per run."""
    names = list(dict.fromkeys(k for m in metrics for k in m.get("model", {})))
    header = ["metric", *runs]
    rows = [["model", *(m.get("model_class", "?") for m in metrics)],
            ["code size", *(m.get("latent_dim", "") for m in metrics)]]  # fmt: skip
    rows += [[n, *(m.get("model", {}).get(n, "") for m in metrics)] for n in names]
    return header, rows
