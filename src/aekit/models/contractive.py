"""Contractive autoencoders (Rifai et al. 2011, *Contractive auto-encoders: explicit invariance
during feature extraction*).

``L = L_rec(x, g(f(x))) + lambda * ||J_f(x)||_F^2``, the squared Frobenius norm of the encoder's
Jacobian ``J_f(x) = d f(x) / d x`` (shape ``latent_dim x n_features``): the code is pushed to be
locally insensitive to the input, except along the directions the reconstruction needs.

Three ways to get ``||J_f(x)||_F^2`` per sample:

* closed form, for a one-layer sigmoid encoder ``h = s(W x + b)`` (the paper's eq. 5):
  ``sum_j (h_j (1 - h_j))^2 sum_i W_ji^2``;
* exact, for any encoder: the whole Jacobian in one batched reverse-mode pass,
  ``torch.func.vmap(torch.func.jacrev(f))`` (never one autograd call per code unit);
* Hutchinson's estimator: ``E_e ||J^T e||^2 = tr(J J^T) = ||J||_F^2`` for ``e ~ N(0, I)``, one
  vector-Jacobian product per draw, unbiased, for deep encoders with wide codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted
from torch import nn
from torch.func import jacrev, vmap

from .. import distributed as dist
from .._params import Integer, Options, Real, param
from .._typing import Input
from ..errors import ParameterError
from ..losses import reconstruction_loss
from .autoencoder import Autoencoder, AutoencoderModule

JACOBIANS = ("exact", "hutchinson")


def is_one_layer_sigmoid(encoder: nn.Module) -> bool:
    """True for ``Linear`` then ``Sigmoid``: the encoder with a closed-form Jacobian norm."""
    layers = list(encoder.children())
    return (
        len(layers) == 2 and isinstance(layers[0], nn.Linear) and isinstance(layers[1], nn.Sigmoid)
    )


def jacobian_norm_closed_form(linear: nn.Linear, h: torch.Tensor) -> torch.Tensor:
    """``sum_j (h_j (1 - h_j))^2 sum_i W_ji^2`` per sample, for ``h = sigmoid(W x + b)``."""
    return (h * (1 - h)).pow(2) @ linear.weight.pow(2).sum(1)


def jacobian_norm_exact(encoder: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``||J_f(x_i)||_F^2`` per sample from the full Jacobians, batched: ``vmap(jacrev(f))``.

    Memory is ``n * latent_dim * n_features`` floats; differentiable (a training objective).
    Recurrent layers (``architecture="sequence"``, ``sequence_cell="gru"``) have no batching
    rule for ``vmap``: their Jacobian comes from :func:`jacobian_norm_by_rows` instead.
    """
    if any(isinstance(m, nn.RNNBase) for m in encoder.modules()):
        return jacobian_norm_by_rows(encoder, x)

    def f(xi: torch.Tensor) -> torch.Tensor:
        return encoder(xi.unsqueeze(0)).squeeze(0)

    return vmap(jacrev(f))(x).pow(2).flatten(1).sum(1)


