"""Pictures: learning curves, the latent map, reconstructions.

Figures are built with ``matplotlib.figure.Figure`` directly (no pyplot): no global state, no
display needed, safe in threads and servers. Each ``plot_*`` function draws into ``ax`` when given
(a user's own axes in a notebook) and returns the figure. :func:`save_figure` writes PNG files
atomically. The ``plot_*`` functions take arrays and history lists; :func:`figure_inputs`
computes them from a model, choosing the figures by its tags (:mod:`aekit.tags`), so this module
never imports a model family.
"""

from __future__ import annotations

import io as _io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .io import atomic_write_bytes
from .metrics import UNLABELED, is_sparse, labelled_rows, reconstruction_of
from .tags import aekit_tags, estimator_type


def _new_axes(ax, figsize=(6, 4.5)):
    if ax is not None:
        return ax.figure, ax
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def save_figure(fig, path: str | Path, dpi: int = 110) -> Path:
    """Write ``fig`` as PNG to ``path``, atomically."""
    buf = _io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return atomic_write_bytes(path, buf.getvalue())


def _stages(history: Sequence[dict[str, Any]]) -> list[tuple[str | None, list[dict]]]:
    """Consecutive runs of epochs with the same ``stage`` (one run when there are no stages)."""
    groups: list[tuple[str | None, list[dict]]] = []
    for h in history:
        stage = h.get("stage")
        if not groups or groups[-1][0] != stage:
            groups.append((stage, []))
        groups[-1][1].append(h)
    return groups


def plot_learning_curves(history: Sequence[dict[str, Any]], ax=None, unit: str = "per sample"):
    """Training and validation loss per epoch (every ``*loss`` key of the history), log scale
    when the losses span more than a factor of 20.

    A history with stages (greedy pre-training, then fine-tuning) gets one panel per stage, as
    each stage's loss has its own scale; drawn into a user's ``ax``, the stages follow each other
    on one axis.
    """
    groups = _stages(history)
    if ax is None and len(groups) > 1:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(3.2 * len(groups), 3.6), layout="constrained")
        for panel, (stage, hist) in zip(fig.subplots(1, len(groups)), groups, strict=True):
            _draw_curves(panel, hist, unit, title=str(stage))
        return fig
    fig, ax = _new_axes(ax)
    _draw_curves(ax, history, unit, title="Learning curves")
    return fig


def _draw_curves(ax, history: Sequence[dict[str, Any]], unit: str, title: str) -> None:
    x = np.arange(1, len(history) + 1)  # epochs in order (stages may restart their count)
    keys = [k for k in (history[0] if history else {}) if k.endswith("loss")]
    values = []
    for key in keys:
        ys = [h.get(key, np.nan) for h in history]
        values += [y for y in ys if np.isfinite(y)]
        ax.plot(x, ys, label=key.replace("_", " "), marker="." if len(x) < 30 else None)
    if values and min(values) > 0 and max(values) / min(values) > 20:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"loss ({unit})")
    ax.set_title(title)
    if keys:
        ax.legend(fontsize="small")
    ax.grid(alpha=0.3)


def latent_2d(Z: np.ndarray) -> tuple[np.ndarray, str]:
    """Codes as 2-D points for a map: the codes themselves for 2-D, their first two principal
    components for more, the code against the row index for 1-D. Returns ``(points, how)``."""
    Z = np.asarray(Z, dtype=np.float64)
    if Z.shape[1] == 2:
        return Z, "code"
    if Z.shape[1] == 1:
        return np.column_stack([Z[:, 0], np.arange(len(Z))]), "code (1-D) against row"
    from sklearn.decomposition import PCA

    return PCA(n_components=2, random_state=0).fit_transform(Z), "first 2 PCs of the code"


