"""Training speed of aekit against a plain PyTorch loop (samples per second, CPU).

What it measures
    One training epoch of a 784-400-20-400-784 autoencoder (ReLU, BCE on logits, Adam lr 1e-3,
    batch 128) over the first ``--rows`` rows of Fashion-MNIST, done two ways:

    * aekit: ``Autoencoder(latent_dim=20, hidden=(400,), loss="bce", max_epochs=1,
      validation_fraction=0, device="cpu")``, one ``partial_fit(X)`` call per measured epoch. The
      first call (building the model, optimiser and trainer) is a warm-up and is not timed; each
      timed call is the whole ``partial_fit`` (input checks included), as a user pays for it.
    * plain: the PyTorch examples' style (``vae/main.py``): a per-sample ``Dataset`` whose
      ``__getitem__`` returns one row, ``DataLoader(batch_size, shuffle=True)``, the same layers as
      ``nn.Sequential``, ``binary_cross_entropy_with_logits(reduction="sum") / batch``,
      ``zero_grad/backward/step``. One untimed warm-up epoch too.

    The two are interleaved (aekit epoch, plain epoch, aekit, plain, ...) for ``--repeats``
    rounds, so a noisy neighbour on a shared machine slows both alike. Both run with the same torch
    thread count (``--threads``, default 1). The parameter counts and the mean per-sample loss of
    every epoch are printed, to check both do the same work and both learn.

    Without Fashion-MNIST (``/usr/share/datasets/fashion-mnist``, ``~/.cache/aekit`` or
    ``$AEKIT_DATA``), it falls back to scikit-learn's 8x8 digits upsampled (nearest neighbour) to
    28x28, and says so.

How to run
    make bench                                   # = python benchmarks/train_speed.py
    PYTHONPATH=src python benchmarks/train_speed.py --rows 20000 --repeats 5 [--json]

How to read it
    ``ratio`` = aekit samples/s / plain samples/s: the ratio of the medians, and the median of the
    ratios of each interleaved pair (the more robust one on a noisy machine). aekit batches by
    indexing in-memory arrays instead of collating rows one by one, so it must be at least as fast
    as the plain loop: ratio >= 1. A ratio below 1 is a performance bug in ``aekit.training``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset

import aekit
from aekit.datasets import load_dataset
from aekit.errors import DataError

LATENT, HIDDEN, FEATURES = 20, 400, 784


def load_rows(rows: int) -> tuple[np.ndarray, str]:
    """The first ``rows`` training rows (float32 in [0, 1], 784 features) and their source."""
    try:
        X = load_dataset("fashion-mnist", download=False).X_train
        source = "fashion-mnist"
    except (DataError, OSError):
        from sklearn.datasets import load_digits

        digits = load_digits().images.astype(np.float32) / 16.0  # (1797, 8, 8)
        up = (np.arange(28) * 8) // 28  # nearest-neighbour 8 -> 28
        X = digits[:, up][:, :, up].reshape(len(digits), FEATURES)
        X = np.tile(X, (-(-rows // len(X)), 1))  # repeat to reach --rows
        source = "FALLBACK: sklearn digits 8x8 upsampled to 28x28 (fashion-mnist not found)"
    return np.ascontiguousarray(X[:rows], dtype=np.float32), source


class RowDataset(Dataset):
    """The PyTorch examples' way: one row tensor per ``__getitem__``."""

    def __init__(self, X: np.ndarray):
        self.X = torch.from_numpy(X)

    def __len__(self) -> int:
        return len(self.X)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.X[i]


class PlainLoop:
    def __init__(self, X: np.ndarray, batch_size: int, seed: int):
        torch.manual_seed(seed)
        self.model = nn.Sequential(
            nn.Linear(FEATURES, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, LATENT),
            nn.Linear(LATENT, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, FEATURES),
        )  # fmt: skip
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.loader = DataLoader(RowDataset(X), batch_size=batch_size, shuffle=True)

    def epoch(self) -> float:
        """One epoch; returns the mean per-sample loss."""
        self.model.train()
        total, seen = 0.0, 0
        for x in self.loader:
            self.optimizer.zero_grad()
            logits = self.model(x)
            loss = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / len(x)
            loss.backward()
            self.optimizer.step()
            total += loss.item() * len(x)
            seen += len(x)
        return total / seen


