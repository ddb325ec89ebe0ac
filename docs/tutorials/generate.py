"""Generate new samples: a variational autoencoder of the digits (Kingma and Welling 2014).

    python docs/tutorials/generate.py [--smoke] [--figures DIR]

Prints the test log-likelihood estimate (nats per digit, higher is better; an importance-sampled
bound with 100 samples, Burda et al. 2016) and the range of 16 new digits drawn from the prior.
"""

from __future__ import annotations

from _common import digits, options, save

import aekit

args = options(__doc__.splitlines()[0])
data = digits()
X, Xt = data.X_train, data.X_test

vae = aekit.VAE(latent_dim=8, hidden=(128, 64), likelihood="bernoulli", lr=3e-3,
                max_epochs=10 if args.smoke else 200, random_state=0)  # fmt: skip
vae.fit(X)
print(f"test log p(x) estimate {vae.log_likelihood(Xt, n_samples=100):.2f} nats per digit")
new = vae.sample(16, random_state=0)
print(f"16 new digits of shape {new.shape}, values in [{new.min():.2f}, {new.max():.2f}]")

from aekit.plotting import plot_image_grid  # noqa: E402

save(plot_image_grid(new, (1, 8, 8)), args, "generate.png")