def plot_latent(Z, y=None, label_names: Sequence[str] | None = None, ax=None, max_points=10000,
                *, unlabeled_label: Any = UNLABELED):  # fmt: skip
    """Scatter of the codes (see :func:`latent_2d`), coloured by label when labels are given.

    Rows labelled ``unlabeled_label`` (-1, the data layer's empty label cell; None: none) are
    no class: they are drawn in grey, under the labelled points, as "unlabelled". At most
    ``max_points`` points are drawn (a seeded subsample) to keep the file light.
    """
    fig, ax = _new_axes(ax, figsize=(6.5, 5.5))
    Z = np.asarray(Z)
    idx = np.arange(len(Z))
    if len(Z) > max_points:
        idx = np.sort(np.random.default_rng(0).choice(len(Z), max_points, replace=False))
    P, how = latent_2d(Z[idx])
    if y is None:
        ax.scatter(P[:, 0], P[:, 1], s=6, alpha=0.6)
    else:
        y = np.asarray(y)[idx]
        known = labelled_rows(y, unlabeled_label)
        classes = np.unique(y[known])
        cmap = _category_colors(len(classes))
        for i, c in enumerate(classes):
            m = y == c
            name = label_names[int(c)] if label_names is not None else str(c)
            ax.scatter(P[m, 0], P[m, 1], s=6, alpha=0.7, color=cmap[i], label=name, zorder=2)
        if not known.all():  # under the classes, last in the legend
            ax.scatter(P[~known, 0], P[~known, 1], s=6, alpha=0.5, color=UNLABELLED_COLOR,
                       label="unlabelled", zorder=1)  # fmt: skip
        if len(classes) <= 20:
            ax.legend(markerscale=3, fontsize="small", loc="best", framealpha=0.8)
    ax.set_xlabel(f"{how} 1" if how != "code (1-D) against row" else "code")
    ax.set_ylabel(f"{how} 2" if how != "code (1-D) against row" else "row")
    ax.set_title(f"Latent space ({how})")
    return fig


UNLABELLED_COLOR = "0.65"  # light grey, darker than the prior samples under the codes (0.8)


def _category_colors(n: int):
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _as_image(row: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    c, h, w = shape
    img = np.asarray(row, dtype=np.float64).reshape(c, h, w)
    img = img[0] if c == 1 else np.moveaxis(img, 0, -1)
    return np.clip(img, 0, 1)


def plot_image_rows(rows: Sequence[np.ndarray], image_shape, titles: Sequence[str], ax=None):
    """A grid of images: one row of the figure per array in ``rows`` (same number of images each),
    labelled with ``titles``; values are clipped to [0, 1]."""
    n_rows, n_cols = len(rows), len(rows[0])
    if ax is not None:
        fig = ax.figure
        ax.set_axis_off()
        axes = ax.inset_axes  # draw inside the user's axes
        grid = [
            [
                axes([j / n_cols, 1 - (i + 1) / n_rows, 1 / n_cols, 1 / n_rows])
                for j in range(n_cols)
            ]
            for i in range(n_rows)
        ]
    else:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(1.1 * n_cols, 1.25 * n_rows), layout="constrained")
        flat = fig.subplots(n_rows, n_cols, squeeze=False)
        grid = [list(r) for r in flat]
    gray = image_shape[0] == 1
    for i, images in enumerate(rows):
        for j in range(n_cols):
            a = grid[i][j]
            a.imshow(
                _as_image(images[j], image_shape), cmap="gray" if gray else None, vmin=0, vmax=1
            )
            a.set_xticks([])
            a.set_yticks([])
            if j == 0:
                a.set_ylabel(titles[i], fontsize="small")
    return fig


def plot_reconstructions(X, X_hat, image_shape, n: int = 10, ax=None):
    """The first ``n`` test images (top) over their reconstructions (bottom)."""
    n = min(n, len(X))
    return plot_image_rows([X[:n], X_hat[:n]], image_shape, ["original", "reconstruction"], ax)


def plot_filters(weights: np.ndarray, image_shape, n: int = 100, ax=None):
    """The first layer's filters as images: row ``j`` of ``weights`` (shape ``(units,
    n_features)``) is what unit ``j`` responds to, its receptive field. Each filter is scaled
    to its own range; the first ``n`` are shown on a square grid."""
    W = np.asarray(weights, dtype=np.float64)[:n]
    lo, hi = W.min(1, keepdims=True), W.max(1, keepdims=True)
    W = (W - lo) / np.where(hi > lo, hi - lo, 1.0)
    side = int(np.ceil(np.sqrt(len(W))))
    rows = [W[i * side : (i + 1) * side] for i in range(int(np.ceil(len(W) / side)))]
    rows[-1] = np.vstack([rows[-1], np.zeros((side - len(rows[-1]), W.shape[1]))])
    return plot_image_rows(rows, image_shape, [""] * len(rows), ax)


