"""Encoder and decoder blocks shared by every model family.

Every encoder maps flat rows ``(n, n_features)`` to codes ``(n, latent_dim)`` and every decoder maps
codes back to flat rows of *pre-activation outputs* (logits for a sigmoid output), so estimators
keep the 2-D convention even for convolutional networks, and losses can use numerically stable
forms such as ``binary_cross_entropy_with_logits``.

Weights are initialised by :func:`reset_parameters` from an explicit ``torch.Generator`` (with
PyTorch's own default distributions), never from the global random state.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .errors import ParameterError

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "leaky_relu": nn.LeakyReLU,
    "linear": nn.Identity,
}


def make_activation(name: str | None) -> nn.Module:
    """Return a fresh activation module by name (``None`` or ``"linear"``: identity)."""
    if name is None:
        return nn.Identity()
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ParameterError(
            f"unknown activation {name!r}; choose one of {', '.join(sorted(ACTIVATIONS))}"
        ) from None


class TiedLinear(nn.Module):
    """A decoder layer whose weight is the transpose of an encoder layer's.

    For an encoder layer ``h = x W^T + c`` (``W`` of shape ``(out, in)``), the tied decoder layer
    computes ``x' = h W + b`` with its own bias ``b`` of size ``in``, as in the classic tied
    autoencoder ``z = s(W' y + b')`` with ``W' = W^T``. The encoder layer is referenced, not
    registered as a submodule, so the shared weight appears once in ``state_dict`` (safetensors
    refuses shared tensors) and belongs to the encoder.
    """

    def __init__(self, source: nn.Linear):
        super().__init__()
        object.__setattr__(self, "source", source)  # not a submodule: see the class docstring
        self.bias = nn.Parameter(torch.zeros(source.in_features))

    @property
    def in_features(self) -> int:
        return self.source.out_features

    @property
    def out_features(self) -> int:
        return self.source.in_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.source.weight.t(), self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, tied=True"


def _mlp(sizes: Sequence[int], activation: str, last_activation: str | None) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(n_in, n_out))
        is_last = i == len(sizes) - 2
        act = last_activation if is_last else activation
        if act not in (None, "linear"):
            layers.append(make_activation(act))
    return nn.Sequential(*layers)


class MLPEncoder(nn.Sequential):
    """``n_features -> hidden[0] -> ... -> hidden[-1] -> latent_dim`` (linear code by default)."""

    def __init__(
        self,
        n_features: int,
        hidden: Sequence[int],
        latent_dim: int,
        activation: str = "relu",
        code_activation: str | None = None,
    ):
        super().__init__(*_mlp([n_features, *hidden, latent_dim], activation, code_activation))


class MLPDecoder(nn.Sequential):
    """``latent_dim -> hidden[0] -> ... -> n_features`` (pre-activation output).

    With ``tied_to`` (an :class:`MLPEncoder`), every linear layer is a :class:`TiedLinear` that
    reuses the transpose of the mirrored encoder layer; ``hidden`` must then mirror the encoder.
    """

    def __init__(
        self,
        latent_dim: int,
        hidden: Sequence[int],
        n_features: int,
        activation: str = "relu",
        tied_to: MLPEncoder | None = None,
    ):
        if tied_to is None:
            super().__init__(*_mlp([latent_dim, *hidden, n_features], activation, None))
            return
        linears = [m for m in tied_to if isinstance(m, nn.Linear)]
        expected = [lin.in_features for lin in reversed(linears)][:-1]
        if list(hidden) != expected:
            raise ParameterError(
                f"tied weights need a decoder that mirrors the encoder: decoder hidden sizes "
                f"{tuple(hidden)} differ from the mirrored encoder {tuple(expected)}"
            )
        layers: list[nn.Module] = []
        for i, lin in enumerate(reversed(linears)):
            layers.append(TiedLinear(lin))
            if i < len(linears) - 1:
                layers.append(make_activation(activation))
        super().__init__(*layers)


def conv_output_sizes(size: int, n_layers: int) -> list[int]:
    """Spatial sizes after each stride-2 convolution (kernel 4, padding 1): ``floor(s / 2)``."""
    sizes = [size]
    for _ in range(n_layers):
        sizes.append((sizes[-1] + 2 - 4) // 2 + 1)
    return sizes


class ConvEncoder(nn.Module):
    """Stride-2 convolutions (kernel 4, padding 1) that halve height and width, then a linear code.

    ``channels[i]`` is the number of feature maps of convolution ``i`` (the ``hidden`` spec of the
    estimators). Input rows are flat ``C*H*W`` vectors, reshaped here to ``(C, H, W)``.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        channels: Sequence[int],
        latent_dim: int,
        activation: str = "relu",
        code_activation: str | None = None,
    ):
        super().__init__()
        c, h, w = (int(s) for s in input_shape)
        hs, ws = conv_output_sizes(h, len(channels)), conv_output_sizes(w, len(channels))
        if min(hs[-1], ws[-1]) < 1:
            raise ParameterError(
                f"input_shape {tuple(input_shape)} is too small for {len(channels)} stride-2 "
                f"convolutions (each halves height and width); use fewer conv layers in `hidden`"
            )
        self.input_shape = (c, h, w)
        layers: list[nn.Module] = [nn.Unflatten(1, (c, h, w))]
        n_in = c
        for n_out in channels:
            layers += [nn.Conv2d(n_in, n_out, 4, stride=2, padding=1), make_activation(activation)]
            n_in = n_out
        layers += [nn.Flatten(), nn.Linear(n_in * hs[-1] * ws[-1], latent_dim)]
        if code_activation not in (None, "linear"):
            layers.append(make_activation(code_activation))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ConvDecoder(nn.Module):
    """The mirror of :class:`ConvEncoder`: a linear layer, then stride-2 transposed convolutions.

    ``output_padding`` is chosen per layer so the output has exactly the input's height and width,
    odd sizes included (28 -> 14 -> 7 -> 14 -> 28). Output rows are flat pre-activation values.
    """

    def __init__(
        self,
        latent_dim: int,
        channels: Sequence[int],
        output_shape: Sequence[int],
        activation: str = "relu",
    ):
        super().__init__()
        c, h, w = (int(s) for s in output_shape)
        hs, ws = conv_output_sizes(h, len(channels)), conv_output_sizes(w, len(channels))
        if min(hs[-1], ws[-1]) < 1:
            raise ParameterError(
                f"output shape {tuple(output_shape)} is too small for {len(channels)} "
                "stride-2 transposed convolutions; use fewer conv layers in `hidden`"
            )
        # `channels` lists the decoder's feature maps from the code outwards.
        chans = [*channels, c]
        layers: list[nn.Module] = [
            nn.Linear(latent_dim, chans[0] * hs[-1] * ws[-1]),
            make_activation(activation),
            nn.Unflatten(1, (chans[0], hs[-1], ws[-1])),
        ]
        n = len(channels)
        for i in range(n):
            k = n - i  # current spatial index: from hs[n] up to hs[0]
            pad = (hs[k - 1] - 2 * hs[k], ws[k - 1] - 2 * ws[k])
            layers.append(
                nn.ConvTranspose2d(chans[i], chans[i + 1], 4, 2, padding=1, output_padding=pad)
            )
            if i < n - 1:
                layers.append(make_activation(activation))
        layers.append(nn.Flatten())
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


