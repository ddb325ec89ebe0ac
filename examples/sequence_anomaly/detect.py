"""Your own data: anomaly detection in multivariate sensor windows with a sequence autoencoder.

Synthetic sensor data stands in for yours: windows of C=6 channels over T=64 steps, each channel
a mixture of sines with its own frequency, phase offset and amplitude, all driven by one shared
phase and speed per window (the machine's state), plus noise. Faults are injected into a
labelled fraction of the TEST windows only, in one channel each:

* ``spike``: one or two single-step spikes;
* ``level_shift``: a constant offset from some step on;
* ``frozen``: the sensor sticks at its value from some step on;
* ``frequency``: the channel runs at a different frequency, out of step with the others.

An autoencoder trained on normal windows only reconstructs normal windows well: its
reconstruction error, ``-model.score_samples(X)``, is the anomaly score (higher: more anomalous).
Contenders, all trained on the same normal training windows and scored on the same test windows:

* ``aekit.Autoencoder`` with the user networks of ``nets.py`` (1-D conv by default, ``--net
  gru`` for GRUs), which receive windows shaped ``(n, T, C)``: the model is given 2-D rows
  (``X.reshape(n, T * C)``) and ``input_shape=(T, C)``;
* aekit's built-in MLP autoencoder on the same rows;
* scikit-learn's IsolationForest on the flattened windows.

Reported: ROC-AUC (``sklearn.metrics.roc_auc_score``) of each score, per fault kind (that kind's
windows against the normal test windows) and over all test windows.

Usage::

    python examples/sequence_anomaly/detect.py --quick         # under 2 minutes on 2 CPU cores
    python examples/sequence_anomaly/detect.py                 # 10,000 training windows
    python examples/sequence_anomaly/detect.py --net gru --threads 2
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score

import aekit

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # `nets` importable however this script is started
import nets  # noqa: E402

FAULTS = ("spike", "level_shift", "frozen", "frequency")

#: (training windows, test windows, epochs) of each mode; the options override them.
MODES = {"full": (10_000, 4_000, 30), "quick": (4_000, 2_000, 15), "smoke": (1_000, 500, 2)}

#: The sensors: fixed properties of the simulated machine (the same for every window).
N_CHANNELS, LENGTH = 6, 64
FREQUENCY = np.array([2.0, 3.0, 2.5, 4.0, 1.5, 3.5])  # cycles per window at speed 1
OFFSET = np.linspace(0, np.pi, N_CHANNELS)  # phase of each channel relative to the machine's
AMPLITUDE = np.array([1.0, 0.8, 1.2, 0.6, 1.0, 0.9])
HARMONIC = np.array([0.3, 0.0, 0.5, 0.0, 0.2, 0.4])  # weight of the second harmonic
NOISE = 0.2
PHASE_JITTER = 0.15  # radians, per channel and window: the sensors are not perfectly in step


def sensor_windows(n: int, rng: np.random.Generator, frequency_factor=None) -> np.ndarray:
    """``n`` normal windows ``(n, T, C)``: per window a random phase, speed (0.8 to 1.2) and
    gain (0.8 to 1.2) drive all channels, each with a little phase jitter of its own.
    ``frequency_factor`` ``(n, C)`` multiplies each channel's frequency (1 for normal ones)."""
    t = np.arange(LENGTH)[None, :, None] / LENGTH
    phase = rng.uniform(0, 2 * np.pi, (n, 1, 1))
    speed = rng.uniform(0.8, 1.2, (n, 1, 1))
    gain = rng.uniform(0.8, 1.2, (n, 1, 1))
    jitter = PHASE_JITTER * rng.standard_normal((n, 1, N_CHANNELS))
    factor = 1.0 if frequency_factor is None else frequency_factor[:, None, :]
    angle = 2 * np.pi * FREQUENCY * factor * speed * t + phase + OFFSET + jitter
    x = gain * AMPLITUDE * (np.sin(angle) + HARMONIC * np.sin(2 * angle))
    return (x + NOISE * rng.standard_normal(x.shape)).astype(np.float32)