def plot_image_grid(images: np.ndarray, image_shape, ax=None):
    """Images (flat rows) on a square grid, e.g. samples from a generative model."""
    images = np.asarray(images)
    side = int(np.ceil(np.sqrt(len(images))))
    pad = np.zeros((side * side - len(images), images.shape[1]), dtype=images.dtype)
    full = np.vstack([images, pad])
    return plot_image_rows([full[i * side : (i + 1) * side] for i in range(side)], image_shape,
                           [""] * side, ax)  # fmt: skip


def latent_manifold(model, n: int = 15) -> np.ndarray:
    """Decodings of an ``n x n`` grid over a 2-D latent plane at the prior's quantiles 0.05..0.95
    (Kingma and Welling 2014, fig. 4), rows top to bottom: flat images for
    :func:`plot_image_grid`. ``model`` needs ``inverse_transform`` and ``latent_dim == 2``; the
    prior is the model's own when it has ``sample_prior`` (adversarial autoencoders), else the
    standard normal."""
    levels = np.linspace(0.05, 0.95, n)
    if aekit_tags(model).has_prior:
        P = model.sample_prior(20000, random_state=0)
        qa, qb = np.quantile(P[:, 0], levels), np.quantile(P[:, 1], levels)
    else:
        from scipy.stats import norm

        qa = qb = norm.ppf(levels)
    grid = np.array([[a, b] for b in qb[::-1] for a in qa], dtype=np.float32)
    return model.inverse_transform(grid)


def plot_codes_over_prior(Z, prior_samples, y=None, label_names=None, ax=None, max_points=10000):
    """2-D codes (coloured by label) over samples of the prior (grey): how well an adversarial
    autoencoder matched its prior (Makhzani et al. 2015, fig. 2 and 4)."""
    fig, ax = _new_axes(ax, figsize=(6.5, 5.5))
    P = np.asarray(prior_samples)[:max_points]
    if P.shape[1] != 2 or np.asarray(Z).shape[1] != 2:
        raise ValueError("codes over the prior are drawn for 2-D codes only")
    ax.scatter(P[:, 0], P[:, 1], s=4, color="0.8", alpha=0.6, label="prior", rasterized=True)
    plot_latent(Z, y, label_names, ax=ax, max_points=max_points)
    ax.set_title("Codes (colour) over samples of the prior (grey)")
    return fig


def plot_denoising(X_noisy, X_denoised, X_clean, image_shape, n: int = 10, ax=None):
    """Noisy inputs (top), the model's denoised outputs (middle), the clean originals (bottom)."""
    n = min(n, len(X_clean))
    rows = [X_noisy[:n], X_denoised[:n], X_clean[:n]]
    return plot_image_rows(rows, image_shape, ["noisy", "denoised", "clean"], ax)


def plot_code_histogram(Z, ax=None, bins: int = 50):
    """Histogram of all code values (a sparse code piles up at zero)."""
    fig, ax = _new_axes(ax)
    Z = np.asarray(Z, dtype=np.float64).ravel()
    ax.hist(Z, bins=bins, color="tab:blue", alpha=0.8)
    ax.set_yscale("log")
    ax.set_xlabel("code value")
    ax.set_ylabel("count (log scale)")
    ax.set_title(f"Code activations ({np.mean(np.abs(Z) < 1e-3):.0%} within 1e-3 of zero)")
    return fig


# -- the figures of a run -----------------------------------------------------------------------

