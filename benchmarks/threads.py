"""Torch CPU threads for training: 1 against 2 (or more), on an idle machine and with a busy one.

What it measures
    Training epochs of ``benchmarks/train_speed.py``'s autoencoder (784-400-20-400-784, BCE on
    logits, ``aekit.Autoencoder``, one ``partial_fit`` per epoch) over the first ``--rows`` rows
    of Fashion-MNIST, at each batch size of ``--batch``, with each thread count of ``--threads``
    set explicitly (``aekit.runtime.set_threads``; ``auto``: nothing set, aekit's default for
    torch's default count), interleaved round by round, in two conditions:

    * ``idle``: nothing started by this script competes (other users of the machine may: the
      1-minute load average at the start of each condition is printed);
    * ``busy``: ``--busy`` processes (default 1) running ``while True: pass`` hold cores for the
      whole condition, as another job on a shared machine would.

    Reports samples per second (median over ``--repeats`` rounds after one warm-up epoch) and
    the ratio of each thread count's rate to one thread's, and the training work per batch in
    MFLOP (6 x parameters x batch: forward 2, backward 4 multiply-adds per weight and row).

How to run
    PYTHONPATH=src python benchmarks/threads.py                     # batch 128,1024; 1,2 threads
    PYTHONPATH=src python benchmarks/threads.py --hidden 1000,500,250 --latent 30 --batch 128
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import torch

import aekit
from aekit.datasets import load_dataset
from aekit.runtime import set_threads

BUSY = "while True: pass"


def load_rows(rows: int) -> np.ndarray:
    X = load_dataset("fashion-mnist", download=False).X_train
    return np.ascontiguousarray(X[:rows], dtype=np.float32)


TORCH_DEFAULT = torch.get_num_threads()


def use(t: int | str) -> None:
    """``t`` threads, fixed with aekit's own setting (aekit trains with them, whatever its
    default); ``"auto"``: torch's default count and aekit's choice for training."""
    if t == "auto":
        set_threads(None)
        torch.set_num_threads(TORCH_DEFAULT)
    else:
        set_threads(int(t))


def measure(X, batch, hidden, latent, threads, repeats) -> dict:
    models = {}
    for t in threads:
        models[t] = aekit.Autoencoder(
            latent_dim=latent, hidden=hidden, loss="bce", batch_size=batch, max_epochs=1,
            validation_fraction=0, random_state=0, device="cpu",
        )  # fmt: skip
        use(t)
        models[t].partial_fit(X)  # warm-up
    rates: dict = {t: [] for t in threads}
    for _ in range(repeats):
        for t in threads:
            use(t)
            start = time.perf_counter()
            models[t].partial_fit(X)
            rates[t].append(len(X) / (time.perf_counter() - start))
    params = sum(p.numel() for p in models[threads[0]].module_.parameters())
    return {"mflop_per_batch": 6 * params * batch / 1e6,
            **{t: statistics.median(r) for t, r in rates.items()}}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=5000, help="rows per epoch (default 5000)")
    parser.add_argument("--batch", default="128,1024", help="default 128,1024")
    parser.add_argument(
        "--threads", default="1,2,auto", help="thread counts; auto: aekit's default (1,2,auto)"
    )
    parser.add_argument("--hidden", default="400", help="encoder widths (default 400)")
    parser.add_argument("--latent", type=int, default=20, help="default 20")
    parser.add_argument("--busy", type=int, default=1, help="busy processes in 'busy' (default 1)")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds (default 3)")
    parser.add_argument("--conditions", default="idle,busy", help="default idle,busy")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    threads = [t if t == "auto" else int(t) for t in args.threads.split(",")]
    hidden = tuple(int(h) for h in args.hidden.split(","))
    X = load_rows(args.rows)
    results = []
    for condition in args.conditions.split(","):
        load = os.getloadavg()[0]
        busy = []
        if condition == "busy":
            busy = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(args.busy)]
            time.sleep(1.0)
        try:
            for batch in (int(b) for b in args.batch.split(",")):
                r = measure(X, batch, hidden, args.latent, threads, args.repeats)
                row = {"condition": condition, "load1_before": load, "batch": batch, **r}
                results.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
        finally:
            for p in busy:
                p.kill()
                p.wait()
    if args.json:
        cpus = len(os.sched_getaffinity(0))
        out = {"torch": torch.__version__, "cpus": cpus, "rows": len(X), "hidden": hidden}
        print(json.dumps({**out, "results": results}, indent=2))
        return 0
    sizes = "-".join(map(str, (784, *hidden, args.latent)))
    print(f"torch {torch.__version__} (default {TORCH_DEFAULT} threads), "
          f"{len(os.sched_getaffinity(0))} CPUs, {len(X)} rows, {sizes} autoencoder; "
          "samples/s, medians")  # fmt: skip
    head = f"{'condition':<9} {'load1':>5} {'batch':>5} {'MFLOP/batch':>11}"
    head += "".join(f" {f'{t} thr' if t != 'auto' else 'auto':>9}" for t in threads)
    head += "".join(f" {f'{t}/1':>6}" for t in threads[1:])
    print(head)
    for r in results:
        line = f"{r['condition']:<9} {r['load1_before']:>5.2f} {r['batch']:>5} "
        line += f"{r['mflop_per_batch']:>11,.0f}"
        line += "".join(f" {r[t]:>9,.0f}" for t in threads)
        line += "".join(f" {r[t] / r[threads[0]]:>6.2f}" for t in threads[1:])
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
