"""The tutorials in docs/tutorials/ run: each script's ``--smoke`` mode (a few epochs), in this
process, and prints the lines its docstring promises. The numbers of a full run are in
docs/tutorials/README.md; here only their form and range are checked (a smoke run is too short
to learn much). Measured: 3-5 s each on one thread."""

from __future__ import annotations

import re
import runpy
import sys
from pathlib import Path

import pytest

TUTORIALS = Path(__file__).resolve().parents[1] / "docs" / "tutorials"
NUMBER = r"(-?\d+\.\d+)"


@pytest.fixture
def run(monkeypatch, capsys, tmp_path):
    def run(name: str) -> str:
        monkeypatch.syspath_prepend(str(TUTORIALS))
        monkeypatch.setattr(sys, "argv", [name, "--smoke", "--figures", str(tmp_path)])
        sys.modules.pop("_common", None)
        runpy.run_path(str(TUTORIALS / name), run_name="__main__")
        return capsys.readouterr().out

    return run


def test_every_tutorial_is_tested():
    scripts = {p.name for p in TUTORIALS.glob("*.py") if not p.name.startswith("_")}
    assert scripts == {"compress.py", "denoise.py", "pretrain.py", "generate.py", "anomalies.py"}


def test_compress(run, tmp_path):
    out = run("compress.py")
    for name in ("autoencoder", "PCA"):
        row = re.search(rf"^{name} +squared error per image +{NUMBER} +5-NN accuracy in 2-D "
                        rf"{NUMBER}$", out, re.M)  # fmt: skip
        assert row, out
        assert 0 < float(row[1]) < 20 and 0 <= float(row[2]) <= 1
    assert (tmp_path / "compress_map.png").stat().st_size > 0


def test_denoise(run, tmp_path):
    out = run("denoise.py")
    errors = {}
    for name in ("noisy input", "plain autoencoder", "denoising autoencoder"):
        row = re.search(rf"^{name} +{NUMBER}$", out, re.M)
        assert row, out
        errors[name] = float(row[1])
    assert errors["denoising autoencoder"] < errors["noisy input"]
    assert (tmp_path / "denoise.png").stat().st_size > 0


def test_pretrain(run):
    out = run("pretrain.py")
    for name in ("trained on the labels alone", "pre-trained, then fine-tuned"):
        row = re.search(rf"^{name} +test accuracy {NUMBER}$", out, re.M)
        assert row, out
        assert 0.1 <= float(row[1]) <= 1  # better than chance (0.1) after a smoke run


def test_generate(run, tmp_path):
    out = run("generate.py")
    row = re.search(rf"^test log p\(x\) estimate {NUMBER} nats per digit$", out, re.M)
    assert row and float(row[1]) < 0, out
    assert re.search(r"^16 new digits of shape \(16, 64\), values in \[0\.\d\d, [01]\.\d\d\]$",
                     out, re.M), out  # fmt: skip
    assert (tmp_path / "generate.png").stat().st_size > 0


def test_anomalies(run):
    out = run("anomalies.py")
    row = re.search(rf"^ROC-AUC of the reconstruction error {NUMBER}$", out, re.M)
    assert row and 0.5 < float(row[1]) <= 1, out  # above chance even after a smoke run
    assert re.search(r"^flagged: \d+% of the digits 5-9, \d+% of the test digits 0-4$", out, re.M)