def build_encoder_decoder(
    *,
    n_features: int,
    latent_dim: int,
    hidden: Sequence[int],
    decoder_hidden: Sequence[int] | None = None,
    activation: str = "relu",
    architecture: str = "mlp",
    input_shape: Sequence[int] | None = None,
    tied: bool = False,
    code_activation: str | None = None,
) -> tuple[nn.Module, nn.Module]:
    """Build an encoder and a decoder from the spec shared by all estimators.

    Parameters
    ----------
    n_features : int
        Width of the flat input rows.
    latent_dim : int
        Width of the code.
    hidden : sequence of int
        MLP: the hidden layer widths from the input inwards. Conv: the feature maps of each
        stride-2 convolution.
    decoder_hidden : sequence of int, optional
        The decoder's widths from the code outwards; by default the mirror of ``hidden``.
    activation : str
        Hidden-layer activation (see :data:`ACTIVATIONS`).
    architecture : {"mlp", "conv"}
    input_shape : (C, H, W), optional
        Needed for ``"conv"``; ``C * H * W`` must equal ``n_features``.
    tied : bool
        Decoder weights are the encoder's transposed (MLP only).
    code_activation : str, optional
        Activation of the code layer (``None``: linear code).

    Returns
    -------
    encoder, decoder : torch.nn.Module
        ``encoder: (n, n_features) -> (n, latent_dim)``, ``decoder: (n, latent_dim) ->
        (n, n_features)`` returning pre-activation outputs.
    """
    hidden = tuple(int(h) for h in hidden)
    dec_hidden = tuple(reversed(hidden)) if decoder_hidden is None else tuple(decoder_hidden)
    if architecture == "mlp":
        encoder = MLPEncoder(n_features, hidden, latent_dim, activation, code_activation)
        decoder = MLPDecoder(
            latent_dim, dec_hidden, n_features, activation, tied_to=encoder if tied else None
        )
        return encoder, decoder
    if architecture == "conv":
        if tied:
            raise ParameterError("tied=True is only available for architecture='mlp'")
        if input_shape is None or len(input_shape) != 3:
            raise ParameterError(
                "architecture='conv' needs input_shape=(channels, height, width), or 4-D input "
                f"(n, C, H, W) to learn it from; got input_shape={input_shape!r}"
            )
        if math.prod(input_shape) != n_features:
            raise ParameterError(
                f"input_shape {tuple(input_shape)} has {math.prod(input_shape)} values per image, "
                f"but X has {n_features} features"
            )
        if not hidden:
            raise ParameterError("architecture='conv' needs at least one conv layer in `hidden`")
        encoder = ConvEncoder(input_shape, hidden, latent_dim, activation, code_activation)
        decoder = ConvDecoder(latent_dim, dec_hidden, input_shape, activation)
        return encoder, decoder
    raise ParameterError(f"unknown architecture {architecture!r}; choose 'mlp' or 'conv'")


