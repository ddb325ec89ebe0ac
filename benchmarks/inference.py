"""Inference speed of aekit's chunk rule against fixed chunk sizes (rows per second).

What it measures
    ``transform`` and ``score_samples`` of a 784-400-20 autoencoder (``Autoencoder(latent_dim=20,
    hidden=(400,), loss="bce")``) and ``log_likelihood`` of a VAE of the same shape
    (``likelihood="bernoulli"``) with ``k`` = 5 and 50 importance samples, on the Fashion-MNIST
    test set (10,000 x 784, ``--rows`` to use fewer), each with four chunk sizes:

    * ``aekit``: the rule (:func:`aekit.estimator.inference_chunk`): rows from the device's
      activation budget and one row's cost (k samples' for ``log_likelihood``);
    * ``1024``, ``4096``: fixed chunks of rows, aekit's 4096-row rule before issue 14 included
      (``--chunks`` picks others);
    * ``all``: every row in one chunk.

    The fixed sizes replace only the rows per chunk: ``log_likelihood`` still sends a chunk's
    samples through the decoder in passes that fit the device's activation budget (all 50
    samples of 10,000 rows at once would hold about 6 GB), as aekit does. The weights are
    untrained (``max_epochs=0``): the speed does not depend on them.

    Every (operation, chunk) pair is timed ``--repeats`` times, interleaved (each round runs
    every pair once, the chunk sizes in a rotated order), so that a noisy neighbour on a shared
    machine slows all alike; one untimed warm-up round first. Each call is the whole public
    method (input checks included), as a user pays for it. Torch runs ``--threads`` threads
    (default 1). Without Fashion-MNIST (``/usr/share/datasets/fashion-mnist``,
    ``~/.cache/aekit`` or ``$AEKIT_DATA``), it falls back to scikit-learn's 8x8 digits upsampled
    to 28x28 and tiled to 10,000 rows, and says so.

How to run
    make bench-inference                     # = python benchmarks/inference.py (about 3 minutes)
    PYTHONPATH=src python benchmarks/inference.py --repeats 5 [--rows 10000] [--json]
    PYTHONPATH=src python benchmarks/inference.py --device cuda   # on a GPU machine
    PYTHONPATH=src python benchmarks/inference.py --rows 65536 --chunks 256,1024,4096,16384,all \
        --ops transform,score_samples      # where the CPU saturates (the test set repeated)

How to read it
    Rows per second, the median over the rounds, and ``aekit/x``: aekit's median over the fixed
    size's (above 1: aekit's chunk is faster). ``rows`` is the chunk aekit chose for each
    operation. On the CPU, throughput peaks once a pass fills the caches and falls beyond, so
    aekit's bounded chunk should be within noise of the best fixed size and ahead of ``all``;
    on a GPU, larger chunks help until the device is busy. ``max |diff|`` compares each fixed
    size's output with aekit's: rounding (1e-7 relative) for transform and score_samples; for
    log_likelihood (the mean over the rows, nats) the draws follow the chunks, so the estimates
    differ by their Monte Carlo error. On CUDA the peak memory allocated in each call is printed
    too (``peak MB``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import time

import numpy as np
import torch

import aekit
import aekit.estimator
import aekit.models.vae
from aekit.datasets import load_dataset
from aekit.errors import DataError

LATENT, HIDDEN, FEATURES = 20, 400, 784
OPERATIONS = ("transform", "score_samples", "log_likelihood_k5", "log_likelihood_k50")


def load_rows(rows: int) -> tuple[np.ndarray, str]:
    """The first ``rows`` test rows (float32 in [0, 1], 784 features; the set repeated to make
    more) and their source."""
    try:
        X = load_dataset("fashion-mnist", download=False).X_test
        source = "fashion-mnist test set"
    except (DataError, OSError):
        from sklearn.datasets import load_digits

        digits = load_digits().images.astype(np.float32) / 16.0  # (1797, 8, 8)
        up = (np.arange(28) * 8) // 28  # nearest-neighbour 8 -> 28
        X = digits[:, up][:, :, up].reshape(len(digits), FEATURES)
        source = "FALLBACK: sklearn digits 8x8 upsampled to 28x28 (fashion-mnist not found)"
    if rows > len(X):
        source += f" repeated {-(-rows // len(X))} times"
        X = np.tile(X, (-(-rows // len(X)), 1))
    return np.ascontiguousarray(X[:rows], dtype=np.float32), source


@contextlib.contextmanager
def chunk_rows(chunk, n: int, chosen: list):
    """Within: aekit's chunk rule, recording the rows it picks in ``chosen``, or a fixed number
    of rows (``"all"``: ``n``) with the rule's activation budget."""
    rule = aekit.estimator.inference_chunk

    def fixed(device, bytes_per_row, width):
        rows, budget = rule(device, bytes_per_row, width)
        rows = rows if chunk == "aekit" else n if chunk == "all" else int(chunk)
        chosen.append(rows)
        return rows, budget

    aekit.estimator.inference_chunk = aekit.models.vae.inference_chunk = fixed
    try:
        yield
    finally:
        aekit.estimator.inference_chunk = aekit.models.vae.inference_chunk = rule


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10000, help="test rows (default 10000)")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:1, ...")
    parser.add_argument("--chunks", default="1024,4096,all",
                        help="fixed rows per chunk to compare with aekit's rule, 'all' for the "
                        "whole set at once (default 1024,4096,all)")  # fmt: skip
    parser.add_argument("--ops", default=",".join(OPERATIONS),
                        help=f"which of {','.join(OPERATIONS)} (default: all four)")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    chunks = ("aekit", *(c if c == "all" else int(c) for c in args.chunks.split(",") if c))
    names = [op for op in args.ops.split(",") if op]
    if unknown := set(names) - set(OPERATIONS):
        parser.error(f"--ops: unknown {sorted(unknown)}; choose from {', '.join(OPERATIONS)}")
    X, source = load_rows(args.rows)
    n = len(X)
    common = dict(latent_dim=LATENT, hidden=(HIDDEN,), max_epochs=0, random_state=0,
                  device=args.device)  # fmt: skip
    ae = aekit.Autoencoder(loss="bce", **common).fit(X)
    vae = aekit.VAE(likelihood="bernoulli", **common).fit(X)
    device = ae.device_
    ops = {
        "transform": ae.transform,
        "score_samples": ae.score_samples,
        "log_likelihood_k5": lambda X: vae.log_likelihood(X, n_samples=5),
        "log_likelihood_k50": lambda X: vae.log_likelihood(X, n_samples=50),
    }
    ops = {op: ops[op] for op in names}
    times = {(op, c): [] for op in ops for c in chunks}
    peaks = dict.fromkeys(times, 0)
    outputs, rows = {}, {}
    for r in range(-1, args.repeats):  # round -1: the warm-up, untimed
        order = chunks[r % len(chunks) :] + chunks[: r % len(chunks)]
        for op, fn in ops.items():
            for c in order:
                chosen = []
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                    torch.cuda.reset_peak_memory_stats(device)
                with chunk_rows(c, n, chosen):
                    start = time.perf_counter()
                    out = fn(X)  # numpy: the device work is done
                    seconds = time.perf_counter() - start
                if device.type == "cuda":
                    peak = torch.cuda.max_memory_allocated(device)
                    peaks[op, c] = max(peaks[op, c], peak)
                if r < 0:
                    outputs[op, c], rows[op, c] = out, chosen[-1]
                else:
                    times[op, c].append(seconds)

    results = []
    for op in ops:
        aekit_rate = n / statistics.median(times[op, "aekit"])
        for c in chunks:
            rate = n / statistics.median(times[op, c])
            diff = float(np.max(np.abs(outputs[op, c] - outputs[op, "aekit"])))
            results.append({
                "operation": op, "chunk": str(c), "rows": rows[op, c], "rows_per_s": rate,
                "aekit_over_this": aekit_rate / rate, "max_abs_diff": diff,
                "mean_output": float(np.mean(outputs[op, c])),
                "peak_mb": peaks[op, c] / 1e6 if device.type == "cuda" else None,
                "seconds": times[op, c],
            })  # fmt: skip
    setup = {
        "data": source, "rows": n, "device": str(device), "threads": args.threads,
        "repeats": args.repeats, "torch": torch.__version__, "aekit": aekit.__version__,
        "budget_bytes": aekit.estimator.inference_budget(device),
    }  # fmt: skip
    if device.type == "cuda":
        setup["gpu"] = torch.cuda.get_device_name(device)
    if args.json:
        print(json.dumps({**setup, "results": results}, indent=2))
        return
    print(", ".join(f"{k}: {v}" for k, v in setup.items()))
    head = f"{'operation':<20} {'chunk':>6} {'rows':>6} {'rows/s':>10} {'aekit/x':>8}"
    head += f" {'max |diff|':>11}"
    print(head + ("  peak MB" if device.type == "cuda" else ""))
    for row in results:
        line = (f"{row['operation']:<20} {row['chunk']:>6} {row['rows']:>6} "
                f"{row['rows_per_s']:>10,.0f} {row['aekit_over_this']:>8.2f} "
                f"{row['max_abs_diff']:>11.2e}")  # fmt: skip
        if row["peak_mb"] is not None:
            line += f" {row['peak_mb']:>8,.0f}"
        print(line)


if __name__ == "__main__":
    main()