def timed(fn) -> tuple[float, float]:
    start = time.perf_counter()
    loss = fn()
    return time.perf_counter() - start, loss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=20000, help="rows per epoch (default 20000)")
    parser.add_argument("--batch-size", type=int, default=128, help="default 128")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="default 0")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    X, source = load_rows(args.rows)
    n = len(X)
    ae = aekit.Autoencoder(
        latent_dim=LATENT, hidden=(HIDDEN,), loss="bce", batch_size=args.batch_size, max_epochs=1,
        validation_fraction=0, random_state=args.seed, device="cpu",
    )  # fmt: skip
    plain = PlainLoop(X, args.batch_size, args.seed)

    def aekit_epoch() -> float:
        ae.partial_fit(X)
        return ae.history_[-1]["loss"]

    # Warm-up (untimed): builds aekit's model and trainer, first pass through both code paths.
    warm = {"aekit": aekit_epoch(), "plain": plain.epoch()}
    params = {
        "aekit": sum(p.numel() for p in ae.module_.parameters()),
        "plain": sum(p.numel() for p in plain.model.parameters()),
    }
    runs = []
    for r in range(args.repeats):
        a_s, a_loss = timed(aekit_epoch)
        p_s, p_loss = timed(plain.epoch)
        runs.append(
            {"round": r + 1, "aekit_sps": n / a_s, "plain_sps": n / p_s, "ratio": p_s / a_s,
             "aekit_loss": a_loss, "plain_loss": p_loss}
        )  # fmt: skip
    med_a = statistics.median(x["aekit_sps"] for x in runs)
    med_p = statistics.median(x["plain_sps"] for x in runs)
    summary = {
        "aekit_median_sps": med_a,
        "plain_median_sps": med_p,
        "ratio_of_medians": med_a / med_p,
        "median_of_pair_ratios": statistics.median(x["ratio"] for x in runs),
    }
    config = {
        "source": source, "rows": n, "batch_size": args.batch_size, "repeats": args.repeats,
        "threads": torch.get_num_threads(), "torch": torch.__version__,
        "aekit": getattr(aekit, "__version__", "?"),
    }  # fmt: skip
    if args.json:
        out = {"config": config, "params": params, "warmup_loss": warm, "runs": runs}
        print(json.dumps({**out, "summary": summary}, indent=2))
        return

    print(f"data: {source}, {n} rows x {X.shape[1]} features")
    print(
        f"batch {args.batch_size}, {config['threads']} torch thread(s), torch {config['torch']}, "
        f"aekit {config['aekit']}"
    )
    print(f"parameters: aekit {params['aekit']:,}  plain {params['plain']:,}")
    print(f"warm-up loss (per sample): aekit {warm['aekit']:.2f}  plain {warm['plain']:.2f}")
    print(f"{'round':>5} {'aekit samples/s':>16} {'plain samples/s':>16} {'ratio':>6}"
          f" {'aekit loss':>11} {'plain loss':>11}")  # fmt: skip
    for x in runs:
        print(
            f"{x['round']:>5} {x['aekit_sps']:>16,.0f} {x['plain_sps']:>16,.0f} "
            f"{x['ratio']:>6.2f} {x['aekit_loss']:>11.2f} {x['plain_loss']:>11.2f}"
        )
    print(f"{'median':>5} {med_a:>16,.0f} {med_p:>16,.0f} {summary['ratio_of_medians']:>6.2f}")
    pair = summary["median_of_pair_ratios"]
    verdict = "OK (aekit at least as fast)" if pair >= 1 else "SLOWER than the plain loop"
    print(f"ratio aekit/plain: {summary['ratio_of_medians']:.3f} of medians, "
          f"{pair:.3f} median of pairs -> {verdict}")  # fmt: skip


if __name__ == "__main__":
    main()
