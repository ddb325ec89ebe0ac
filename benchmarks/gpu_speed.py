"""GPU training speed: aekit (eager, CUDA graphs, bf16) against plain PyTorch loops, one run.

What it measures
    Samples per second of training on full Fashion-MNIST (60,000 rows resident on the GPU),
    784-400-20 models, for the AE (BCE on logits), the VAE (Bernoulli) and the adversarial
    autoencoder (deterministic code, Gaussian prior, discriminator 20-256-256-1 with the R1
    penalty, three phases each with its own Adam), at batch 128 and 1024:

    * plain loops (as ``shared/bench/gpu_bench.py``): ``eager`` (Adam, foreach), ``fused``
      (``Adam(fused=True)``), ``graph`` (the fused step of every phase captured in one CUDA graph,
      replayed per batch: the launch-overhead floor);
    * aekit: ``eager`` (``cuda_graphs=False``), ``graphs`` (``cuda_graphs=True``), and both with
      ``precision="bf16"``.

    Each variant trains ``--epochs`` epochs after one warm-up epoch (not timed; for aekit, the
    first epoch of ``fit``, which holds the capture). Rates are medians over the timed epochs.
    The correctness pass prints every variant's mean training loss over its last epoch: the
    learning curves of aekit's graphs and bf16 must match eager training within noise.

How to run
    benchmarks/gpu.sh                          # the tests on the GPU, then this, < 5 minutes
    PYTHONPATH=src python benchmarks/gpu_speed.py [--epochs 2] [--batch 128,1024] [--json F]

How to read it
    ``aekit/graph``: aekit's best against the graph-captured plain loop (goal >= 0.7 at batch
    128, >= 0.8 at 1024); ``aekit/fused``: against the plain loop with fused Adam.
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

import aekit
from aekit.datasets import load_dataset

LATENT, HIDDEN = 20, 400


def sync() -> None:
    torch.cuda.synchronize()


def _mlp(*sizes: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(sizes):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def plain(X: torch.Tensor, model: str, batch: int, epochs: int, variant: str):
    """``(samples/s median, last epoch's mean loss)`` of a plain loop (see the module doc)."""
    dev = X.device
    torch.manual_seed(0)
    d = X.shape[1]
    enc = _mlp(d, HIDDEN, 2 * LATENT if model == "vae" else LATENT).to(dev)
    dec = _mlp(LATENT, HIDDEN, d).to(dev)
    disc = _mlp(LATENT, 256, 256, 1).to(dev) if model == "aae" else None
    fused = variant != "eager"
    opt_args = dict(lr=1e-3, fused=fused or None, capturable=variant == "graph")
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], **opt_args)
    if disc is not None:
        opt_d = torch.optim.Adam(disc.parameters(), betas=(0.5, 0.999), **opt_args)
        opt_g = torch.optim.Adam(enc.parameters(), betas=(0.5, 0.999), **opt_args)
    gen = torch.Generator(device=dev).manual_seed(1)

    def step(x):
        n = x.shape[0]
        h = enc(x)
        if model == "vae":
            mu, logvar = h.chunk(2, 1)
            eps = torch.randn(mu.shape, generator=gen, device=dev)
            z = mu + torch.exp(0.5 * logvar) * eps
            kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum()
        else:
            z, kl = h, 0.0
        loss = (F.binary_cross_entropy_with_logits(dec(z), x, reduction="sum") + kl) / n
        opt.zero_grad(set_to_none=False)
        loss.backward()
        opt.step()
        if disc is None:
            return loss
        with torch.no_grad():
            fake = enc(x)
        real = torch.randn(fake.shape, generator=gen, device=dev).requires_grad_(True)
        d_real = disc(real)
        d_loss = F.binary_cross_entropy_with_logits(
            d_real, torch.ones_like(d_real)
        ) + F.binary_cross_entropy_with_logits(disc(fake), torch.zeros_like(d_real))
        (g,) = torch.autograd.grad(d_real.sum(), real, create_graph=True)
        d_loss = d_loss + 0.5 * g.pow(2).sum(1).mean()
        opt_d.zero_grad(set_to_none=False)
        d_loss.backward()
        opt_d.step()
        out = disc(enc(x))
        g_loss = F.binary_cross_entropy_with_logits(out, torch.ones_like(out))
        opt_g.zero_grad(set_to_none=False)
        g_loss.backward()
        opt_g.step()
        return loss

    n = X.shape[0] // batch * batch
    static_x = torch.empty(batch, d, device=dev)
    graph = static_loss = None
    if variant == "graph":
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                static_x.copy_(X[:batch])
                step(static_x)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        graph.register_generator_state(gen)
        with torch.cuda.graph(graph):
            static_loss = step(static_x)
    rates, last = [], float("nan")
    for epoch in range(epochs + 1):
        sync()
        start = time.perf_counter()
        perm = torch.randperm(X.shape[0], device=dev)[:n].view(-1, batch)
        total = torch.zeros((), device=dev)
        for idx in perm:
            if graph is not None:
                torch.index_select(X, 0, idx, out=static_x)
                graph.replay()
                total += static_loss.detach()
            else:
                total += step(X[idx]).detach()
        sync()
        if epoch:  # the first epoch is the warm-up
            rates.append(n / (time.perf_counter() - start))
        last = float(total.item() / perm.shape[0])
    return float(np.median(rates)), last


