"""Your own network: a convolutional autoencoder for Fashion-MNIST from ``nets.py``.

Trains ``aekit.Autoencoder(encoder=ConvEncoder, decoder=ConvDecoder, latent_dim=16)`` (the
networks in ``nets.py``, plain PyTorch modules) on Fashion-MNIST and compares its test
reconstruction error, per pixel, with PCA and with aekit's built-in MLP autoencoder at the same
code size. It then saves the model to ``--out`` and loads it in a fresh Python process with
``aekit.load(out, trust_code=True)``, checking that the loaded model's codes equal the
in-process ones exactly.

Usage (from the repository root, or anywhere with aekit installed)::

    python examples/fashion_conv/train.py --quick              # 10,000 rows, 3 epochs: ~2 min
    python examples/fashion_conv/train.py                      # 20,000 rows, 5 epochs
    python examples/fashion_conv/train.py --train-rows 60000 --epochs 20 --threads 2

Fashion-MNIST is read from the usual places (``/usr/share/datasets/fashion-mnist``,
``~/.cache/aekit/fashion-mnist``, ``$AEKIT_DATA``) or downloaded once (see
``aekit.datasets``). Results go to stdout; exit status 1 if the fresh process disagrees.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.decomposition import PCA

import aekit
from aekit.datasets import load_dataset

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # `nets` importable however this script is started
from nets import ConvDecoder, ConvEncoder  # noqa: E402

#: (train rows, test rows, epochs) of each mode; --train-rows, --test-rows, --epochs override.
MODES = {"full": (20_000, None, 5), "quick": (10_000, None, 3), "smoke": (2_000, 1_000, 1)}

#: The fresh process: load with trust_code (it imports nets), encode, save the codes.
LOAD_AND_ENCODE = """\
import sys
import numpy as np
import torch
torch.set_num_threads(int(sys.argv[4]))
import aekit
model = aekit.load(sys.argv[1], trust_code=True)
np.save(sys.argv[3], model.transform(np.load(sys.argv[2])))
"""


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = p.add_mutually_exclusive_group()
    for name, what in (
        ("quick", "10,000 training rows, 3 epochs (~2 minutes on 2 CPU cores)"),
        ("smoke", "2,000 training rows, 1,000 test rows, 1 epoch: does it run"),
    ):
        mode.add_argument(f"--{name}", action="store_const", dest="mode", const=name, help=what)
    p.add_argument("--epochs", type=int)
    p.add_argument("--train-rows", type=int, help="the first N of the 60,000 training images")
    p.add_argument("--test-rows", type=int, help="the first N of the 10,000 test images (all)")
    p.add_argument("--latent", type=int, default=16, help="code size of all three models")
    p.add_argument("--channels", default="32,64", help="feature maps of the conv layers")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--device", default="cpu", help='"cpu", "cuda", "auto", ...')
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/fashion_conv", help="folder the conv model is saved to")
    p.set_defaults(mode="full")
    args = p.parse_args(argv)
    train_rows, test_rows, epochs = MODES[args.mode]
    args.train_rows = args.train_rows or train_rows
    args.test_rows = args.test_rows or test_rows
    args.epochs = args.epochs or epochs
    return args


def per_pixel_errors(X: np.ndarray, R: np.ndarray) -> tuple[float, float]:
    """Mean squared error and binary cross-entropy per pixel of reconstructions ``R`` of ``X``
    (pixels in [0, 1]). ``R`` is clipped to [1e-7, 1 - 1e-7] for the cross-entropy: PCA's
    reconstructions leave [0, 1], and a sigmoid output in float32 can round to exactly 0 or 1."""
    X, R = X.astype(np.float64), R.astype(np.float64)
    mse = np.mean((X - R) ** 2)
    P = np.clip(R, 1e-7, 1 - 1e-7)
    bce = -np.mean(X * np.log(P) + (1 - X) * np.log1p(-P))
    return float(mse), float(bce)


def n_parameters(model) -> int:
    return sum(p.numel() for p in model.module_.parameters())


def codes_in_a_fresh_process(out: Path, X: np.ndarray, threads: int) -> np.ndarray:
    """``aekit.load(out, trust_code=True).transform(X)`` in a new Python process, with this
    folder on its path so that the recorded ``nets:ConvEncoder`` imports."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), env.get("PYTHONPATH")) if p)
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "X.npy", X)
        done = subprocess.run(
            [sys.executable, "-c", LOAD_AND_ENCODE, str(out), str(Path(tmp) / "X.npy"),
             str(Path(tmp) / "Z.npy"), str(threads)],
            env=env, cwd=HERE, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"the fresh process failed:\n{done.stderr}")
        return np.load(Path(tmp) / "Z.npy")


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    data = load_dataset("fashion-mnist")  # flat rows in [0, 1], image_shape (1, 28, 28)
    X = data.X_train[: args.train_rows]
    X_test = data.X_test[: args.test_rows]
    print(f"Fashion-MNIST: {len(X)} training rows, {len(X_test)} test rows, image shape "
          f"{data.image_shape}; {args.epochs} epochs, code size {args.latent}, "
          f"{args.threads} thread(s), device {args.device}")  # fmt: skip

    common = dict(latent_dim=args.latent, loss="bce", max_epochs=args.epochs,
                  batch_size=args.batch_size, lr=args.lr, validation_fraction=0,
                  random_state=args.seed, device=args.device)  # fmt: skip
    channels = [int(c) for c in args.channels.split(",")]
    # The classes themselves; "nets:ConvEncoder" (an import path) works as well. aekit passes
    # input_shape and out_features / in_features; encoder_kwargs gives the rest (saved as JSON).
    conv = aekit.Autoencoder(
        encoder=ConvEncoder, encoder_kwargs={"channels": channels},
        decoder=ConvDecoder, decoder_kwargs={"channels": channels},
        input_shape=data.image_shape, **common,
    )  # fmt: skip
    mlp = aekit.Autoencoder(hidden=(256, 128), **common)

    rows = []
    t = time.perf_counter()
    pca = PCA(args.latent, random_state=args.seed).fit(X)
    R = pca.inverse_transform(pca.transform(X_test))
    rows.append(("PCA", pca.components_.size + pca.mean_.size, time.perf_counter() - t, R))
    for name, model in (("MLP autoencoder 784-256-128", mlp), ("conv autoencoder (nets.py)", conv)):
        t = time.perf_counter()
        model.fit(X)
        seconds = time.perf_counter() - t
        rows.append((name, n_parameters(model), seconds, model.reconstruct(X_test)))

    print(f"\ntest reconstruction error per pixel, code size {args.latent}")
    print(f"{'model':<30} {'parameters':>10} {'fit s':>7} {'MSE':>8} {'BCE':>7}")
    for name, params, seconds, R in rows:
        mse, bce = per_pixel_errors(X_test, R)
        print(f"{name:<30} {params:>10,} {seconds:>7.1f} {mse:>8.4f} {bce:>7.4f}")

    out = Path(args.out)
    conv.save(out)
    codes = conv.transform(X_test)
    t = time.perf_counter()
    fresh = codes_in_a_fresh_process(out, X_test, args.threads)
    same = fresh.shape == codes.shape and np.array_equal(fresh, codes)
    print(f"\nsaved to {out}; a fresh process loaded it with aekit.load(out, trust_code=True) "
          f"in {time.perf_counter() - t:.1f} s")  # fmt: skip
    if not same:
        diff = np.abs(fresh - codes).max() if fresh.shape == codes.shape else "shape"
        print(f"fresh-process check: FAILED, its transform differs (max difference {diff})")
        return 1
    print(f"fresh-process check: passed, transform identical ({codes.shape[0]} x "
          f"{codes.shape[1]} codes, bit for bit)")  # fmt: skip
    print(f"total {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