# Figure file stems -> captions, in reading order.
CAPTIONS = {
    "learning_curves": "Learning curves: per-sample losses by epoch (training and validation).",
    "latent": "Latent map of the test rows, coloured by label (unlabelled rows in grey).",
    "prior": "Test codes (colour) over samples of the prior (grey).",
    "code_histogram": "Code activations of the test rows.",
    "reconstructions": "Test images (top) and their reconstructions (bottom).",
    "denoising": "Corrupted test images, the model's denoised output, and the clean originals.",
    "filters": "First-layer filters: what each unit of the first layer responds to.",
    "samples": "Samples decoded from the prior.",
    "manifold": "Decodings over a grid of the 2-D latent plane (the prior's 5-95 % quantiles).",
    "interpolation": "Decodings along the line between the codes of two test images.",
    "samples_by_class": "Generated samples, one row per class (or cluster).",
}


def decodes_codes_alone(model) -> bool:
    """Whether ``inverse_transform(codes)`` works without labels (not for a supervised or a
    categorical adversarial autoencoder, whose decoder also reads the class)."""
    can = aekit_tags(model)
    return can.has_decoder and not can.decoder_needs_labels


def class_samples(model, label_names, per_class: int = 10):
    """Generated images per class (or cluster): ``(rows, names)``, or None."""
    if not aekit_tags(model).generates_by_class:
        return None
    clusters = estimator_type(model) == "clusterer"
    labels = list(range(int(model.n_clusters))) if clusters else list(model.classes_)
    rows = [model.generate(np.repeat(np.asarray([c]), per_class), random_state=i)
            for i, c in enumerate(labels)]  # fmt: skip
    names = [
        f"cluster {c}" if clusters
        else label_names[int(c)] if label_names is not None else str(c)
        for c in labels
    ]  # fmt: skip
    return rows, names


def figure_inputs(model, X, y, label_names, max_rows: int = 5000) -> dict[str, Any]:
    """The arrays :func:`run_figures` draws for this model, from test rows ``X`` (labels ``y``
    colour the latent map): which figures fit the model follows from its tags
    (:mod:`aekit.tags`), for a run folder's PNG files and for the report alike."""
    X = X[:max_rows]
    y = y[:max_rows] if y is not None else None
    codes = model.transform(X) if len(X) else None
    can = aekit_tags(model)
    shape = model.input_shape_
    images = shape is not None and len(shape) == 3 and len(X) > 0  # (T, C) windows are not
    # none for a classifier, or a supervised model without labels
    X_hat = reconstruction_of(model, X[:10], None if y is None else y[:10]) if images else None
    noisy = denoised = filters = None
    if images and can.denoising:  # a denoising model: show what it does to noise
        noisy = model.corrupt(X[:10], random_state=0)
        denoised = model.denoise(noisy)
    samples = path = manifold = prior = by_class = None
    if images and can.generative:
        samples = model.sample(64, random_state=0)
        if decodes_codes_alone(model):
            path = model.interpolate(X[0], X[1], steps=10) if len(X) > 1 else None
            if int(model.latent_dim) == 2:
                manifold = latent_manifold(model)
        if can.generates_by_class:
            by_class = class_samples(model, label_names)
    if can.has_prior and codes is not None and codes.shape[1] == 2:
        prior = model.sample_prior(5000, random_state=0)
    dense = model.architecture == "mlp"
    if images and dense and (can.denoising or can.layerwise_pretraining):
        import torch

        first = next(m for m in model.encoder_.modules() if isinstance(m, torch.nn.Linear))
        filters = first.weight.detach().cpu().numpy()  # receptive fields of the first layer
    return dict(
        history=model.history_, codes=codes, y=y, label_names=label_names, X=X[:10],
        X_hat=X_hat, image_shape=shape, X_noisy=noisy, X_denoised=denoised, filters=filters,
        samples=samples, interpolation=path, manifold=manifold, prior_samples=prior,
        class_samples=by_class, code_histogram=is_sparse(model),
    )  # fmt: skip