def aekit_run(X: np.ndarray, model: str, batch: int, epochs: int, graphs: bool, bf16: bool):
    kw = dict(latent_dim=LATENT, hidden=(HIDDEN,), batch_size=batch, max_epochs=epochs + 1,
              validation_fraction=0.0, device="cuda", random_state=0, cuda_graphs=graphs,
              precision="bf16" if bf16 else "fp32")  # fmt: skip
    if model == "vae":
        m = aekit.VAE(likelihood="bernoulli", **kw)
    elif model == "aae":
        # three phases, each with its own Adam, as the plain loops here
        m = aekit.AdversarialAutoencoder(loss="bce", generator_weight=None, **kw)
    else:
        m = aekit.Autoencoder(loss="bce", **kw)
    m.fit(X)
    h = m.history_
    curve = [round(e["loss"], 3) for e in h]
    return float(np.median([e["samples_per_second"] for e in h[1:]])), h[-1]["loss"], curve


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=2, help="timed epochs (default 2)")
    ap.add_argument("--batch", default="128,1024")
    ap.add_argument("--models", default="ae,vae,aae")
    ap.add_argument("--rows", type=int, default=60000)
    ap.add_argument("--json", help="also write the rows to this file")
    a = ap.parse_args()
    X_np = load_dataset("fashion-mnist", download=False).X_train[: a.rows]
    X = torch.from_numpy(np.ascontiguousarray(X_np)).cuda()
    info = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__,
            "aekit": aekit.__version__, "python": platform.python_version(),
            "rows": len(X_np), "timed_epochs": a.epochs}  # fmt: skip
    print(json.dumps(info), flush=True)
    out = []
    for model in a.models.split(","):
        for batch in (int(b) for b in a.batch.split(",")):
            row: dict = {"model": model, "batch": batch}
            for variant in ("eager", "fused", "graph"):
                try:
                    row[variant], row[variant + "_loss"] = plain(X, model, batch, a.epochs, variant)
                except Exception as e:  # report, keep going
                    row[variant], row[variant + "_error"] = None, repr(e)[:300]
            for name, graphs, bf16 in (("aekit", False, False), ("aekit_graphs", True, False),
                                       ("aekit_bf16", False, True),
                                       ("aekit_graphs_bf16", True, True)):  # fmt: skip
                try:
                    rate, loss, curve = aekit_run(X_np, model, batch, a.epochs, graphs, bf16)
                    row[name], row[name + "_loss"], row[name + "_curve"] = rate, loss, curve
                except Exception as e:
                    row[name], row[name + "_error"] = None, repr(e)[:300]
            print(json.dumps(row), flush=True)
            out.append(row)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"info": info, "rows": out}, f, indent=1)

    def f(v):
        return f"{v:>10,.0f}" if v else "       n/a"

    print(f"\n{info['gpu']}, torch {info['torch']}, samples/s (median of {a.epochs} epochs)")
    print(
        "| model | batch | plain eager | plain fused | plain graph | aekit | aekit graphs "
        "| aekit bf16 | aekit graphs bf16 | best aekit / graph | best aekit / fused |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in out:
        best = max((r.get(k) or 0) for k in ("aekit", "aekit_graphs", "aekit_graphs_bf16",
                                                "aekit_bf16"))  # fmt: skip
        vs_graph = f"{best / r['graph']:.2f}" if r.get("graph") else "-"
        vs_fused = f"{best / r['fused']:.2f}" if r.get("fused") else "-"
        print(f"| {r['model']} | {r['batch']} | {f(r.get('eager'))} | {f(r.get('fused'))} | "
              f"{f(r.get('graph'))} | {f(r.get('aekit'))} | {f(r.get('aekit_graphs'))} | "
              f"{f(r.get('aekit_bf16'))} | {f(r.get('aekit_graphs_bf16'))} | {vs_graph} | "
              f"{vs_fused} |")  # fmt: skip
    print("\nlast-epoch mean training loss (per sample): correctness, within noise")
    for r in out:
        names = ("eager", "fused", "graph", "aekit", "aekit_graphs", "aekit_bf16",
                 "aekit_graphs_bf16")  # fmt: skip
        cells = [f"{k} {r[k + '_loss']:.2f}" for k in names if r.get(k + "_loss")]
        print(f"{r['model']} {r['batch']}: " + ", ".join(cells))


if __name__ == "__main__":
    main()
