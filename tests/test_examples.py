"""The scripts in examples/ keep working: each one's ``--smoke`` mode (tiny data, one or two
epochs) runs as a real process, as a user would start it, and prints its key result.

Measured on 2 shared CPU cores, busy with other work: fashion_conv --smoke about 35 s (13 s of it
the fresh process that reloads the model: importing torch), sequence_anomaly --smoke about 15 s.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]


def _run(script: Path, *args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(script), "--smoke", "--threads", "1", *map(str, args)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def test_fashion_conv_trains_saves_and_reloads_in_a_fresh_process(tmp_path):
    from aekit.datasets import read_data
    from aekit.errors import DataError

    try:
        read_data("fashion-mnist", download=False)
    except DataError as e:
        pytest.skip(f"Fashion-MNIST is not installed (the example would download it): {e}")
    done = _run(EXAMPLES / "fashion_conv" / "train.py", "--out", tmp_path / "model")
    assert done.returncode == 0, done.stdout + done.stderr
    for model in ("PCA", "MLP autoencoder", "conv autoencoder (nets.py)"):
        row = re.search(rf"^{re.escape(model)}.*?([\d.]+)\s+([\d.]+)$", done.stdout, re.M)
        assert row, f"no result row for {model}:\n{done.stdout}"
        mse, bce = map(float, row.groups())
        assert 0 < mse < 0.25 and 0 < bce < 1, row.group(0)
    assert "fresh-process check: passed" in done.stdout, done.stdout
    assert (tmp_path / "model" / "config.json").is_file()


def test_sequence_anomaly_reports_aucs_for_every_fault_kind():
    """A run check (--smoke: 2 epochs, near chance); the measured AUCs, and the claim that
    the autoencoders beat IsolationForest, are in examples/README.md at full size."""
    done = _run(EXAMPLES / "sequence_anomaly" / "detect.py")
    assert done.returncode == 0, done.stdout + done.stderr
    for kind in ("spike", "level_shift", "frozen", "frequency", "all"):
        row = re.search(rf"^{kind}((?:\s+[01]\.\d{{3}}){{4}})$", done.stdout, re.M)  # 4 AUCs
        assert row, f"no AUC row for {kind}:\n{done.stdout}"