def run_figures(
    *,
    history: Sequence[dict[str, Any]],
    codes: np.ndarray | None = None,
    y: np.ndarray | None = None,
    label_names: Sequence[str] | None = None,
    X: np.ndarray | None = None,
    X_hat: np.ndarray | None = None,
    image_shape: Sequence[int] | None = None,
    X_noisy: np.ndarray | None = None,
    X_denoised: np.ndarray | None = None,
    filters: np.ndarray | None = None,
    samples: np.ndarray | None = None,
    interpolation: np.ndarray | None = None,
    manifold: np.ndarray | None = None,
    prior_samples: np.ndarray | None = None,
    class_samples: tuple[Sequence[np.ndarray], Sequence[str]] | None = None,
    code_histogram: bool = False,
) -> dict[str, Any]:
    """The standard figures of a run, by file stem, in reading order (see
    :func:`write_run_figures`)."""
    figs: dict[str, Any] = {}
    if history:
        figs["learning_curves"] = plot_learning_curves(history)
    if codes is not None:
        figs["latent"] = plot_latent(codes, y, label_names)
    if codes is not None and prior_samples is not None and np.shape(codes)[1] == 2:
        figs["prior"] = plot_codes_over_prior(codes, prior_samples, y, label_names)
    if codes is not None and code_histogram:
        figs["code_histogram"] = plot_code_histogram(codes)
    if image_shape is None:
        return figs
    if X is not None and X_hat is not None:
        figs["reconstructions"] = plot_reconstructions(X, X_hat, image_shape)
    if X is not None and X_noisy is not None and X_denoised is not None:
        figs["denoising"] = plot_denoising(X_noisy, X_denoised, X, image_shape)
    if filters is not None:
        figs["filters"] = plot_filters(filters, image_shape)
    for name, rows in (("samples", samples), ("manifold", manifold)):
        if rows is not None:
            figs[name] = plot_image_grid(rows, image_shape)
    if interpolation is not None:
        figs["interpolation"] = plot_image_rows([interpolation], image_shape, ["interpolation"])
    if class_samples is not None:
        figs["samples_by_class"] = plot_image_rows(
            list(class_samples[0]), image_shape, list(class_samples[1])
        )
    return figs


def write_run_figures(out_dir: str | Path, **inputs) -> list[Path]:
    """Write the standard figures of a run into ``out_dir`` as PNG; returns the paths written.

    ``learning_curves.png`` (when there is a history), ``latent.png`` (when codes are given) and
    ``reconstructions.png`` (for image data), ``denoising.png`` (noisy / denoised / clean, when
    ``X_noisy`` and ``X_denoised`` are given for image data), ``filters.png`` (the first layer's
    weights, ``filters``, for image data), and for generative models ``samples.png``,
    ``interpolation.png`` and ``manifold.png`` (decodings over a 2-D latent plane);
    ``prior.png`` (2-D codes over ``prior_samples``), ``samples_by_class.png``
    (``class_samples = (rows, names)``, one figure row of generated images per class) and
    ``code_histogram.png`` (``code_histogram=True``, for sparse codes).
    """
    out_dir = Path(out_dir)
    return [
        save_figure(fig, out_dir / f"{name}.png") for name, fig in run_figures(**inputs).items()
    ]


# -- Display objects (scikit-learn's style: from_estimator, plot(ax=...), figure_, ax_) ---------


class _Display:
    """Base of the displays: ``plot(ax=None)`` draws (into ``ax`` when given, else a new
    matplotlib ``Figure``) and sets ``figure_`` and ``ax_``; ``from_estimator`` computes what
    to draw from a fitted model, then plots."""

    figure_: Any
    ax_: Any

    def _done(self, fig, ax):
        self.figure_ = fig
        self.ax_ = ax if ax is not None else (fig.axes[0] if fig.axes else None)
        return self

    def savefig(self, path: str | Path, dpi: int = 110) -> Path:
        """Write the figure as PNG (atomically)."""
        return save_figure(self.figure_, path, dpi)


class LatentSpaceDisplay(_Display):
    """Codes as a 2-D map coloured by label (the first two principal components of wider codes).

    Examples
    --------
    >>> LatentSpaceDisplay.from_estimator(model, X_test, y_test, ax=ax)  # doctest: +SKIP
    """

    def __init__(self, codes, y=None, label_names=None):
        self.codes, self.y, self.label_names = np.asarray(codes), y, label_names

    @classmethod
    def from_estimator(cls, estimator, X, y=None, *, label_names=None, ax=None):
        return cls(estimator.transform(X), y, label_names).plot(ax=ax)

    def plot(self, ax=None):
        return self._done(plot_latent(self.codes, self.y, self.label_names, ax=ax), ax)


