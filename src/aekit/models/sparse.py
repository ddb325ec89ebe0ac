"""Sparse autoencoders: a penalty that keeps most code units near zero for each input.

Two penalties on the code ``s = f(x)`` (Ng, *Sparse autoencoder*, CS294A lecture notes, 2011;
Goodfellow et al., *Deep Learning*, section 14.2.1):

* ``penalty="l1"``: ``L = L_rec + lambda * mean_batch ||s||_1``.
  The decoder could undo any shrinking of the code by growing (``s / c`` decoded by ``c W``; with
  hidden decoder layers and scale-free units such as ReLU, the growth can hide in any later
  layer), so the penalty would buy nothing. Unless the weights are tied, every decoder layer's
  input columns (for a transposed convolution, the filters of each input channel) are therefore
  projected back to norm at most 1 after every step (a max-norm constraint), so the penalty yields
  real sparsity.
* ``penalty="kl"``: sigmoid code units, the average activation of unit ``j`` over the batch
  ``rho_hat_j``, and ``L = L_rec + beta * sum_j KL(rho || rho_hat_j)`` with
  ``KL(rho || rho_hat) = rho log(rho / rho_hat) + (1 - rho) log((1 - rho) / (1 - rho_hat))``,
  pushing every unit's mean activation to the target ``rho`` (``sparsity_target``).

The code may be wider than the input (overcomplete): only a sparsity penalty makes that useful.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from .. import distributed as dist
from .._params import Options, Real, param
from ..errors import ParameterError
from ..losses import reconstruction_loss
from ..training import Phase
from .autoencoder import Autoencoder, AutoencoderModule

PENALTIES = ("l1", "kl")
DEFAULT_WEIGHTS = {"kl": 3.0, "l1": 0.1}
_EPS = 1e-6


def kl_sparsity(s: torch.Tensor, rho: float) -> torch.Tensor:
    """``sum_j KL(rho || rho_hat_j)`` with ``rho_hat_j`` the mean of unit ``j`` over the batch.

    ``rho_hat`` is squeezed affinely into ``[eps, 1 - eps]`` rather than clamped, so a unit whose
    mean activation has collapsed to 0 or 1 still gets the gradient that pulls it back."""
    rho_hat = _EPS + (1 - 2 * _EPS) * dist.batch_mean(s)
    return (rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))).sum()


def hoyer_sparsity(Z: torch.Tensor) -> torch.Tensor:
    """Hoyer's sparsity of each row, ``(sqrt(d) - ||z||_1 / ||z||_2) / (sqrt(d) - 1)``: 0 for a
    constant row, 1 for a single non-zero unit; unchanged by rescaling. Shape ``(n,)``."""
    d = Z.shape[1]
    ratio = Z.abs().sum(1) / Z.norm(dim=1).clamp_min(1e-12)
    return (d**0.5 - ratio) / (d**0.5 - 1)


def first_linear(decoder: nn.Module) -> nn.Linear:
    """The decoder layer that reads the code (its first ``nn.Linear``)."""
    return next(m for m in decoder.modules() if isinstance(m, nn.Linear))


class SparseModule(AutoencoderModule):
    """An autoencoder whose objective adds a sparsity penalty on the code."""

    def __init__(self, encoder, decoder, loss, output_activation, *, penalty, weight, target,
                 bound_decoder: bool):  # fmt: skip
        super().__init__(encoder, decoder, loss, output_activation)
        self.penalty, self.weight, self.target = penalty, float(weight), float(target)
        self.bound_decoder = bound_decoder

    def sparsity_penalty(self, s: torch.Tensor) -> torch.Tensor:
        if self.penalty == "l1":
            return s.abs().sum(1).mean()
        return kl_sparsity(s, self.target)

    def objective(self, x: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """``L_rec + weight * penalty``; logs the unweighted penalty and the mean |activation|."""
        s = self.encode(x)
        rec = reconstruction_loss(self._loss_input(s), x, self.loss, reduction="mean")
        penalty = self.sparsity_penalty(s)
        return {
            "loss": rec + self.weight * penalty,
            "reconstruction": rec,
            "penalty": penalty,
            "mean_activation": s.detach().abs().mean(),
        }

    def _project_decoder(self) -> None:
        """Every decoder layer's input columns back to norm <= 1 (see the module docstring)."""
        for m in self.decoder.modules():
            if isinstance(m, nn.Linear):  # (out, in): column j leaves input unit j
                m.weight.div_(m.weight.norm(dim=0, keepdim=True).clamp_min(1.0))
            elif isinstance(m, nn.ConvTranspose2d):  # (in, out, kh, kw): one filter set per input
                norms = m.weight.flatten(1).norm(dim=1).clamp_min(1.0)
                m.weight.div_(norms.view(-1, 1, 1, 1))

    def phases(self) -> list[Phase]:
        after = self._project_decoder if self.bound_decoder else None
        return [Phase("reconstruction", self.objective, list(self.parameters()), after_step=after)]


