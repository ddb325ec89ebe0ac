"""The run report (issue 7): sections by model kind, a self-contained page that a real browser
renders without errors, and the comparison of runs."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import numpy as np
import pytest

from aekit.cli import main

# model kind -> (extra train arguments, figures its report must hold, figures it must not)
KINDS = {
    "ae": ([], {"reconstructions"}, {"samples", "prior", "denoising", "code_histogram"}),
    "sparse": ([], {"reconstructions", "code_histogram"}, {"samples"}),
    "denoising": ([], {"denoising", "filters"}, {"samples"}),
    "contractive": ([], {"reconstructions"}, {"filters", "samples"}),
    "stacked": (
        ["--set", "pretrain_epochs=1"],
        {"filters", "reconstructions"},
        {"samples", "code_histogram"},
    ),
    "stacked-classifier": (
        ["--set", "pretrain_epochs=1"],
        set(),
        {"reconstructions", "code_histogram"},
    ),
    "vae": ([], {"samples", "manifold", "interpolation"}, {"prior"}),
    "aae": (["--prior", "mixture"], {"prior", "samples", "manifold", "interpolation"}, set()),
    "aae-cluster": (["--n-clusters", "4"], {"samples_by_class"}, {"manifold", "interpolation"}),
    "aae-semi": (["--labeled", "100"], {"samples_by_class", "samples"}, {"manifold", "prior"}),
}
COMMON = {"learning_curves", "latent"}


def _figures(page: str) -> set[str]:
    return set(re.findall(r'<figure id="fig-([a-z_]+)">', page))


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """One tiny run of every kind on digits (2-D codes, 2 epochs) and its report."""
    root = tmp_path_factory.mktemp("reports")
    pages = {}
    for kind, (extra, _, _) in KINDS.items():
        run = root / kind
        argv = ["train", kind, "--data", "digits", "--latent", "2", "--hidden", "16", "--epochs",
                "2", "--seed", "0", "-q", "--no-plots", "--out", str(run), *extra]  # fmt: skip
        assert main(argv) == 0, kind
        assert main(["report", str(run), "--trust-rows", "100", "--ll-samples", "20"]) == 0, kind
        pages[kind] = (run, (run / "report.html").read_text())
    return pages


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_kind_gets_the_sections_that_fit_it(kind, reports):
    run, page = reports[kind]
    _, must, must_not = KINDS[kind]
    figures = _figures(page)
    assert COMMON | must <= figures, (kind, sorted(figures))
    assert not (must_not & figures), (kind, sorted(must_not & figures))
    assert '<table id="metrics"' in page and "PCA-2" in page
    for section in ("Summary", "Metrics on the test rows", "Figures", "Parameters"):
        assert f"<h2>{section}" in page
    # self-contained: every image is inline, nothing is fetched
    assert not re.search(r'(src|href)="(?!data:)', page)
    assert "http://" not in page and "https://" not in page
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"model", "pca", "raw"} <= set(metrics)


def test_the_metrics_table_holds_the_models_numbers(reports):
    run, page = reports["vae"]
    m = json.loads((run / "metrics.json").read_text())
    assert f"{m['model']['knn5_accuracy']:.4g}" in page
    assert "log_likelihood_nats_per_sample" in page


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


_CHECK = """<script>
window.__errors = [];
window.addEventListener("error", e => window.__errors.push(String(e.message || e.type)), true);
const _err = console.error;
console.error = (...a) => { window.__errors.push(a.join(" ")); _err(...a); };
window.addEventListener("load", () => {
  const imgs = Array.from(document.images);
  const out = {images: imgs.length,
               decoded: imgs.filter(i => i.complete && i.naturalWidth > 0).length,
               metrics: !!document.getElementById("metrics"), errors: window.__errors};
  const pre = document.createElement("pre");
  pre.id = "aekit-check";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def test_the_report_renders_in_a_real_browser(reports, tmp_path):
    """Headless Chromium (Debian's package; never downloaded) loads the report with no network:
    every image decodes (non-zero natural width), the metrics table is there, and the page
    logs no error. In CI (AEKIT_CI=1, set by .ci/run, which installs chromium) a missing browser
    is a failure."""
    browser = _chromium()
    if browser is None:
        if os.environ.get("AEKIT_CI"):
            pytest.fail("chromium is not installed, and .ci/run should have installed it")
        pytest.skip("no chromium here (apt-get install chromium); CI runs this test")
    _, page = reports["aae"]
    probe = tmp_path / "report.html"
    probe.write_text(page.replace("<head>", "<head>" + _CHECK, 1))
    result = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-background-networking",
         "--disable-gpu", "--no-first-run", "--disable-extensions",
         f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000",
         "--dump-dom", probe.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    found = re.search(r'<pre id="aekit-check">(.*?)</pre>', result.stdout)
    assert found, (result.returncode, result.stderr[-2000:])
    check = json.loads(found.group(1).replace("&quot;", '"'))
    assert check["images"] == len(_figures(page)) >= 6
    assert check["decoded"] == check["images"], check
    assert check["metrics"] and check["errors"] == [], check


def test_compare_runs_side_by_side(reports, tmp_path, capsys):
    runs = [str(reports[k][0]) for k in ("ae", "vae", "aae")]
    capsys.readouterr()
    assert main(["compare", *runs, "--html", str(tmp_path / "cmp.html")]) == 0
    out = capsys.readouterr().out
    assert "Autoencoder" in out and "VAE" in out and "AdversarialAutoencoder" in out
    assert "elbo_nats_per_sample" in out and "prior_mmd2" in out
    page = (tmp_path / "cmp.html").read_text()
    assert '<table id="metrics"' in page and page.count("<th>") == 4
    assert main(["compare", str(tmp_path / "nothing")]) == 2
    assert "aekit evaluate" in capsys.readouterr().err


def test_display_objects_draw_into_a_users_axes(digits, fitted_ae, tmp_path):
    """scikit-learn's Display style: from_estimator computes and plots; with ax= the figure is
    the user's; savefig writes a PNG."""
    from matplotlib.figure import Figure

    from aekit import AdversarialAutoencoder, DenoisingAutoencoder
    from aekit.plotting import (
        DenoisingDisplay,
        LatentSpaceDisplay,
        LearningCurveDisplay,
        PriorDisplay,
        ReconstructionDisplay,
        SamplesDisplay,
    )

    X, Xt, yt = digits.X_train[:300], digits.X_test, digits.y_test
    fig = Figure()
    axes = fig.subplots(2, 3).ravel()
    kw = dict(hidden=(16,), max_epochs=2, random_state=0, input_shape=(1, 8, 8))
    aae = AdversarialAutoencoder(prior="mixture", latent_dim=2, **kw).fit(X)
    dae = DenoisingAutoencoder(latent_dim=4, **kw).fit(X)
    shown = [
        LatentSpaceDisplay.from_estimator(fitted_ae, Xt, yt, ax=axes[0]),
        ReconstructionDisplay.from_estimator(fitted_ae, Xt, image_shape=(1, 8, 8), ax=axes[1]),
        LearningCurveDisplay.from_estimator(fitted_ae, ax=axes[2]),
        SamplesDisplay.from_estimator(aae, 16, ax=axes[3]),
        PriorDisplay.from_estimator(aae, Xt, yt, ax=axes[4]),
        DenoisingDisplay.from_estimator(dae, Xt, ax=axes[5]),
    ]
    for display, ax in zip(shown, axes, strict=True):
        assert display.figure_ is fig and display.ax_ is ax
    assert len(axes[0].collections) == 10  # one scatter per digit class
    alone = LatentSpaceDisplay.from_estimator(fitted_ae, Xt)  # its own figure
    assert alone.figure_ is not fig and alone.ax_ in alone.figure_.axes
    path = alone.savefig(tmp_path / "latent.png")
    assert path.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="image_shape"):
        ReconstructionDisplay.from_estimator(fitted_ae.__class__(max_epochs=1).fit(
            np.random.default_rng(0).random((20, 5), dtype=np.float32)), Xt[:, :5])  # fmt: skip