def jacobian_norm_by_rows(encoder: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``||J_f(x_i)||_F^2`` per sample, one vector-Jacobian product per code unit ``j``: rows are
    independent, so the gradient of ``sum_i z_ij`` with respect to ``x`` holds row ``j`` of every
    sample's Jacobian. Exact, differentiable; ``latent_dim`` backward passes."""
    x = x.detach().requires_grad_(True)
    # cuDNN's recurrent layers run backward only in training mode; the reference kernels always.
    with torch.enable_grad(), torch.backends.cudnn.flags(enabled=False):
        z = encoder(x)
        total = torch.zeros(x.shape[0], device=x.device, dtype=x.dtype)
        for j in range(z.shape[1]):
            (row,) = torch.autograd.grad(z[:, j].sum(), x, create_graph=True)
            total = total + row.pow(2).sum(1)
    return total


def jacobian_norm_hutchinson(
    x: torch.Tensor, z: torch.Tensor, n_projections: int, generator: torch.Generator | None
) -> torch.Tensor:
    """Unbiased estimate of ``||J||_F^2`` per sample: the mean over ``n_projections`` draws
    ``e ~ N(0, I)`` of ``||J^T e||^2``, each one vector-Jacobian product for the whole batch.

    ``z`` must be computed from ``x`` with ``x.requires_grad``; the result is differentiable.
    """
    total = torch.zeros(x.shape[0], device=x.device, dtype=x.dtype)
    for _ in range(n_projections):
        e = dist.randn(z.shape, generator=generator, device=z.device, dtype=z.dtype)
        # Rows are independent, so grad of sum_i <z_i, e_i> w.r.t. x gives every J_i^T e_i.
        (vjp,) = torch.autograd.grad(z, x, grad_outputs=e, create_graph=True)
        total = total + vjp.pow(2).sum(1)
    return total / n_projections


class ContractiveModule(AutoencoderModule):
    """An autoencoder whose objective adds the squared Frobenius norm of the encoder's Jacobian."""

    def __init__(self, encoder, decoder, loss, output_activation, *, weight, jacobian,
                 n_projections: int):  # fmt: skip
        super().__init__(encoder, decoder, loss, output_activation)
        self.weight, self.jacobian, self.n_projections = float(weight), jacobian, n_projections
        self.closed_form = is_one_layer_sigmoid(encoder)

    def jacobian_norm(self, x: torch.Tensor) -> torch.Tensor:
        """Exact ``||J_f(x)||_F^2`` per sample (closed form when the encoder allows it)."""
        if self.closed_form:
            return jacobian_norm_closed_form(self.encoder[0], self.encoder(x))
        return jacobian_norm_exact(self.encoder, x)

    def objective(self, x: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """``L_rec + weight * mean_batch ||J||_F^2``; logs the (estimated) Jacobian norm."""
        with torch.enable_grad():  # validation runs under no_grad; the estimators need autograd
            if self.closed_form:
                z = self.encode(x)
                jn = jacobian_norm_closed_form(self.encoder[0], z)
            elif self.jacobian == "hutchinson":
                x = x.detach().requires_grad_(True)
                z = self.encode(x)
                jn = jacobian_norm_hutchinson(x, z, self.n_projections, generator)
            else:
                z = self.encode(x)
                jn = jacobian_norm_exact(self.encoder, x)
        rec = reconstruction_loss(self._loss_input(z), x.detach(), self.loss, reduction="mean")
        jn = jn.mean()
        return {"loss": rec + self.weight * jn, "reconstruction": rec, "jacobian_norm": jn}


@dataclass(kw_only=True, repr=False, eq=False)
class ContractiveAutoencoder(Autoencoder):
    """Contractive autoencoder, a scikit-learn transformer. Takes every parameter of
    :class:`~aekit.Autoencoder`, and:

    Parameters
    ----------
    contraction_weight : float, default=0.1
        ``lambda``, the weight of ``||J_f(x)||_F^2`` (per-sample units, like the loss).
    jacobian : {"exact", "hutchinson"}, default="exact"
        ``"exact"``: the closed form for a one-layer sigmoid encoder (``hidden=()``,
        ``code_activation="sigmoid"``), otherwise the full Jacobian computed in one batched pass
        (cost grows with ``latent_dim``). ``"hutchinson"``: the unbiased random-projection
        estimate with ``n_projections`` draws per sample (cost independent of ``latent_dim``).
    n_projections : int, default=1

    Notes
    -----
    ``history_`` adds ``reconstruction`` and ``jacobian_norm`` (the epoch's mean of the
    estimate); :meth:`jacobian_norm` gives the exact value per sample.
    """

    contraction_weight: float = param(0.1, Real(0, None))
    jacobian: str = param("exact", Options(*JACOBIANS))
    n_projections: int = param(1, Integer(1))

    # The penalty flattens the code around the data, so a wide code cannot simply copy the
    # input (Rifai et al. 2011 use overcomplete contractive layers).
    _overcomplete_code: ClassVar[bool] = True

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.aekit.contractive = True
        return tags

    def _check_params(self) -> None:
        super()._check_params()
        if self.jacobian == "exact" and self.norm == "batch":
            raise ParameterError(
                f"{type(self).__name__}: norm='batch' with jacobian='exact': batch norm mixes the "
                "rows of a batch in training, so a row's exact Jacobian is not defined; use "
                "norm='group' or norm='layer' (per sample), or jacobian='hutchinson'"
            )

    def _build_module(self) -> ContractiveModule:
        encoder, decoder = self._build_networks()
        if self.jacobian == "exact" and self.encoder is not None:
            batchwise = nn.modules.batchnorm._BatchNorm | nn.modules.dropout._DropoutNd
            mixing = [type(m).__name__ for m in encoder.modules() if isinstance(m, batchwise)]
            if mixing:
                raise ParameterError(
                    f"{type(self).__name__}: the encoder has {mixing[0]}, and jacobian='exact' "
                    "differentiates it row by row with torch.func, which batch statistics and "
                    "random dropout masks do not allow; use jacobian='hutchinson' (an unbiased "
                    "estimate from ordinary gradients), or an encoder without them in training"
                )
        return ContractiveModule(
            encoder, decoder, self.loss_, self.output_activation, weight=self.contraction_weight,
            jacobian=self.jacobian, n_projections=int(self.n_projections),
        )  # fmt: skip

    def jacobian_norm(self, X: Input) -> np.ndarray:
        """Exact squared Frobenius norm of the encoder's Jacobian at each row, shape (n,)."""
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        # Per row: the Jacobian (latent_dim x n_features floats), and the encoder's activations
        # once forward and once per code unit backward (vmap(jacrev) runs them together).
        n, latent = int(self.n_features_in_), int(self.latent_dim)
        per_row = (latent + 1) * self._bytes_per_row(self.module_.encode, n) + 4 * latent * n
        return self._batched(self.module_.jacobian_norm, X, bytes_per_row=per_row).astype(
            np.float64
        )