@dataclass(kw_only=True, repr=False, eq=False)
class SparseAutoencoder(Autoencoder):
    """Sparse autoencoder (L1 penalty on the code, or KL sparsity target), a scikit-learn
    transformer. Takes every parameter of :class:`~aekit.Autoencoder`, and:

    Parameters
    ----------
    penalty : {"l1", "kl"}, default="l1"
        ``"l1"``: ``sparsity_weight * mean_batch ||s||_1``, with the decoder's code-reading
        columns kept at norm <= 1 (unless ``tied``). ``"kl"``: sigmoid code units and
        ``sparsity_weight * sum_j KL(sparsity_target || mean activation of unit j)``.
    sparsity_weight : float or None, default=None
        The penalty's weight (``lambda`` or ``beta``), in the loss's per-sample unit. None: 3.0
        for ``"kl"`` (the ``beta`` of Ng's notes), 0.1 for ``"l1"``. Both are data-dependent:
        tune them (for example with GridSearchCV) against the reconstruction error you accept.
    sparsity_target : float, default=0.05
        ``rho``, the target mean activation of each unit (``penalty="kl"`` only).

    Notes
    -----
    ``transform`` gives the code; ``score`` is minus the clean reconstruction deviance (the
    loss less that of a perfect reconstruction), without the penalty. ``history_`` adds
    ``reconstruction``, ``penalty`` (unweighted) and ``mean_activation`` (mean |s| over the
    epoch's codes). With ``penalty="kl"`` the code activation is sigmoid (``code_activation``
    must be None or "sigmoid").
    """

    penalty: str = param("l1", Options(*PENALTIES))
    sparsity_weight: float | None = param(None, None, Real(0, None))
    sparsity_target: float = param(0.05, Real(0, 1, closed="neither"))

    # The penalty is what makes a wide code useful (Ng's notes train overcomplete codes).
    _overcomplete_code: ClassVar[bool] = True

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.aekit.sparse_code = True
        return tags

    def _check_params(self) -> None:
        super()._check_params()
        name = type(self).__name__
        if self.penalty == "kl" and self.code_activation not in (None, "sigmoid"):
            raise ParameterError(
                f"{name}: penalty='kl' needs sigmoid code units (activations in (0, 1)); "
                f"code_activation={self.code_activation!r} is not allowed, use None or 'sigmoid'"
            )

    def _weight(self) -> float:
        if self.sparsity_weight is not None:
            return float(self.sparsity_weight)
        return DEFAULT_WEIGHTS[self.penalty]

    def _build_module(self) -> SparseModule:
        code = "sigmoid" if self.penalty == "kl" else None
        encoder, decoder = self._build_networks(code_activation=code)
        return SparseModule(
            encoder,
            decoder,
            self.loss_,
            self.output_activation,
            penalty=self.penalty,
            weight=self._weight(),
            target=self.sparsity_target,
            bound_decoder=self.penalty == "l1" and not self.tied,
        )
