"""A prototype measured in docs/experiments.md ("The balance of the adversarial phases"): the
categorical AAEs (SemiSupervisedAAE, AAEClustering) with only the STYLE's generator loss inside the
reconstruction phase, ``reconstruction + W * (-log D_style(z))``, and the category's generator
loss kept in its own phase. Not in aekit: it patches ``CategoricalAAEModule`` for this process.

    PYTHONPATH=src python benchmarks/aae_hybrid_probe.py 10 semi '{}' --seeds 0
    PYTHONPATH=src python benchmarks/aae_hybrid_probe.py 10 cluster '{}' --seeds 0

The first argument is W; the rest are ``choose_defaults.py``'s (its ``semi`` and ``cluster``
rows, with the family's default ``generator_weight=None``).
"""

from __future__ import annotations

import sys
from pathlib import Path

from torch.nn import functional as F

from aekit.losses import reconstruction_loss
from aekit.models.aae import categorical
from aekit.models.aae.common import JOINT, generator_loss, split_batch
from aekit.training import Phase

WEIGHT = 10.0
Module = categorical.CategoricalAAEModule
_phases = Module.phases


def reconstruction(self, batch, generator):
    x, _ = split_batch(batch)
    _, z = heads = self.heads(x)
    loss = reconstruction_loss(self._loss_input(x, heads), x, self.loss, "mean")
    if not self.training:
        return {"loss": loss}
    style = generator_loss(self.style_critic(self._noisy(z, generator)))
    return {"loss": loss, "style_generator_loss": style, JOINT: loss + WEIGHT * style}


def fool(self, batch, generator):
    x, _ = split_batch(batch)
    logits, _ = self.heads(x)
    fake_y = self._noisy(F.softmax(logits, dim=1), generator)
    return {"loss": generator_loss(self.category_critic(fake_y))}


def phases(self, discriminator=None, generator=None, options=None):
    out = _phases(self, discriminator, generator, options)
    if self.labels_only:
        return out
    return [Phase("reconstruction", self.reconstruction, p.parameters, minimise=JOINT)
            if p.name == "reconstruction" else p for p in out]  # fmt: skip


def main(argv: list[str]) -> None:
    global WEIGHT
    WEIGHT = float(argv[0])
    Module.reconstruction, Module.fool, Module.phases = reconstruction, fool, phases
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import choose_defaults

    choose_defaults.main(argv[1:])


if __name__ == "__main__":
    main(sys.argv[1:])
