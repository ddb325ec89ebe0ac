"""Peak anonymous memory (RssAnon) and time of aekit's data paths, against a reference.

What it measures
    Each case runs in its own subprocess; this process polls ``/proc/PID/status`` every 10 ms and
    keeps the largest ``RssAnon``: the process's own memory (heap, numpy arrays, torch tensors).
    Pages of a memory-mapped file count in RSS (``RssFile``) but are not copies, so RSS or VmHWM
    would blame a memory map for the file it reads; RssAnon does not. The file-backed peak is
    printed too (``rss_file``), for completeness.

    * ``npy``: ``aekit train ae --data big.npy --epochs 1`` (the whole CLI path: loading, split,
      scaling, one epoch, test metrics; no plots) on a generated float32 ``.npy`` of
      ``--npy-gb`` GB (``rows x 128``), next to the file's size. The reference is the size of the
      file: a CLI that loads it whole needs at least that much anonymous memory.
    * ``csv``: ``aekit.datasets.read_data`` against ``pandas.read_csv`` on a generated
      ``--csv-rows x 100`` numeric CSV (with a header). The peak is reported above the process's
      RssAnon just before the call (imports excluded: both processes import pandas first, which
      aekit's reader uses and which costs about 40 MB and 0.5 s), and the ratios aekit / pandas
      of that peak, of the call's wall time and of its CPU time (all threads: pandas 3 reads a
      large file with several; aekit reads chunk by chunk, in one).
    * ``images``: ``aekit train ae --data FOLDER --image-size 32 --epochs 1`` on a generated
      folder of ``--images`` random JPEGs of mixed sizes (40..120 px a side, RGB, two classes),
      decoded by ``--workers`` DataLoader processes. The reference is the size the decoded
      float32 rows (3 x 32 x 32 each) would take in memory. The peak of the whole process tree
      (``tree_peak_anon_mb``: the workers too, whose copy-on-write pages shared with the parent
      are counted again) is reported next to the main process's; ``load_dataset_only`` is
      the data path alone (decoding, split, scaling), above the process's start.
    * ``vae``: ``VAE.log_likelihood(X, n_samples)`` on 64 rows of 784 features with a
      784-512-256-16 network (weights untrained: only the memory matters), and one epoch of IWAE
      training (``n_importance_samples=--iwae-k``) of the same network with batch 64.

How to run
    PYTHONPATH=src python benchmarks/memory.py                 # all cases, ~2 minutes on 2 cores
    PYTHONPATH=src python benchmarks/memory.py --only csv --csv-rows 200000
    PYTHONPATH=src python benchmarks/memory.py --npy-gb 2 --only npy
    PYTHONPATH=src python benchmarks/memory.py --only images --images 20000

    Files go to ``--workdir`` (default ``$TMPDIR/aekit-bench-memory``); they are kept between
    runs (generating them takes time) and can be deleted with ``--clean``.

How to read it
    ``peak_anon_mb`` is the peak RssAnon of the case's process in MB (10**6 bytes);
    ``above_start_mb`` subtracts what the process held before the measured call (only for the
    cases that report it). For ``npy`` the aim is a peak far below the file size (the data is
    memory-mapped, never copied whole); for ``csv`` a memory ratio to pandas below 1 (aekit
    keeps float32 rows and one chunk, pandas float64 columns and their pieces) and a time ratio
    of at most 2 (aekit counts the file's lines first, to size its array). On a machine shared
    with other jobs the wall times vary by 2x or more from run to run: compare the CPU times,
    and several runs. For ``images``: a peak that does not grow with the number of images
    (decoded a batch at a time into memory-mapped scratch files).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

MB = 1e6
SRC = str(Path(__file__).resolve().parent.parent / "src")


def _status(pid: int) -> dict[str, int]:
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("RssAnon", "RssFile", "RssShmem"):
                    out[key] = int(value.split()[0]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return out


def _descendants(pid: int) -> list[int]:
    """The process's children, grandchildren, ... (DataLoader workers), from /proc."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/task/{p}/children") as f:
                kids = [int(k) for k in f.read().split()]
        except (FileNotFoundError, ProcessLookupError):
            kids = []
        out += kids
        todo += kids
    return out


