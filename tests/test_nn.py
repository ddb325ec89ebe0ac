"""Building blocks: shapes, mirrors, tied weights, convolutions, seeded initialisation."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from aekit import ParameterError
from aekit.nn import ACTIVATIONS, build_encoder_decoder, make_activation, reset_parameters


def test_mlp_decoder_mirrors_the_encoder_unless_told_otherwise():
    enc, dec = build_encoder_decoder(n_features=20, latent_dim=3, hidden=(16, 8))
    widths = lambda m: [(l.in_features, l.out_features) for l in m if isinstance(l, nn.Linear)]  # noqa: E731
    assert widths(enc) == [(20, 16), (16, 8), (8, 3)]
    assert widths(dec) == [(3, 8), (8, 16), (16, 20)]
    assert not isinstance(list(enc)[-1], nn.ReLU)  # the code layer is linear
    _, dec2 = build_encoder_decoder(
        n_features=20, latent_dim=3, hidden=(16, 8), decoder_hidden=(5,)
    )
    assert widths(dec2) == [(3, 5), (5, 20)]


def test_tied_needs_a_mirrored_decoder():
    with pytest.raises(ParameterError, match="mirrors the encoder"):
        build_encoder_decoder(
            n_features=6, latent_dim=2, hidden=(4,), decoder_hidden=(3,), tied=True
        )
    with pytest.raises(ParameterError, match="only available for architecture='mlp'"):
        build_encoder_decoder(
            n_features=64,
            latent_dim=2,
            hidden=(4,),
            architecture="conv",
            input_shape=(1, 8, 8),
            tied=True,
        )


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 8, 8), (1, 7, 9), (2, 5, 12)])
def test_conv_round_trip_shapes_including_odd_sizes(shape):
    n = math.prod(shape)
    enc, dec = (
        build_encoder_decoder(
            n_features=n, latent_dim=4, hidden=(8, 16), architecture="conv", input_shape=shape
        )
        if min(shape[1:]) >= 4
        else build_encoder_decoder(
            n_features=n, latent_dim=4, hidden=(8,), architecture="conv", input_shape=shape
        )
    )
    x = torch.rand(5, n)
    z = enc(x)
    assert z.shape == (5, 4)
    assert dec(z).shape == (5, n)


def test_conv_too_small_and_mismatched_shapes():
    with pytest.raises(ParameterError, match="too small for 4 convolutions with kernel_size=4"):
        build_encoder_decoder(
            n_features=64,
            latent_dim=2,
            hidden=(4, 4, 4, 4),
            architecture="conv",
            input_shape=(1, 8, 8),
        )
    with pytest.raises(ParameterError, match="has 64 values per sample, but X has 10"):
        build_encoder_decoder(
            n_features=10, latent_dim=2, hidden=(4,), architecture="conv", input_shape=(1, 8, 8)
        )


def test_activations_by_name():
    for name in ACTIVATIONS:
        assert isinstance(make_activation(name), nn.Module)
    with pytest.raises(ParameterError, match="unknown activation 'swish'"):
        make_activation("swish")


def test_reset_parameters_is_seeded_and_matches_pytorch_defaults():
    """Same generator seed, same weights; the bounds are PyTorch's defaults (1/sqrt(fan_in))."""
    a = nn.Sequential(nn.Linear(100, 50), nn.Conv2d(3, 4, 3), nn.ConvTranspose2d(4, 2, 4))
    b = nn.Sequential(nn.Linear(100, 50), nn.Conv2d(3, 4, 3), nn.ConvTranspose2d(4, 2, 4))
    reset_parameters(a, torch.Generator().manual_seed(0))
    reset_parameters(b, torch.Generator().manual_seed(0))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    lin = a[0]
    assert lin.weight.abs().max() <= 1 / math.sqrt(100) + 1e-7
    assert lin.weight.abs().max() > 0.9 / math.sqrt(100)  # uses the whole range
    convt = a[2]  # PyTorch's fan_in for a transposed conv: out_channels * kernel area = 2 * 16
    assert convt.bias.abs().max() <= 1 / math.sqrt(32) + 1e-7


def test_mean_reduction_is_the_mean_of_per_sample_losses():
    from aekit.losses import reconstruction_loss

    out, target = torch.randn(7, 5), torch.rand(7, 5)
    for loss in ("mse", "bce"):
        per_sample = reconstruction_loss(out, target, loss)
        assert per_sample.shape == (7,)
        mean = reconstruction_loss(out, target, loss, reduction="mean")
        assert torch.allclose(mean, per_sample.mean())
    assert torch.allclose(reconstruction_loss(out, target, "mse"), ((out - target) ** 2).sum(1))