@torch.no_grad()
def reset_parameters(module: nn.Module, generator: torch.Generator) -> None:
    """Initialise every linear and convolution layer with PyTorch's defaults, from ``generator``.

    PyTorch's own ``reset_parameters`` draws from the global random state; this reproduces the same
    distributions (Kaiming-uniform weights with ``a = sqrt(5)``, biases uniform in
    ``+-1/sqrt(fan_in)``) from an explicit generator, so a seed gives the same weights without
    touching global state. Tied decoder biases start at zero. A submodule whose class sets
    ``keeps_own_init`` (a user's network, :mod:`aekit.networks`) is left as it was built.
    """
    for m in _own_modules(module):
        if isinstance(m, nn.Linear | nn.Conv2d | nn.ConvTranspose2d):
            nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5), generator=generator)
            if m.bias is not None:
                # fan_in as PyTorch computes it: weight dim 1 times the kernel size (this is the
                # input width for Linear and Conv2d, and the output channels for ConvTranspose2d).
                fan_in = m.weight[0].numel()
                bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
                nn.init.uniform_(m.bias, -bound, bound, generator=generator)
        elif isinstance(m, TiedLinear):
            m.bias.zero_()


def _own_modules(module: nn.Module):
    """``module.modules()`` without the subtrees of modules that keep their own initialisation."""
    yield module
    if getattr(module, "keeps_own_init", False):
        return
    for child in module.children():
        if getattr(child, "keeps_own_init", False):
            continue
        yield from _own_modules(child)