def measure(cmd: list[str], env_extra: dict | None = None, tree: bool = False) -> dict:
    """Run ``cmd``; its peak RssAnon / RssFile, wall time and the JSON of its last stdout line;
    with ``tree``, also the peak of RssAnon summed over it and its descendants."""
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.update(env_extra or {})
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    peak_anon = peak_file = peak_tree = 0
    while proc.poll() is None:
        s = _status(proc.pid)
        peak_anon = max(peak_anon, s.get("RssAnon", 0))
        peak_file = max(peak_file, s.get("RssFile", 0) + s.get("RssShmem", 0))
        if tree:
            kids = sum(_status(k).get("RssAnon", 0) for k in _descendants(proc.pid))
            peak_tree = max(peak_tree, s.get("RssAnon", 0) + kids)
        time.sleep(0.01)
    wall = time.perf_counter() - start
    stdout, stderr = proc.communicate()
    result = {"peak_anon_mb": round(peak_anon / MB), "rss_file_mb": round(peak_file / MB),
              "wall_s": round(wall, 2), "rc": proc.returncode}  # fmt: skip
    if tree:
        result["tree_peak_anon_mb"] = round(peak_tree / MB)
    if proc.returncode != 0:
        result["error"] = (stderr or stdout).strip().splitlines()[-1:]
    try:  # the whole stdout (``aekit --json``), else its last line (the helper scripts)
        inner = json.loads(stdout)
    except ValueError:
        lines = [line for line in stdout.splitlines() if line.startswith("{")]
        inner = json.loads(lines[-1]) if lines else None
    if isinstance(inner, dict):
        if "start_anon" in inner:
            result["above_start_mb"] = round((peak_anon - inner.pop("start_anon")) / MB)
        result.update(inner)
    return result


# A child's helper: its own RssAnon, printed before the measured call.
_SELF_ANON = textwrap.dedent("""
    def self_anon():
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024
""")


def make_npy(path: Path, gb: float) -> Path:
    cols = 128
    rows = int(gb * 1e9 / (4 * cols))
    if path.exists() and np.load(path, mmap_mode="r").shape == (rows, cols):
        return path
    X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, cols))
    rng = np.random.default_rng(0)
    basis = rng.standard_normal((8, cols)).astype(np.float32)
    for start in range(0, rows, 100_000):  # low-rank data plus noise, written in chunks
        n = min(100_000, rows - start)
        Z = rng.standard_normal((n, 8), dtype=np.float32)
        X[start : start + n] = Z @ basis + 0.1 * rng.standard_normal((n, cols), dtype=np.float32)
    X.flush()
    del X
    return path


def make_csv(path: Path, rows: int, cols: int = 100) -> Path:
    if path.exists() and path.stat().st_size > 0:
        with open(path) as f:
            if sum(1 for _ in f) == rows + 1:
                return path
    rng = np.random.default_rng(0)
    with open(path, "w") as f:
        f.write(",".join(f"f{j}" for j in range(cols)) + "\n")
        for start in range(0, rows, 20_000):
            block = rng.standard_normal((min(20_000, rows - start), cols))
            np.savetxt(f, block, delimiter=",", fmt="%.6g")
    return path


def case_npy(work: Path, gb: float) -> dict:
    path = make_npy(work / "big.npy", gb)
    out = work / "run-npy"
    cmd = [sys.executable, "-m", "aekit", "train", "ae", "--data", str(path), "--epochs", "1",
           "--hidden", "64", "--latent", "8", "--batch-size", "512", "--threads", "2",
           "--no-plots", "--quiet", "--json", "--out", str(out), "--overwrite",
           "--checkpoint-seconds", "1e9"]  # fmt: skip
    r = measure(cmd)
    r["file_mb"] = round(path.stat().st_size / MB)
    r["peak_over_file"] = round(r["peak_anon_mb"] / r["file_mb"], 3)
    for key in ("run", "model", "data", "files", "final", "test", "stop_reason"):
        r.pop(key, None)
    return r


def make_images(folder: Path, n: int) -> Path:
    """``n`` random RGB JPEGs, 40..120 px a side (each side drawn on its own), in two class
    subfolders; kept when the folder already holds ``n``."""
    from PIL import Image

    if folder.exists() and sum(1 for _ in folder.glob("*/*.jpg")) == n:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        w, h = rng.integers(40, 121, 2)
        # Smooth blobs (upsampled noise) plus a little noise: JPEG-sized like photos, not noise.
        small = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
        im = Image.fromarray(small).resize((int(w), int(h)), Image.Resampling.BILINEAR)
        a = np.asarray(im).astype(np.int16) + rng.integers(-8, 9, (int(h), int(w), 3))
        sub = folder / f"class{i % 2}"
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(a.clip(0, 255).astype(np.uint8)).save(sub / f"{i:06d}.jpg", quality=90)
    return folder


def case_images(work: Path, n: int, workers: int) -> dict:
    t = time.perf_counter()
    folder = make_images(work / f"images-{n}", n)
    made = round(time.perf_counter() - t, 1)
    out = work / "run-images"
    cmd = [sys.executable, "-m", "aekit", "train", "ae", "--data", str(folder), "--image-size",
           "32", "--workers", str(workers), "--epochs", "1", "--hidden", "64", "--latent", "8",
           "--batch-size", "512", "--threads", "2", "--no-plots", "--quiet", "--json", "--out",
           str(out), "--overwrite", "--checkpoint-seconds", "1e9"]  # fmt: skip
    r = measure(cmd, tree=True)
    load = _SELF_ANON + textwrap.dedent(f"""
        import json, time
        import sklearn.model_selection, torch.utils.data  # imports excluded from the peak
        from aekit.datasets import load_dataset
        start = self_anon(); t = time.perf_counter()
        data = load_dataset({str(folder)!r}, image_size=32, workers={workers})
        print(json.dumps({{"start_anon": start, "call_s": round(time.perf_counter() - t, 2)}}))
    """)
    r["load_dataset_only"] = measure([sys.executable, "-c", load], tree=True)
    r["images"], r["workers"], r["generate_s"] = n, workers, made
    r["decoded_float32_mb"] = round(n * 3 * 32 * 32 * 4 / MB)
    r["peak_over_decoded"] = round(r["peak_anon_mb"] / max(1, r["decoded_float32_mb"]), 3)
    for key in ("run", "model", "data", "files", "final", "test", "stop_reason"):
        r.pop(key, None)
    return r