def test_windows(n: int, anomaly_fraction: float, rng: np.random.Generator):
    """``n`` test windows ``(n, T, C)``, a fraction with one fault each (the kinds in turn),
    and the kind of each window (``"normal"`` or one of :data:`FAULTS`)."""
    kinds = np.array(["normal"] * n, dtype=object)
    n_bad = round(anomaly_fraction * n)
    bad = rng.choice(n, n_bad, replace=False)
    kinds[bad] = [FAULTS[i % len(FAULTS)] for i in range(n_bad)]
    channel = rng.integers(0, N_CHANNELS, n)  # the faulty channel of each faulty window
    factor = np.ones((n, N_CHANNELS))
    slow_or_fast = rng.choice([0.8, 1.25], n) * rng.uniform(0.95, 1.05, n)
    is_freq = kinds == "frequency"
    factor[is_freq, channel[is_freq]] = slow_or_fast[is_freq]
    X = sensor_windows(n, rng, factor)
    for i in np.flatnonzero((kinds != "normal") & ~is_freq):
        c, x = channel[i], X[i]
        start = rng.integers(LENGTH // 2, 3 * LENGTH // 4)
        if kinds[i] == "spike":
            steps = rng.choice(LENGTH, rng.integers(1, 3), replace=False)
            x[steps, c] += rng.choice([-1, 1], len(steps)) * rng.uniform(1.0, 1.5, len(steps))
        elif kinds[i] == "level_shift":
            x[start:, c] += rng.choice([-1, 1]) * rng.uniform(0.3, 0.6)
        elif kinds[i] == "frozen":
            x[start:, c] = x[start, c]
    return X, kinds


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = p.add_mutually_exclusive_group()
    for name, what in (
        ("quick", "4,000 training and 2,000 test windows, 15 epochs (under 2 minutes)"),
        ("smoke", "1,000 training and 500 test windows, 2 epochs: does it run"),
    ):
        mode.add_argument(f"--{name}", action="store_const", dest="mode", const=name, help=what)
    p.add_argument("--train-windows", type=int)
    p.add_argument("--test-windows", type=int)
    p.add_argument("--epochs", type=int)
    p.add_argument("--anomaly-fraction", type=float, default=0.2, help="of the test windows")
    p.add_argument("--net", choices=("conv", "gru"), default="conv", help="the nets.py pair")
    p.add_argument("--latent", type=int, default=8, help="code size of both autoencoders")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--device", default="cpu", help='"cpu", "cuda", "auto", ...')
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(mode="full")
    args = p.parse_args(argv)
    train, test, epochs = MODES[args.mode]
    args.train_windows = args.train_windows or train
    args.test_windows = args.test_windows or test
    args.epochs = args.epochs or epochs
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    train = sensor_windows(args.train_windows, rng)  # normal operation only
    test, kinds = test_windows(args.test_windows, args.anomaly_fraction, rng)
    # The windows as 2-D rows (what IsolationForest takes too); input_shape=(T, C) tells aekit
    # how to show them to the networks. (3-D (n, T, C) arrays work as well with a user encoder
    # or architecture="sequence"; elsewhere 3-D input means gray images (n, H, W).)
    X, X_test = train.reshape(len(train), -1), test.reshape(len(test), -1)
    print(f"{len(X)} normal training windows, {len(X_test)} test windows "
          f"({(kinds != 'normal').sum()} with faults), T={LENGTH}, C={N_CHANNELS}; "
          f"{args.epochs} epochs, code size {args.latent}, {args.threads} thread(s)")  # fmt: skip

    common = dict(latent_dim=args.latent, loss="mse", max_epochs=args.epochs,
                  batch_size=args.batch_size, lr=args.lr, validation_fraction=0,
                  random_state=args.seed, device=args.device)  # fmt: skip
    Encoder, Decoder = {"conv": (nets.ConvEncoder, nets.ConvDecoder),
                        "gru": (nets.GRUEncoder, nets.GRUDecoder)}[args.net]  # fmt: skip
    contenders = {
        f"{args.net} AE (nets.py)": aekit.Autoencoder(
            encoder=Encoder, decoder=Decoder, input_shape=(LENGTH, N_CHANNELS), **common
        ),
        "sequence AE (built-in)": aekit.Autoencoder(
            architecture="sequence",
            hidden=(32, 64),
            kernel_size=5,
            input_shape=(LENGTH, N_CHANNELS),
            **common,
        ),
        "MLP AE (built-in)": aekit.Autoencoder(hidden=(128, 64), **common),
        "IsolationForest": IsolationForest(n_estimators=200, random_state=args.seed),
    }
    scores, seconds = {}, {}
    for name, model in contenders.items():
        t = time.perf_counter()
        model.fit(X)
        scores[name] = -model.score_samples(X_test)  # higher: more anomalous
        seconds[name] = time.perf_counter() - t

    normal = kinds == "normal"
    print("\nROC-AUC of the anomaly score (fault kind against the normal test windows)")
    print(f"{'faults':<14}" + "".join(f"{name:>24}" for name in contenders))
    for kind in (*FAULTS, "all"):
        rows = np.ones_like(normal) if kind == "all" else normal | (kinds == kind)
        y = ~normal[rows]
        aucs = [roc_auc_score(y, scores[name][rows]) for name in contenders]
        print(f"{kind:<14}" + "".join(f"{auc:>24.3f}" for auc in aucs))
    print(f"{'fit+score s':<14}" + "".join(f"{seconds[name]:>24.1f}" for name in contenders))
    mine, builtin = f"{args.net} AE (nets.py)", "sequence AE (built-in)"
    if np.array_equal(scores[mine], scores[builtin]):
        print(
            f"({mine} and {builtin} are one network: nets.py writes out, layer for layer, what "
            'architecture="sequence" builds, and the same seed gives both the same weights.)'
        )
    print(f"total {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
