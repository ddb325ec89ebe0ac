"""Cost of each regulariser per epoch, relative to the plain autoencoder of the same size.

What it measures
    One training epoch (``partial_fit`` over ``--rows`` rows of Fashion-MNIST, batch 128, one
    torch thread, CPU) of the deep autoencoder of Hinton and Salakhutdinov's MNIST experiment,
    784-1000-500-250-30 (ReLU, binary cross-entropy), as: the plain ``Autoencoder``, the sparse
    autoencoder (L1, and KL with a sigmoid code), the denoising autoencoder (masking noise), and the
    contractive autoencoder with Hutchinson's estimator (one projection) and with the exact
    batched Jacobian. Each model is warmed up with one untimed epoch; then the models take turns,
    one epoch each, for ``--repeats`` rounds (a noisy neighbour slows all alike), and the median
    epoch time of each is divided by the plain model's.

How to run
    PYTHONPATH=src python benchmarks/regularizers.py [--rows 2000] [--repeats 3] [--json]

How to read it
    ``ratio`` = seconds per epoch / plain seconds per epoch. The Hutchinson contractive penalty
    must cost less than 2x a plain epoch. The exact Jacobian's ratio grows with the code size: it
    differentiates ``latent_dim`` output units (in one batched pass, not one autograd call each).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

import aekit
from train_speed import load_rows

HIDDEN, LATENT = (1000, 500, 250), 30

MODELS = {
    "plain": (aekit.Autoencoder, {}),
    "sparse l1": (aekit.SparseAutoencoder, {"penalty": "l1"}),
    "sparse kl": (aekit.SparseAutoencoder, {"penalty": "kl"}),
    "denoising masking": (aekit.DenoisingAutoencoder, {"noise": "masking"}),
    "contractive hutchinson": (aekit.ContractiveAutoencoder, {"jacobian": "hutchinson"}),
    "contractive exact": (aekit.ContractiveAutoencoder, {"jacobian": "exact"}),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2000, help="rows per epoch (default 2000)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds (default 3)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--only", nargs="*", help="model names to run (plain always runs)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    X, source = load_rows(args.rows)

    names = [n for n in MODELS if n == "plain" or not args.only or n in args.only]
    models = {}
    for name in names:
        cls, extra = MODELS[name]
        models[name] = cls(
            hidden=HIDDEN, latent_dim=LATENT, loss="bce", batch_size=128, max_epochs=1,
            validation_fraction=0, random_state=0, device="cpu", **extra,
        )  # fmt: skip
        models[name].partial_fit(X)  # warm-up, untimed
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(args.repeats):
        for name, model in models.items():
            start = time.perf_counter()
            model.partial_fit(X)
            seconds[name].append(time.perf_counter() - start)
    plain = statistics.median(seconds["plain"])
    rows = [
        {
            "model": name,
            "seconds_per_epoch": statistics.median(seconds[name]),
            "ratio": statistics.median(seconds[name]) / plain,
            "runs": seconds[name],
            "last_loss": models[name].history_[-1]["loss"],
        }
        for name in names
    ]
    if args.json:
        config = {"source": source, "rows": len(X), "threads": torch.get_num_threads(),
                  "hidden": HIDDEN, "latent_dim": LATENT, "torch": torch.__version__}  # fmt: skip
        print(json.dumps({"config": config, "results": rows}, indent=2))
        return
    network = "-".join(map(str, (784, *HIDDEN, LATENT)))
    print(f"data: {source}, {len(X)} rows; network {network}; {torch.get_num_threads()} "
          f"thread(s), median of {args.repeats} interleaved epochs")  # fmt: skip
    print(f"{'model':<24} {'s/epoch':>8} {'ratio':>6} {'loss':>9}")
    for r in rows:
        print(f"{r['model']:<24} {r['seconds_per_epoch']:>8.2f} {r['ratio']:>6.2f} "
              f"{r['last_loss']:>9.2f}")  # fmt: skip
    hutch = next((r for r in rows if r["model"] == "contractive hutchinson"), None)
    if hutch is not None:
        verdict = "OK" if hutch["ratio"] < 2 else "TOO SLOW"
        print(f"Hutchinson contractive penalty: {hutch['ratio']:.2f}x a plain epoch "
              f"(must be < 2x) -> {verdict}")  # fmt: skip


if __name__ == "__main__":
    main()
