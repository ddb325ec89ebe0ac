"""Denoising autoencoders (Vincent et al. 2008, *Extracting and composing robust features with
denoising autoencoders*; 2010, *Stacked denoising autoencoders*).

Each training batch is corrupted afresh, ``x~ ~ q(x~ | x)``, and the network is trained to
reconstruct the *clean* input from it: ``L = L_rec(x, g(f(x~)))``. The corruption (masking,
Gaussian, salt-and-pepper; :mod:`aekit.corruption`) is drawn from the training loop's seeded
generator and applied only in training: ``transform`` and ``score`` see the input as given.
With ``hidden=()``, ``code_activation="sigmoid"``, ``tied=True`` and ``loss="bce"`` this is the
paper's model ``y = s(W x~ + b)``, ``z = s(W^T y + b')``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from .._params import Options, Real, param
from .._typing import Input, RandomState
from ..corruption import NOISES, corrupt
from ..errors import ParameterError
from ..runtime import seed_from
from .autoencoder import Autoencoder, AutoencoderModule


class DenoisingModule(AutoencoderModule):
    """An autoencoder trained to reconstruct clean inputs from corrupted ones."""

    def __init__(self, encoder, decoder, loss, output_activation, *, noise, noise_level,
                 n_features: int):  # fmt: skip
        super().__init__(encoder, decoder, loss, output_activation)
        self.noise, self.noise_level = noise, float(noise_level)
        # The data range: salt-and-pepper's two values, per feature. [0, 1] for BCE data; set
        # from the training data otherwise (DenoisingAutoencoder._init_from_data). Saved.
        self.register_buffer("data_min", torch.zeros(n_features))
        self.register_buffer("data_max", torch.ones(n_features))

    def corrupt(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        return corrupt(x, self.noise, self.noise_level, generator, self.data_min, self.data_max,
                       clip=self.loss == "bce")  # fmt: skip

    def objective(self, x: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Mean per-sample loss of reconstructing the clean ``x`` from a fresh corruption."""
        return {"loss": self.reconstruction_loss(self.corrupt(x, generator), x, reduction="mean")}


@dataclass(kw_only=True, repr=False, eq=False)
class DenoisingAutoencoder(Autoencoder):
    """Denoising autoencoder, a scikit-learn transformer. Takes every parameter of
    :class:`~aekit.Autoencoder`, and:

    Parameters
    ----------
    noise : {"masking", "gaussian", "salt_and_pepper"}, default="masking"
        ``"masking"``: each input set to 0 with probability ``noise_level``. ``"gaussian"``:
        additive noise of standard deviation ``noise_level`` (clipped to [0, 1] with
        ``loss="bce"``). ``"salt_and_pepper"``: a share ``noise_level`` of the inputs set to the
        minimum or the maximum of the data range at random (0 or 1 for ``loss="bce"``, else each
        feature's training minimum or maximum).
    noise_level : float, default=0.25

    Notes
    -----
    ``history_``'s ``loss`` is the denoising loss (clean target, corrupted input);
    ``score`` is minus the reconstruction deviance of the input as given (the loss less that of
    a perfect reconstruction; :meth:`~aekit.Autoencoder.score_samples`).
    """

    noise: str = param("masking", Options(*NOISES))
    noise_level: float = param(0.25, Real(0, None))

    # Corrupting the input makes copying it useless, even through a wide code (Vincent et al.
    # 2008 train overcomplete denoising autoencoders).
    _overcomplete_code: ClassVar[bool] = True

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.aekit.denoising = True
        return tags

    def _check_params(self) -> None:
        super()._check_params()
        name = type(self).__name__
        level = self.noise_level
        if self.noise != "gaussian" and level > 1:  # a probability (gaussian: a deviation)
            raise ParameterError(
                f"{name}: noise_level={level!r} must be a probability in [0, 1] for "
                f"{self.noise!r} noise (a standard deviation >= 0 for 'gaussian')"
            )

    def _build_module(self) -> DenoisingModule:
        encoder, decoder = self._build_networks()
        return DenoisingModule(
            encoder, decoder, self.loss_, self.output_activation, noise=self.noise,
            noise_level=self.noise_level, n_features=self.n_features_in_,
        )  # fmt: skip

    def _uses_data_range(self) -> bool:
        return True  # salt-and-pepper noise uses each feature's range

    def _init_from_data(self, module: DenoisingModule, X: np.ndarray) -> None:
        if self.loss_ != "bce":
            module.data_min.copy_(torch.from_numpy(X.min(0)))
            module.data_max.copy_(torch.from_numpy(X.max(0)))

    def corrupt(self, X: Input, random_state: RandomState = None) -> np.ndarray:
        """Apply the training corruption to ``X`` (seeded by ``random_state``), float32.

        Useful to build noisy test sets: ``model.denoise(model.corrupt(X, random_state=0))``.
        """
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        g = torch.Generator(device=self.device_).manual_seed(seed_from(random_state))
        # no layers, and a probe would draw from g: the rows in and out are the memory
        per_row = 8 * int(self.n_features_in_)
        return self._batched(lambda x: self.module_.corrupt(x, g), X, bytes_per_row=per_row).astype(
            np.float32
        )

    def denoise(self, X: Input) -> np.ndarray:
        """The reconstruction of (possibly noisy) inputs: the model's estimate of the clean data."""
        return self.reconstruct(X)
