"""A plain PyTorch VAE / IWAE, the reference for aekit's VAE at the same compute budget.

The one-stochastic-layer model of the IWAE paper (Burda et al. 2015): 784-200-200 tanh encoder to
a 50-D Gaussian posterior, 50-200-200-784 tanh decoder with Bernoulli outputs, dynamic
binarisation, Adam. Written from the paper, sharing no code with aekit, so that the two can be
compared. It trains for ``--seconds`` of wall time (one torch thread), then reports the
importance-sampled log-likelihood estimate (``--ll-samples`` samples per test image, on the first
``--test-rows`` rows of the statically binarised test set used by ``docs/experiments.md``) and the
active units, as JSON on stdout.

    PYTHONPATH=src python benchmarks/vae_reference.py --k 1 --seconds 300
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from aekit.datasets import load_dataset


class IWAE(nn.Module):
    def __init__(self, d=784, h=200, z=50):
        super().__init__()
        self.z = z
        self.enc = nn.Sequential(nn.Linear(d, h), nn.Tanh(), nn.Linear(h, h), nn.Tanh(),
                                 nn.Linear(h, 2 * z))  # fmt: skip
        self.dec = nn.Sequential(nn.Linear(z, h), nn.Tanh(), nn.Linear(h, h), nn.Tanh(),
                                 nn.Linear(h, d))  # fmt: skip

    def log_w(self, x, k):
        mu, logvar = self.enc(x).chunk(2, dim=1)
        std = (0.5 * logvar).exp()
        z = mu + std * torch.randn(k, *mu.shape)
        log_q = (-0.5 * ((z - mu) / std) ** 2 - 0.5 * logvar - 0.5 * math.log(2 * math.pi)).sum(-1)
        log_p_z = (-0.5 * z**2 - 0.5 * math.log(2 * math.pi)).sum(-1)
        logits = self.dec(z)
        log_p_x = -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits),
                                                      reduction="none").sum(-1)  # fmt: skip
        return log_p_x + log_p_z - log_q  # (k, n)

    def bound(self, x, k):
        return (torch.logsumexp(self.log_w(x, k), 0) - math.log(k)).mean()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--k", type=int, default=1, help="importance samples in training")
    parser.add_argument("--seconds", type=float, default=300.0, help="training wall time")
    parser.add_argument("--ll-samples", type=int, default=5000)
    parser.add_argument("--test-rows", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    data = load_dataset("fashion-mnist")
    X = torch.from_numpy(data.X_train)
    rng = np.random.default_rng(1)  # the fixed binarisation of the test rows
    test = data.X_test[: args.test_rows]
    X_test = torch.from_numpy((rng.random(test.shape, dtype=np.float32) < test).astype(np.float32))
    model = IWAE()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    start, epochs = time.perf_counter(), 0
    while time.perf_counter() - start < args.seconds:
        for idx in torch.randperm(len(X)).split(100):
            x = torch.bernoulli(X[idx])  # dynamic binarisation
            loss = -model.bound(x, args.k)
            opt.zero_grad()
            loss.backward()
            opt.step()
        epochs += 1
    train_seconds = time.perf_counter() - start
    with torch.no_grad():
        ll = []
        for x in X_test.split(50):
            lw = torch.cat([model.log_w(x, 500) for _ in range(args.ll_samples // 500)])
            ll.append(torch.logsumexp(lw, 0) - math.log(len(lw)))
        mu = model.enc(X_test).chunk(2, dim=1)[0]
    result = {
        "model": f"reference {'VAE' if args.k == 1 else f'IWAE k={args.k}'}",
        "epochs": epochs,
        "train_seconds": round(train_seconds, 1),
        "test_rows": len(X_test),
        "log_likelihood": float(torch.cat(ll).mean()),
        "ll_samples": args.ll_samples,
        "active_units": int((mu.var(0) > 0.01).sum()),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
