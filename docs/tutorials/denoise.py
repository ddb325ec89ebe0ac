"""Remove noise: a denoising autoencoder trained on digits with a third of their pixels zeroed.

    python docs/tutorials/denoise.py [--smoke] [--figures DIR]

Prints, on test digits with the same kind of noise, the squared error per image to the clean
digits: of the noisy input itself, of a plain autoencoder's reconstruction and of the denoising
autoencoder's, which learned to fill the missing pixels in (Vincent et al. 2008).
"""

from __future__ import annotations

import numpy as np
from _common import digits, options, save

import aekit

args = options(__doc__.splitlines()[0])
data = digits()
X, Xt = data.X_train, data.X_test
epochs = 10 if args.smoke else 200
kw = dict(latent_dim=16, hidden=(64,), lr=3e-3, max_epochs=epochs, random_state=0)

dae = aekit.DenoisingAutoencoder(noise="masking", noise_level=0.33, **kw).fit(X)
plain = aekit.Autoencoder(**kw).fit(X)
noisy = Xt * (np.random.default_rng(1).random(Xt.shape) >= 0.33)  # the same noise, new draws


def error(rows):
    return ((rows - Xt) ** 2).sum(1).mean()


print(f"noisy input             {error(noisy):6.2f}")
print(f"plain autoencoder       {error(plain.reconstruct(noisy)):6.2f}")
print(f"denoising autoencoder   {error(dae.reconstruct(noisy)):6.2f}")

from aekit.plotting import plot_denoising  # noqa: E402

save(plot_denoising(noisy, dae.reconstruct(noisy), Xt, (1, 8, 8)), args, "denoise.png")
