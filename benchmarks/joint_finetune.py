"""Does keeping a reconstruction loss during fine-tuning make pre-training pay (issue 16)?

A prototype, outside the library, for the pre-train row: the row's network (784-500-250,
ReLU) pre-trained greedily as denoising layers (10 epochs each, masking 0.25; with
``pretrain_epochs=0``: random initialisation), then fine-tuned 100 epochs with Adam (lr 1e-3,
batches of 128 labelled rows) on cross-entropy plus ``lam`` times the per-pixel binary
cross-entropy of reconstructing a batch of 128 masked rows drawn from all 10,000 (Ranzato and
Szummer 2008's joint objective). The split is choose_defaults.py's pretrain split
(``labels_split``: validation rows of the training set, never the test set).

    PYTHONPATH=src python benchmarks/joint_finetune.py LAMS SEEDS [EPOCHS [NOISE]]
    PYTHONPATH=src python benchmarks/joint_finetune.py 0,1,10 0

Result (seeds 0 and 1, docs/experiments.md): no gain; the joint term leaves the pre-trained
network within 0.2 points and does not help the randomly initialised one.
"""

from __future__ import annotations

import json
import sys
import time

import torch
from torch.nn import functional as F

from aekit import StackedAutoencoder
from aekit.datasets import load_dataset
from choose_defaults import labels_split  # this script's folder: the pretrain row's split


def run(data, lam: float, seed: int, pre: bool, epochs: int, noise: float) -> dict:
    X, y, X_va, y_va = labels_split(data, seed)
    X_va = torch.tensor(X_va)
    XL, yL, XA = torch.tensor(X[y >= 0]), torch.tensor(y[y >= 0]).long(), torch.tensor(X)
    torch.manual_seed(seed)
    stack = StackedAutoencoder(hidden=(500,), latent_dim=250, code_activation="relu",
                               max_epochs=0, random_state=seed,
                               pretrain_epochs=10 if pre else 0).fit(X)  # fmt: skip
    mod, head = stack.module_, torch.nn.Linear(250, 10)
    opt = torch.optim.Adam([*mod.parameters(), *head.parameters()], lr=1e-3)
    g = torch.Generator().manual_seed(seed)
    t = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(XL), generator=g)
        for i in range(0, len(XL), 128):
            b = order[i : i + 128]
            loss = F.cross_entropy(head(mod.encoder(XL[b])), yL[b])
            if lam:
                u = XA[torch.randint(len(XA), (128,), generator=g)]
                keep = (torch.rand(u.shape, generator=g) >= noise).float()
                rec = mod.decoder(mod.encoder(u * keep))
                loss = loss + lam * F.binary_cross_entropy_with_logits(rec, u)
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        acc = float((head(mod.encoder(X_va)).argmax(1).numpy() == y_va).mean())
    return {"seed": seed, "pretrained": pre, "lam": lam, "epochs": epochs, "noise": noise,
            "accuracy": round(acc, 4), "seconds": round(time.perf_counter() - t)}  # fmt: skip


def main(argv: list[str]) -> None:
    torch.set_num_threads(1)
    data = load_dataset("fashion-mnist", download=False)
    lams = [float(v) for v in argv[0].split(",")]
    seeds = [int(v) for v in argv[1].split(",")]
    epochs = int(argv[2]) if len(argv) > 2 else 100
    noise = float(argv[3]) if len(argv) > 3 else 0.25
    for seed in seeds:
        for pre in (True, False):
            for lam in lams:
                print(json.dumps(run(data, lam, seed, pre, epochs, noise)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
