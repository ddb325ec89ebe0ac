"""What every adversarial autoencoder shares: the discriminator, its two losses, and the
parameters of the regularisation phase.

Makhzani et al. (2015), section 2: a discriminator ``D`` tells codes drawn from the prior
``p(z)`` ("real") from codes produced by the encoder ``q(z | x)`` ("fake"); the encoder, as the
generator, is trained to fool it. With the non-saturating generator loss of Goodfellow et al.
(2014), the two phases minimise, per batch::

    discriminator:  -log D(z_prior) - log(1 - D(z_code))     (cross-entropy, logits)
    generator:      -log D(z_code)

which at the optimum of ``D`` drives the aggregated posterior ``q(z) = E_x q(z | x)`` to ``p(z)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ... import networks
from ..._params import Network, Real, Sizes, param, param_of
from ...errors import ParameterError
from ...estimator import KWARGS, BaseAutoencoder
from ...nn import _mlp
from ...training import Phase
from ..autoencoder import Autoencoder

POSTERIORS = ("deterministic", "gaussian")
ADVERSARIAL_BETAS = (0.5, 0.999)  # Adam's betas in the discriminator and generator phases


class Discriminator(nn.Sequential):
    """``n_in -> hidden... -> 1`` logit, ReLU hidden layers (the paper's MNIST discriminator is
    two layers of 1000 units)."""

    def __init__(self, n_in: int, hidden: tuple[int, ...]):
        super().__init__(*_mlp([n_in, *hidden, 1], "relu", None))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return super().forward(z).squeeze(1)


def discriminator_loss(
    real: torch.Tensor, fake: torch.Tensor, smoothing: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy of telling ``real`` (prior) logits from ``fake`` (code) logits, batch mean,
    and the discriminator's accuracy. ``smoothing`` (one-sided label smoothing, Salimans et al.
    2016) sets the real target to ``1 - smoothing``."""
    loss = F.binary_cross_entropy_with_logits(
        real, torch.full_like(real, 1.0 - smoothing)
    ) + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
    accuracy = 0.5 * ((real > 0).float().mean() + (fake < 0).float().mean())
    return loss, accuracy


def critic_loss(
    critic, real: torch.Tensor, fake: torch.Tensor, smoothing: float, penalty: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`discriminator_loss` of ``critic`` (a function of codes) on prior samples ``real``
    and codes ``fake``, plus the R1 gradient penalty ``penalty / 2 * E_real |grad D|^2``
    (Mescheder et al. 2018), which keeps the discriminator smooth where the prior has mass and
    damps the oscillations of adversarial training."""
    if penalty:
        real = real.detach().requires_grad_(True)
    d_real = critic(real)
    loss, accuracy = discriminator_loss(d_real, critic(fake), smoothing)
    if penalty:
        (grad,) = torch.autograd.grad(d_real.sum(), real, create_graph=True)
        loss = loss + 0.5 * penalty * grad.pow(2).sum(1).mean()
    return loss, accuracy


def generator_loss(fake: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss ``-log D(z_code)``, batch mean."""
    return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))


JOINT = "objective"  # the key of the reconstruction phase's weighted sum (Phase.minimise)


def reconstruction_step(loss: torch.Tensor, fooling, weight: float | None, training: bool):
    """The reconstruction phase's output: ``{"loss": loss}``, and with a ``weight`` (in
    training) the generator's loss ``fooling()`` beside it and the sum the phase minimises,
    ``loss + weight * fooling()`` under :data:`JOINT`. Validation (eval mode) reports the
    reconstruction alone, as with the separate phase."""
    if weight is None or not training:
        return {"loss": loss}
    term = fooling()
    return {"loss": loss, "generator_loss": term, JOINT: loss + weight * term}


def adversarial_phases(
    module,
    critics: list,
    discriminator: float | None,
    generator: float | None,
    options: dict | None,
) -> list[Phase]:
    """A module's reconstruction phase (minimising the weighted sum :data:`JOINT` when its
    ``generator_weight`` is a number), its discriminator phase over the parameters ``critics``,
    and, with ``generator_weight=None``, the separate generator phase. ``discriminator`` and
    ``generator`` are the adversarial phases' learning rates (None: the trainer's), ``options``
    their optimisers' extra arguments. The module provides ``reconstruction``, ``discriminate``
    and ``fool``."""
    opts = dict(options or {})
    joint = module.generator_weight is not None
    phases = [
        Phase("reconstruction", module.reconstruction,
              [*module.encoder.parameters(), *module.decoder.parameters()],
              minimise=JOINT if joint else "loss"),
        Phase("discriminator", module.discriminate, critics, lr=discriminator,
              loss_key="discriminator_loss", optimizer_options=opts),
    ]  # fmt: skip
    if not joint:
        phases.append(Phase("generator", module.fool, list(module.encoder.parameters()),
                            lr=generator, loss_key="generator_loss",
                            optimizer_options=opts))  # fmt: skip
    return phases


