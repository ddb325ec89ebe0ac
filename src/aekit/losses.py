"""Reconstruction losses in per-sample units: summed over features, one value per row.

Training averages these over the batch, so every loss aekit reports is "per sample" (squared error
per image, nats per sample), as in the papers; divide by the number of features for per-feature
(per-pixel) values.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

RECONSTRUCTION_LOSSES = ("mse", "bce")


def reconstruction_loss(
    output: torch.Tensor, target: torch.Tensor, loss: str, reduction: str = "none"
) -> torch.Tensor:
    """Per-sample reconstruction loss, shape ``(n,)``, or its mean over the batch.

    Parameters
    ----------
    output : Tensor, shape (n, n_features)
        For ``"bce"`` the decoder's logits (the sigmoid is folded into the loss for stability:
        ``max(l, 0) - l*x + log(1 + exp(-|l|))``); for ``"mse"`` the reconstruction itself.
    target : Tensor, shape (n, n_features)
        The clean input; in [0, 1] for ``"bce"``.
    loss : {"mse", "bce"}
        ``"mse"``: ``sum_j (output_j - target_j)^2`` (squared error per sample).
        ``"bce"``: ``-sum_j [x_j log s(l_j) + (1 - x_j) log(1 - s(l_j))]``.
    reduction : {"none", "mean"}
        ``"mean"``: the mean over the batch of the per-sample losses, computed as the total sum
        divided by ``n`` (one fused reduction: the training objective's fast path).
    """
    _check_loss(loss)
    if reduction == "mean":
        if loss == "mse":
            return F.mse_loss(output, target, reduction="sum") / output.shape[0]
        return F.binary_cross_entropy_with_logits(output, target, reduction="sum") / output.shape[0]
    if reduction != "none":
        raise ValueError(f"unknown reduction {reduction!r}; choose 'none' or 'mean'")
    if loss == "mse":
        return (output - target).pow(2).flatten(1).sum(1)
    return F.binary_cross_entropy_with_logits(output, target, reduction="none").flatten(1).sum(1)


def best_reconstruction_loss(target: torch.Tensor, loss: str) -> torch.Tensor:
    """The smallest value :func:`reconstruction_loss` can take for each row of ``target``, shape
    ``(n,)``: the loss of a perfect reconstruction.

    Zero for ``"mse"``, and for ``"bce"`` on binary rows. For ``"bce"`` on intensities in (0, 1)
    it is the row's own entropy ``-sum_j [x_j log x_j + (1 - x_j) log(1 - x_j)]``, which a
    reconstruction cannot remove. It differs from row to row (a grey image has more than a
    black-and-white one), so ``loss - best`` (the deviance, a sum of per-pixel Bernoulli KL
    divergences) measures how well a row is reconstructed, and the loss alone does not: as an
    anomaly score on one-class Fashion-MNIST, the BCE ranks rows by their grey levels (mean
    ROC-AUC 0.745, 0.50 for pullovers, against 0.901 and 0.873 for the deviance;
    docs/anomaly.md).
    """
    _check_loss(loss)
    if loss == "mse":
        return target.new_zeros(target.shape[0])
    return -_negative_entropy(target).flatten(1).sum(1)


def reconstruction_deviance(output: torch.Tensor, target: torch.Tensor, loss: str) -> torch.Tensor:
    """Per-sample ``reconstruction_loss(output, target, loss) -
    best_reconstruction_loss(target, loss)``: zero for a perfect reconstruction, whatever the
    row. The squared error itself for ``"mse"``; for ``"bce"``, the sum over features of the
    Bernoulli KL divergence ``KL(x_j || sigmoid(l_j))``, each feature's difference taken before
    the sum (two float32 sums of thousands of nats would cancel to a coarse grid on large
    images)."""
    _check_loss(loss)
    if loss == "mse":
        return reconstruction_loss(output, target, loss)
    per_feature = F.binary_cross_entropy_with_logits(output, target, reduction="none")
    return (per_feature + _negative_entropy(target)).flatten(1).sum(1)


def _check_loss(loss: str) -> None:
    if loss not in RECONSTRUCTION_LOSSES:
        raise ValueError(f"unknown loss {loss!r}; choose one of {', '.join(RECONSTRUCTION_LOSSES)}")


def _negative_entropy(x: torch.Tensor) -> torch.Tensor:
    """``x log x + (1 - x) log(1 - x)`` per feature (0 log 0 = 0): minus each intensity's
    Bernoulli entropy, the binary cross-entropy of a perfect reconstruction."""
    return torch.special.xlogy(x, x) + torch.special.xlogy(1 - x, 1 - x)