class ReconstructionDisplay(_Display):
    """The first ``n`` rows (top) over their reconstructions (bottom), as images."""

    def __init__(self, X, X_hat, image_shape, n: int = 10):
        self.X, self.X_hat, self.image_shape, self.n = X, X_hat, image_shape, n

    @classmethod
    def from_estimator(cls, estimator, X, y=None, *, n: int = 10, image_shape=None, ax=None):
        shape = image_shape or getattr(estimator, "input_shape_", None)
        if shape is None:
            raise ValueError("ReconstructionDisplay needs image data: give image_shape=(C, H, W)")
        X = np.asarray(X)[:n]
        supervised = aekit_tags(estimator).reconstruct_needs_labels
        X_hat = estimator.reconstruct(X, np.asarray(y)[:n]) if supervised else (
            estimator.reconstruct(X))  # fmt: skip
        return cls(X, X_hat, shape, n).plot(ax=ax)

    def plot(self, ax=None):
        fig = plot_reconstructions(self.X, self.X_hat, self.image_shape, self.n, ax=ax)
        return self._done(fig, ax)


class LearningCurveDisplay(_Display):
    """Training and validation losses per epoch (one panel per stage without ``ax``)."""

    def __init__(self, history):
        self.history = list(history)

    @classmethod
    def from_estimator(cls, estimator, *, ax=None):
        return cls(estimator.history_).plot(ax=ax)

    def plot(self, ax=None):
        return self._done(plot_learning_curves(self.history, ax=ax), ax)


class SamplesDisplay(_Display):
    """Rows generated by a generative model (``sample``), on a square grid of images."""

    def __init__(self, samples, image_shape):
        self.samples, self.image_shape = np.asarray(samples), image_shape

    @classmethod
    def from_estimator(cls, estimator, n: int = 64, *, random_state=0, image_shape=None, ax=None):
        shape = image_shape or getattr(estimator, "input_shape_", None)
        if shape is None:
            raise ValueError("SamplesDisplay needs image data: give image_shape=(C, H, W)")
        return cls(estimator.sample(n, random_state=random_state), shape).plot(ax=ax)

    def plot(self, ax=None):
        return self._done(plot_image_grid(self.samples, self.image_shape, ax=ax), ax)


class PriorDisplay(_Display):
    """2-D codes over samples of an adversarial autoencoder's prior."""

    def __init__(self, codes, prior_samples, y=None, label_names=None):
        self.codes, self.prior_samples = np.asarray(codes), np.asarray(prior_samples)
        self.y, self.label_names = y, label_names

    @classmethod
    def from_estimator(cls, estimator, X, y=None, *, label_names=None, n_prior: int = 5000,
                       ax=None):  # fmt: skip
        prior = estimator.sample_prior(n_prior, random_state=0)
        return cls(estimator.transform(X), prior, y, label_names).plot(ax=ax)

    def plot(self, ax=None):
        fig = plot_codes_over_prior(self.codes, self.prior_samples, self.y, self.label_names,
                                    ax=ax)  # fmt: skip
        return self._done(fig, ax)


class DenoisingDisplay(_Display):
    """Corrupted rows, the denoising model's output, and the clean rows, as images."""

    def __init__(self, X_noisy, X_denoised, X, image_shape, n: int = 10):
        self.X_noisy, self.X_denoised, self.X = X_noisy, X_denoised, X
        self.image_shape, self.n = image_shape, n

    @classmethod
    def from_estimator(cls, estimator, X, *, n: int = 10, random_state=0, image_shape=None,
                       ax=None):  # fmt: skip
        shape = image_shape or getattr(estimator, "input_shape_", None)
        if shape is None:
            raise ValueError("DenoisingDisplay needs image data: give image_shape=(C, H, W)")
        X = np.asarray(X)[:n]
        noisy = estimator.corrupt(X, random_state=random_state)
        return cls(noisy, estimator.denoise(noisy), X, shape, n).plot(ax=ax)

    def plot(self, ax=None):
        fig = plot_denoising(self.X_noisy, self.X_denoised, self.X, self.image_shape, self.n,
                             ax=ax)  # fmt: skip
        return self._done(fig, ax)