def case_csv(work: Path, rows: int) -> dict:
    path = make_csv(work / f"table-{rows}.csv", rows)
    code = _SELF_ANON + textwrap.dedent("""
        import json, time
        import pandas as pd
        {imports}
        start = self_anon(); t = time.perf_counter(); cpu = time.process_time()
        X = {call}
        print(json.dumps({{"start_anon": start, "call_s": round(time.perf_counter() - t, 2),
                            "call_cpu_s": round(time.process_time() - cpu, 2),
                            "shape": list(X.shape)}}))
    """)
    aekit = code.format(imports="from aekit.datasets import read_data",
                        call=f"read_data({str(path)!r}).X")  # fmt: skip
    pandas = code.format(imports="", call=f"pd.read_csv({str(path)!r})")
    out = {"file_mb": round(path.stat().st_size / MB),
           "aekit": measure([sys.executable, "-c", aekit]),
           "pandas": measure([sys.executable, "-c", pandas])}  # fmt: skip
    a, p = out["aekit"], out["pandas"]
    if "above_start_mb" in a and "above_start_mb" in p:
        out["ratio_above_start"] = round(a["above_start_mb"] / max(1, p["above_start_mb"]), 2)
        out["ratio_time"] = round(a["call_s"] / max(1e-3, p["call_s"]), 2)
        out["ratio_cpu"] = round(a["call_cpu_s"] / max(1e-3, p["call_cpu_s"]), 2)
    return out


def case_vae(n_samples: int, iwae_k: int) -> dict:
    common = _SELF_ANON + textwrap.dedent("""
        import json, time
        import numpy as np, torch
        torch.set_num_threads(2)
        from aekit import VAE
        X = np.random.default_rng(0).random((64, 784), dtype=np.float32)
    """)
    ll = common + textwrap.dedent(f"""
        vae = VAE(latent_dim=16, hidden=(512, 256), likelihood="bernoulli", max_epochs=0,
                  random_state=0).fit(X)
        start = self_anon(); t = time.perf_counter()
        v = vae.log_likelihood(X, n_samples={n_samples})
        print(json.dumps({{"start_anon": start, "call_s": round(time.perf_counter() - t, 2),
                          "value": v}}))
    """)
    train = common + textwrap.dedent(f"""
        start = self_anon(); t = time.perf_counter()
        try:
            VAE(latent_dim=16, hidden=(512, 256), likelihood="bernoulli", max_epochs=1,
                batch_size=64, validation_fraction=0, n_importance_samples={iwae_k},
                random_state=0).fit(X)
            outcome = "trained"
        except Exception as e:
            outcome = type(e).__name__ + ": " + str(e)
        print(json.dumps({{"start_anon": start, "call_s": round(time.perf_counter() - t, 2),
                          "outcome": outcome}}))
    """)
    return {
        f"log_likelihood_k{n_samples}": measure([sys.executable, "-c", ll]),
        f"iwae_train_k{iwae_k}": measure([sys.executable, "-c", train]),
    }


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--only", choices=["npy", "csv", "images", "vae"], action="append")
    p.add_argument("--npy-gb", type=float, default=1.0)
    p.add_argument("--csv-rows", type=int, default=200_000)
    p.add_argument("--images", type=int, default=20_000, help="images in the folder")
    p.add_argument("--workers", type=int, default=2, help="decoding processes (images)")
    p.add_argument("--ll-samples", type=int, default=5000)
    p.add_argument("--iwae-k", type=int, default=500)
    p.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "aekit-bench-memory"))
    p.add_argument("--clean", action="store_true", help="delete --workdir and exit")
    args = p.parse_args(argv)
    work = Path(args.workdir)
    if args.clean:
        shutil.rmtree(work, ignore_errors=True)
        return
    work.mkdir(parents=True, exist_ok=True)
    cases = args.only or ["npy", "csv", "images", "vae"]
    results = {}
    if "npy" in cases:
        results["npy"] = case_npy(work, args.npy_gb)
        print("npy:", json.dumps(results["npy"]), flush=True)
    if "csv" in cases:
        results["csv"] = case_csv(work, args.csv_rows)
        print("csv:", json.dumps(results["csv"]), flush=True)
    if "images" in cases:
        results["images"] = case_images(work, args.images, args.workers)
        print("images:", json.dumps(results["images"]), flush=True)
    if "vae" in cases:
        results["vae"] = case_vae(args.ll_samples, args.iwae_k)
        print("vae:", json.dumps(results["vae"]), flush=True)


if __name__ == "__main__":
    main()
