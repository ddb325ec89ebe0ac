"""Networks as a user writes them, in their own module (tests/test_networks.py imports them by
class and by import path, "tests.usernets:Encoder")."""

from __future__ import annotations

import math

import torch
from torch import nn


class Encoder(nn.Module):
    """Any sample shape -> ``out_features``: what every family's encoder contract allows."""

    def __init__(self, input_shape, out_features, width=16):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(math.prod(input_shape), width), nn.ReLU(),
            nn.Linear(width, out_features),
        )  # fmt: skip

    def forward(self, x):
        return self.net(x)


class Decoder(nn.Module):
    """``in_features`` -> a sample of ``input_shape`` (not flat: aekit flattens it)."""

    def __init__(self, input_shape, in_features, width=16):
        super().__init__()
        self.shape = tuple(input_shape)
        self.net = nn.Sequential(
            nn.Linear(in_features, width), nn.ReLU(), nn.Linear(width, math.prod(input_shape))
        )

    def forward(self, z):
        return self.net(z).reshape(len(z), *self.shape)


class Critic(nn.Module):
    """A discriminator: codes of ``in_features`` -> one logit per row, ``(n, 1)``."""

    def __init__(self, in_features, width=16):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_features, width), nn.ReLU(), nn.Linear(width, 1))

    def forward(self, z):
        return self.net(z)


class ConvEncoder(nn.Module):
    """Images ``(n, C, H, W)`` -> codes: the encoder sees image batches, not flat rows."""

    def __init__(self, input_shape, latent_dim, channels=4):
        super().__init__()
        c, h, w = input_shape
        self.seen = None
        self.conv = nn.Sequential(nn.Conv2d(c, channels, 3, stride=2, padding=1), nn.ReLU())
        self.head = nn.Linear(channels * ((h + 1) // 2) * ((w + 1) // 2), latent_dim)

    def forward(self, x):
        self.seen = tuple(x.shape[1:])
        return self.head(self.conv(x).flatten(1))


class MeanLogvar(nn.Module):
    """A VAE encoder returning the pair ``(mu, logvar)``."""

    def __init__(self, n_features, latent_dim):
        super().__init__()
        self.mu = nn.Linear(n_features, latent_dim)
        self.logvar = nn.Linear(n_features, latent_dim)

    def forward(self, x):
        return self.mu(x), self.logvar(x)


class Fixed(nn.Module):
    """A module without constructor arguments (10 features -> 2): an instance of it can be
    rebuilt by ``aekit.load(..., trust_code=True)``."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(10, 2)

    def forward(self, x):
        return self.lin(x)


class SigmoidDecoder(nn.Sequential):
    """A decoder that returns probabilities: wrong for BCE, which takes logits."""

    def __init__(self, in_features, n_features):
        super().__init__(nn.Linear(in_features, n_features), nn.Sigmoid())


class Broken(nn.Module):
    """A layer of the wrong width: fails on the first batch."""

    def __init__(self, latent_dim):
        super().__init__()
        self.lin = nn.Linear(3, latent_dim)

    def forward(self, x):
        return self.lin(x)


def not_a_module():
    return torch.zeros(1)


class DropoutEncoder(Encoder):
    """An encoder with dropout: it draws from torch's global generator while training."""

    def __init__(self, input_shape, out_features, width=16):
        super().__init__(input_shape, out_features, width)
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        return self.net(self.drop(x))


class ReadsValues(Encoder):
    """A constructor that reads a tensor's value: it cannot run on the meta device."""

    def __init__(self, input_shape, out_features):
        super().__init__(input_shape, out_features)
        self.scale = float(self.net[1].weight.abs().max().item())


class LazyEncoder(nn.Module):
    """A lazy layer: its shape and initial values would come from the first batch."""

    def __init__(self, out_features):
        super().__init__()
        self.lin = nn.LazyLinear(out_features)

    def forward(self, x):
        return self.lin(x.flatten(1))


class TransposingDecoder(Decoder):
    """Returns (n, C, W, H) for (C, H, W) images: as many values, in the wrong layout."""

    def forward(self, z):
        c, h, w = self.shape
        return self.net(z).reshape(len(z), c, w, h)


class KeywordsEncoder(nn.Module):
    """A constructor that also takes ``**extra``: the sizes it names are still passed."""

    def __init__(self, n_features, out_features, **extra):
        super().__init__()
        self.lin = nn.Linear(n_features, out_features)

    def forward(self, x):
        return self.lin(x)


class WrappedSigmoidDecoder(nn.Module):
    """A decoder class around a Sequential that ends in a sigmoid."""

    def __init__(self, in_features, n_features):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_features, n_features), nn.Sigmoid())

    def forward(self, z):
        return self.net(z)


class BatchNormEncoder(nn.Module):
    def __init__(self, n_features, out_features):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_features, 8), nn.BatchNorm1d(8), nn.ReLU(),
                                 nn.Linear(8, out_features))  # fmt: skip

    def forward(self, x):
        return self.net(x)