def one_hot(labels: torch.Tensor, n: int) -> torch.Tensor:
    return F.one_hot(labels.long(), n).float()


def sample_count(n, mean: bool = True) -> int:
    """``n`` as a positive int for ``sample``/``sample_prior``; ``mean=False`` (draw from
    ``p(x | z)``) is refused, as an adversarial autoencoder's decoder is deterministic."""
    if not mean:
        raise ParameterError(
            "an adversarial autoencoder's decoder is deterministic: there is no p(x|z) to draw "
            "from (mean=False)"
        )
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ParameterError(f"n={n!r}: give a positive number of samples")
    return int(n)


def split_batch(batch) -> tuple[torch.Tensor, torch.Tensor | None]:
    return batch if isinstance(batch, tuple) else (batch, None)


@dataclass(kw_only=True, repr=False, eq=False)
class _AdversarialBase(Autoencoder):
    """The parameters of the regularisation phase that every adversarial autoencoder takes, on
    top of :class:`~aekit.Autoencoder`'s (``lr`` is the reconstruction phase's rate).

    Parameters
    ----------
    hidden : tuple of int, default=(256, 128)
        The encoder's and decoder's hidden widths, as :class:`~aekit.Autoencoder`'s, whose
        wider MLP default (512, 256) the adversarial family does not take.
    lr_schedule : str, default="none"
        As :class:`~aekit.Autoencoder`'s, whose ``"auto"`` default (a cooldown over the last
        fifth of ``max_epochs``) the adversarial family does not take either.
    discriminator_hidden : tuple of int, default=(256, 256)
        Hidden widths of each discriminator (ReLU).
    generator_weight : float or None
        How the encoder is pulled towards the prior (default: 30 for
        :class:`~aekit.AdversarialAutoencoder`, None for the categorical family).

        - A number ``w``: the reconstruction phase minimises ``reconstruction + w * (-log
          D(code))`` under its one optimiser, and there is no separate generator phase (the
          scheme of Pythae's ``Adversarial_AE``). The reconstruction loss sums over the
          features, so the prior's pull weighs less against it on data with more features,
          as a VAE's KL term does against its likelihood. History's ``loss`` stays the
          reconstruction loss, and ``generator_loss`` is logged beside it.
        - None: the paper's separate generator phase, with its own optimiser at
          ``generator_lr``. Adam takes steps of about its learning rate whatever a loss's
          scale, so the balance then ignores the data: the generator phase pulls the encoder
          as hard as the reconstruction phase on every data set.

        Measured (docs/experiments.md, "The balance of the adversarial phases"): on the digits,
        ``w = 30`` and the separate phase match the mixture prior about as closely. On a
        validation split of Fashion-MNIST (2-D, Gaussian prior, 100 epochs), the separate
        phase at the full rate lost the reconstruction (5-NN accuracy of the codes 0.44; PCA-2:
        about 0.51); with both adversarial rates at ``lr / 5`` it reached 0.61, with a prior
        match 460x looser than ``w = 30``'s; ``w = 30`` reached 0.73 (trustworthiness 0.975).
        The categorical models keep None: on the digits the joint objective lowered their
        semi-supervised accuracy at every weight tried (3 to 300), by 1.5 to 6 points.
    discriminator_lr, generator_lr : float or None, default=None
        Learning rates of the discriminator phase and of the separate generator phase
        (``generator_weight=None``); None: ``lr``. With the separate phase they set the balance
        between matching the prior and reconstructing. ``generator_lr`` with a numeric
        ``generator_weight`` is refused: there is no generator phase to take it.
    label_smoothing : float, default=0.0
        One-sided label smoothing: the discriminator's target for prior samples is
        ``1 - label_smoothing``.
    discriminator_noise : float, default=0.0
        Standard deviation of Gaussian "instance noise" added to every code the discriminator
        sees, prior samples and encoder codes alike (Sønderby et al. 2017), which keeps its
        gradients informative while the two distributions barely overlap.
    gradient_penalty : float, default=1.0
        Weight ``gamma`` of the R1 penalty ``gamma / 2 * E_prior |grad D(z)|^2`` on the
        discriminator (Mescheder et al. 2018); 0 turns it off.

    Notes
    -----
    With ``optimizer="adam"`` or ``"adamw"``, the discriminator phase and the separate generator
    phase use ``betas=(0.5, 0.999)`` (Radford et al. 2016), the reconstruction phase the default
    ``(0.9, 0.999)``; with a ``generator_weight`` the generator's loss is optimised by the
    reconstruction phase's optimiser, with its betas. On digits with a 10-component 2-D mixture
    prior and the separate phase, both stabilisers (this ``beta_1`` and the R1 penalty) took the
    squared MMD between test codes and prior from 8.8-11.9 times its noise floor to 0.16-2.3
    times (3 seeds; ``tests/test_aae.py``).
    """

    # The adversarial family keeps the 256-128 MLP and a constant rate (not Autoencoder's wider
    # default and cooldown, measured only for the plain families; its rows are at the time limit).
    hidden: tuple[int, ...] = param_of(BaseAutoencoder, "hidden")
    lr_schedule: str = param_of(BaseAutoencoder, "lr_schedule")  # "none", as for the widths
    discriminator_hidden: tuple[int, ...] = param((256, 256), Sizes("(256,)"))
    generator_weight: float | None = param(None, None, Real(0, None, closed="neither"))
    discriminator_lr: float | None = param(None, None, Real(0, None, closed="neither"))
    generator_lr: float | None = param(None, None, Real(0, None, closed="neither"))
    label_smoothing: float = param(0.0, Real(0, 0.5, closed="left"))
    discriminator_noise: float = param(0.0, Real(0, None))
    gradient_penalty: float = param(1.0, Real(0, None))
    discriminator: Any = param(None, None, Network())
    discriminator_kwargs: dict | None = param(None, None, KWARGS)

    _structural_params: ClassVar[tuple[str, ...]] = (
        "discriminator", "discriminator_kwargs", "discriminator_hidden",
    )  # fmt: skip

    # The code is pushed towards a prior, so copying the input is not the optimum.
    _overcomplete_code: ClassVar[bool] = True

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.aekit.adversarial = True  # discriminators, whose accuracies history_ records
        return tags

    def _discriminator(self, n_in: int) -> nn.Module:
        """A discriminator of codes of width ``n_in``: the user's (``discriminator=``, built
        with ``in_features=n_in`` where its constructor takes it) or the built-in MLP."""
        if self.discriminator is None:
            return Discriminator(n_in, tuple(int(w) for w in self.discriminator_hidden))
        owner = type(self).__name__
        net = networks.build(self.discriminator, self.discriminator_kwargs, role="discriminator",
                             owner=owner, sizes={"in_features": n_in,
                                                 "latent_dim": int(self.latent_dim)})  # fmt: skip
        return networks.UserDiscriminator(
            net, in_features=n_in, owner=owner, contract="one logit per row: (n, 1) or (n,)"
        )

    def _check_params(self) -> None:
        super()._check_params()
        if self.generator_weight is not None and self.generator_lr is not None:
            raise ParameterError(
                f"{type(self).__name__}: generator_lr={self.generator_lr!r} is the rate of a "
                "separate generator phase, but generator_weight="
                f"{self.generator_weight!r} adds the generator's loss to the reconstruction "
                "phase instead. Fit with generator_weight=None (aekit train: --set "
                "generator_weight=none) to train the separate phase at generator_lr, or leave "
                "generator_lr=None (a larger generator_weight pulls the codes closer to the "
                "prior)"
            )

    def _check_structure(self, action: str) -> None:
        """Also the scheme of ``generator_weight`` (a number or None), which decides the phases
        and so the optimisers whose state the model holds; the number itself may change."""
        super()._check_structure(action)
        names = {p.name for p in self._trainer.phases}  # labels_only models have neither
        joint = self.generator_weight is not None
        if "reconstruction" in names and joint == ("generator" in names):
            if joint:
                built = "a separate generator phase (generator_weight=None)"
                keep = "set_params(generator_weight=None) to go on with it"
            else:
                built = "the generator's loss in the reconstruction phase (a generator_weight)"
                keep = "set_params(generator_weight=<a number>) to go on with it (any weight)"
            raise ParameterError(
                f"{type(self).__name__}: generator_weight={self.generator_weight!r}, but the "
                f"model was built to train {built}, whose phases and optimisers differ; "
                f"{action} would go on with that scheme. Fit again to change it, or {keep}"
            )

    def _generator_weight(self) -> float | None:
        return None if self.generator_weight is None else float(self.generator_weight)

    def _apply_settings(self, module) -> None:
        """A family's own settings that ``set_params`` may change between calls (the prior)."""

    def _train(self, X, X_val, epochs, callbacks, **kw) -> None:
        """Apply the regularisation settings as they are now (``set_params`` between
        ``partial_fit`` calls), then train."""
        module = self.module_
        names = {p.name for p in self._trainer.phases}  # labels_only models have neither
        module.generator_weight = self._generator_weight()
        module.label_smoothing = float(self.label_smoothing)
        module.noise = float(self.discriminator_noise)
        module.penalty = float(self.gradient_penalty)
        self._apply_settings(module)
        for name, lr in (
            ("discriminator", self.discriminator_lr),
            ("generator", self.generator_lr),
        ):
            if name in names:
                self._trainer.set_phase_lr(name, lr)
        super()._train(X, X_val, epochs, callbacks, **kw)

    def _phases(self, module):
        options = {"betas": ADVERSARIAL_BETAS} if self.optimizer in ("adam", "adamw") else {}
        return module.phases(
            discriminator=self.discriminator_lr, generator=self.generator_lr, options=options
        )
