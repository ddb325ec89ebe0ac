"""``benchmarks/quality.py`` (issue 16's quality table) runs: its ``--smoke`` mode, on the rows
that take the least time (compress through the CLI, pretrain, semi), in a subprocess, writes its
Markdown table and prints a JSON summary with every field the table needs, marked as no
measurement. Measured: about 15 s on one thread. Needs Fashion-MNIST installed (skipped when no
folder that ``load_dataset`` searches has it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROWS = ("compress", "pretrain", "semi")


def fashion_mnist_installed() -> bool:
    from aekit.datasets import load_dataset
    from aekit.errors import DataError

    try:
        load_dataset("fashion-mnist", download=False)
    except (DataError, OSError):
        return False
    return True


@pytest.mark.slow
@pytest.mark.subprocess
def test_quality_smoke_json_and_markdown(tmp_path):
    if not fashion_mnist_installed():
        pytest.skip("Fashion-MNIST is not installed (e.g. /usr/share/datasets/fashion-mnist, "
                    "apt-get install dataset-fashion-mnist); the benchmark needs it")  # fmt: skip
    out = tmp_path / "quality.md"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    argv = [sys.executable, str(ROOT / "benchmarks" / "quality.py"), "--smoke", "--json",
            "--threads", "1", "--rows", ",".join(ROWS), "--out", str(out)]  # fmt: skip
    done = subprocess.run(argv, env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    text = done.stdout
    summary = json.loads(text[text.index("\n{") + 1 :])  # the JSON after the row lines
    assert summary["smoke"] is True and summary["note"] == "smoke: not a measurement"
    assert summary["rows"] == list(ROWS) and list(summary["results"]) == list(ROWS)
    for key in ("aekit_version", "commit", "torch_threads", "cpu", "device"):
        assert key in summary["machine"]
    assert summary["machine"]["torch_threads"] == 1 and summary["machine"]["device"] == "cpu"
    for name, r in summary["results"].items():
        for key in ("use", "measure", "aekit", "baseline", "goal", "today", "met", "train_s",
                    "eval_s"):  # fmt: skip
            assert key in r, (name, key)
        assert isinstance(r["met"], bool) and r["train_s"] >= 0 and r["eval_s"] >= 0
    compress = summary["results"]["compress"]
    assert compress["detail"]["pca30_sq_error"] > 0 and compress["aekit"] > 0
    assert 0 <= summary["results"]["semi"]["aekit"] <= 1
    md = out.read_text()
    assert "smoke: not a measurement" in md
    assert md.count("\n| ") == 1 + len(ROWS)  # the table's header, then a line a row
    assert not list(tmp_path.glob(".quality.md.*"))  # written atomically: no temporary left
    # --from-json: the same page from the saved output, trains nothing; a later file's row wins
    (tmp_path / "run.txt").write_text(text)
    merged = tmp_path / "merged.md"
    saved = str(tmp_path / "run.txt")
    again = [sys.executable, str(ROOT / "benchmarks" / "quality.py"), "--from-json", saved, saved,
             "--out", str(merged)]  # fmt: skip
    done = subprocess.run(again, env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    page = merged.read_text()
    assert page.count("\n| ") == 1 + len(ROWS) and "smoke: not a measurement" in page
    assert "Not measured yet: look2d, cluster, generate." in page
    assert page.count("PYTHONPATH=src python benchmarks/quality.py --smoke") == 2
