"""Encoder and decoder blocks shared by every model family.

Every encoder maps flat rows ``(n, n_features)`` to codes ``(n, latent_dim)`` and every decoder maps
codes back to flat rows of *pre-activation outputs* (logits for a sigmoid output), so estimators
keep the 2-D convention even for convolutional networks, and losses can use numerically stable
forms such as ``binary_cross_entropy_with_logits``.

The architectures (``architecture=``):

``"mlp"``
    Dense layers ``n_features -> hidden[0] -> ... -> latent_dim`` and back (``tied`` shares the
    transposed weights). The convolution spec below does not apply: values other than its
    defaults are refused with a :class:`ParameterError`.
``"conv"``
    Images ``(C, H, W)`` (any size and channel count; rows are flat ``C*H*W``). Encoder stage ``i``:
    a convolution to ``hidden[i]`` maps with kernel ``kernel_size``, stride ``strides[i]`` and
    padding ``(kernel_size - 1) // 2``, the ``norm``, the activation, then ``residual_blocks``
    residual blocks (two 3x3 convolutions with the norm and activation, and a skip connection);
    then a linear code. The decoder mirrors it: a linear layer, then per stage (from the code
    outwards, maps ``decoder_hidden``, the mirror of ``hidden`` by default) the residual blocks
    and a transposed convolution whose ``output_padding`` restores exactly the size the mirror
    convolution took, odd sizes included; no norm or activation after the last one.
``"sequence"``
    Multivariate windows ``(T, C)``: ``T`` time steps of ``C`` channels, rows flattened
    row-major (column ``t * C + c``); decoders return rows in the same order.
    ``sequence_cell="conv"``: the ``"conv"`` network with 1-d convolutions over time (channels
    are the convolution's input maps). ``sequence_cell="gru"``: GRU layers of widths ``hidden``
    over time, the code a linear map of the last layer's final state; the decoder repeats the
    code at every step into GRU layers of widths ``decoder_hidden`` (mirrored by default), then
    a per-step linear map to the ``C`` channels. GRUs use their own gates, not ``activation``;
    the convolution spec does not apply to them (non-default values are refused).

The convolution spec: ``kernel_size`` (default 4), ``strides`` (an int for every stage, or one per
stage of ``hidden``; default 2), ``norm`` (``"none"``, ``"batch"``, ``"group"``: GroupNorm with up
to 32 groups of at least 2 channels, ``"layer"``: GroupNorm with one group, i.e. LayerNorm over
the maps and positions of each sample), ``residual_blocks`` per stage (default 0). With the
defaults the networks are exactly those of earlier versions (kernel 4, stride 2, padding 1: each
stage halves the size; the same modules, state_dict keys and seeded weights), so their saved
models load. A combination that does not fit the input (a stage left with no positions) is a
:class:`ParameterError` that names the parameters to change.

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

ARCHITECTURES = ("mlp", "conv", "sequence")


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


# ---------------------------------------------------------------------------------------------
# Convolutional networks: images (C, H, W) with 2-d convolutions, sequences (T, C) with 1-d ones.

NORMS = ("none", "batch", "group", "layer")
SEQUENCE_CELLS = ("conv", "gru")
CONVOLUTIONS = (nn.Conv1d, nn.Conv2d, nn.ConvTranspose1d, nn.ConvTranspose2d)
# The conv spec's defaults: with these, the networks are exactly those of aekit <= 0.x (kernel 4,
# stride 2, padding 1, no norm, no residual blocks), module for module, so saved models load.
CONV_DEFAULTS: dict[str, object] = {
    "kernel_size": 4,
    "strides": 2,
    "norm": "none",
    "residual_blocks": 0,
}


def norm_groups(channels: int) -> int:
    """Groups of ``norm="group"``: the most (up to 32) that divide ``channels`` into groups of at
    least 2 channels (1 group for a single channel)."""
    return max((g for g in range(1, 33) if channels % g == 0 and channels // g >= 2), default=1)


def make_norm(norm: str, channels: int, dims: int) -> nn.Module | None:
    """The normalisation layer after a convolution of ``channels`` maps (None for ``"none"``).

    ``"batch"``: BatchNorm over the batch and positions; ``"group"``: GroupNorm with
    :func:`norm_groups` groups; ``"layer"``: GroupNorm with one group, i.e. LayerNorm over
    channels and positions of each sample (independent of the input size)."""
    if norm == "none":
        return None
    if norm == "batch":
        return (nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d)(channels)
    if norm == "group":
        return nn.GroupNorm(norm_groups(channels), channels)
    if norm == "layer":
        return nn.GroupNorm(1, channels)
    raise ParameterError(f"unknown norm {norm!r}; choose one of {', '.join(map(repr, NORMS))}")


def _conv(dims: int, transposed: bool = False) -> type[nn.Module]:
    if transposed:
        return nn.ConvTranspose1d if dims == 1 else nn.ConvTranspose2d
    return nn.Conv1d if dims == 1 else nn.Conv2d


def _normed(layers: list[nn.Module], norm: str, channels: int, dims: int) -> list[nn.Module]:
    n = make_norm(norm, channels, dims)
    return layers if n is None else [*layers, n]


class ResidualBlock(nn.Module):
    """``act(x + norm(conv3(act(norm(conv3(x))))))``: two 3x3 (3 for sequences) convolutions
    that keep the size and the number of maps, with a skip connection (He et al. 2016)."""

    def __init__(self, channels: int, dims: int, norm: str, activation: str):
        super().__init__()
        conv = _conv(dims)
        body = _normed([conv(channels, channels, 3, padding=1)], norm, channels, dims)
        body.append(make_activation(activation))
        body += _normed([conv(channels, channels, 3, padding=1)], norm, channels, dims)
        self.body = nn.Sequential(*body)
        self.act = make_activation(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.body(x))


class Transpose(nn.Module):
    """Swap axes 1 and 2: ``(n, T, C) <-> (n, C, T)`` (rows are time-major, convs channel-major)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(1, 2)


def stage_strides(strides: int | Sequence[int], n_stages: int) -> tuple[int, ...]:
    """One stride per stage from ``strides``: an int (or a 1-tuple) for every stage, or a tuple
    with one per stage."""
    if isinstance(strides, int):
        return (int(strides),) * n_stages
    strides = tuple(int(s) for s in strides)
    if len(strides) == 1:
        return strides * n_stages
    if len(strides) != n_stages:
        raise ParameterError(
            f"strides={strides} has {len(strides)} values for {n_stages} conv stages (hidden has "
            f"{n_stages} entries); give one stride per stage, or one int for all"
        )
    return strides


def conv_output_sizes(
    size: int, n_layers: int, kernel_size: int = 4, strides: int | Sequence[int] = 2
) -> list[int]:
    """Sizes along one axis after each convolution with padding ``(kernel_size - 1) // 2``:
    ``floor((s + 2p - k) / stride) + 1`` (the defaults: ``floor(s / 2)``). A size below 1 means
    the input is too small."""
    pad = (kernel_size - 1) // 2
    sizes = [int(size)]
    for stride in stage_strides(strides, n_layers):
        sizes.append((sizes[-1] + 2 * pad - kernel_size) // stride + 1 if sizes[-1] >= 1 else 0)
    return sizes


def transposed_output_padding(size_in: int, size_out: int, kernel_size: int, stride: int) -> int:
    """The ``output_padding`` with which a transposed convolution maps ``size_in`` back to exactly
    ``size_out``: ``size_out - ((size_in - 1) * stride - 2p + k)``, in ``[0, stride)`` whenever
    the forward convolution maps ``size_out`` to ``size_in``."""
    pad = (kernel_size - 1) // 2
    return size_out - ((size_in - 1) * stride - 2 * pad + kernel_size)


def _spatial_sizes(spatial, n_stages, kernel_size, strides, what: str) -> list[tuple[int, ...]]:
    """Sizes per stage (stage 0: the input), or a ParameterError naming what to change."""
    per_axis = [conv_output_sizes(s, n_stages, kernel_size, strides) for s in spatial]
    sizes = [tuple(axis[i] for axis in per_axis) for i in range(n_stages + 1)]
    for i, s in enumerate(sizes[1:], 1):
        if min(s) < 1:
            raise ParameterError(
                f"{what} is too small for {n_stages} convolutions with kernel_size={kernel_size}"
                f", strides={strides!r}: stage {i} would have size {max(min(s), 0)}. Use fewer "
                "stages in `hidden` (or decoder_hidden), smaller strides or a smaller kernel_size"
            )
    return sizes


class ConvEncoder(nn.Module):
    """Convolution stages, then a linear code.

    Stage ``i`` is a convolution to ``channels[i]`` maps (kernel ``kernel_size``, stride
    ``strides[i]``, padding ``(kernel_size - 1) // 2``), the norm, the activation, and
    ``residual_blocks`` :class:`ResidualBlock` s. Input rows are flat ``C*H*W`` vectors, reshaped
    here to ``(C, H, W)``. The defaults (kernel 4, stride 2: each stage halves height and width)
    give the layout of earlier aekit versions, module for module.
    """

    dims = 2

    def __init__(
        self,
        input_shape: Sequence[int],
        channels: Sequence[int],
        latent_dim: int,
        activation: str = "relu",
        code_activation: str | None = None,
        *,
        kernel_size: int = 4,
        strides: int | Sequence[int] = 2,
        norm: str = "none",
        residual_blocks: int = 0,
    ):
        super().__init__()
        self.input_shape = tuple(int(s) for s in input_shape)
        n_in, spatial, head = self._head(self.input_shape)
        sizes = _spatial_sizes(spatial, len(channels), kernel_size, strides,
                               f"input_shape {self.input_shape}")  # fmt: skip
        conv = _conv(self.dims)
        pad = (kernel_size - 1) // 2
        layers: list[nn.Module] = head
        for n_out, stride in zip(channels, stage_strides(strides, len(channels)), strict=True):
            layers += _normed([conv(n_in, n_out, kernel_size, stride=stride, padding=pad)],
                              norm, n_out, self.dims)  # fmt: skip
            layers.append(make_activation(activation))
            layers += [ResidualBlock(n_out, self.dims, norm, activation)
                       for _ in range(residual_blocks)]  # fmt: skip
            n_in = n_out
        layers += [nn.Flatten(), nn.Linear(n_in * math.prod(sizes[-1]), latent_dim)]
        if code_activation not in (None, "linear"):
            layers.append(make_activation(code_activation))
        self.net = nn.Sequential(*layers)

    @staticmethod
    def _head(shape: tuple[int, ...]) -> tuple[int, tuple[int, ...], list[nn.Module]]:
        """(input channels, spatial sizes, the layers that shape flat rows for the convs)."""
        c, h, w = shape
        return c, (h, w), [nn.Unflatten(1, shape)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ConvDecoder(nn.Module):
    """The mirror of :class:`ConvEncoder`: a linear layer, then transposed convolution stages.

    ``channels`` lists the decoder's maps from the code outwards and ``strides`` the encoder's
    strides (applied here in reverse). Stage ``i`` is ``residual_blocks`` residual blocks, then a
    transposed convolution, its norm and activation (none after the last, which gives the
    output). ``output_padding`` is chosen per stage so that the output has exactly the input's
    size, odd sizes included (28 -> 14 -> 7 -> 14 -> 28). Output rows are flat pre-activation
    values.
    """

    dims = 2

    def __init__(
        self,
        latent_dim: int,
        channels: Sequence[int],
        output_shape: Sequence[int],
        activation: str = "relu",
        *,
        kernel_size: int = 4,
        strides: int | Sequence[int] = 2,
        norm: str = "none",
        residual_blocks: int = 0,
    ):
        super().__init__()
        self.output_shape = tuple(int(s) for s in output_shape)
        c, spatial, tail = self._tail(self.output_shape)
        n = len(channels)
        enc_strides = stage_strides(strides, n)  # input side first, as in the encoder
        sizes = _spatial_sizes(spatial, n, kernel_size, enc_strides,
                               f"output shape {self.output_shape}")  # fmt: skip
        chans = [*channels, c]
        layers: list[nn.Module] = [
            nn.Linear(latent_dim, chans[0] * math.prod(sizes[-1])),
            make_activation(activation),
            nn.Unflatten(1, (chans[0], *sizes[-1])),
        ]
        conv = _conv(self.dims, transposed=True)
        pad = (kernel_size - 1) // 2
        for i in range(n):
            k = n - i  # current size index: from sizes[n] up to sizes[0]
            stride = enc_strides[k - 1]
            out_pad = tuple(
                transposed_output_padding(a, b, kernel_size, stride)
                for a, b in zip(sizes[k], sizes[k - 1], strict=True)
            )
            layers += [ResidualBlock(chans[i], self.dims, norm, activation)
                       for _ in range(residual_blocks)]  # fmt: skip
            layers.append(conv(chans[i], chans[i + 1], kernel_size, stride, padding=pad,
                               output_padding=out_pad))  # fmt: skip
            if i < n - 1:
                layers = _normed(layers, norm, chans[i + 1], self.dims)
                layers.append(make_activation(activation))
        layers += tail
        self.net = nn.Sequential(*layers)

    @staticmethod
    def _tail(shape: tuple[int, ...]) -> tuple[int, tuple[int, ...], list[nn.Module]]:
        """(output channels, spatial sizes, the layers that make flat rows of the conv output)."""
        c, h, w = shape
        return c, (h, w), [nn.Flatten()]

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class SequenceConvEncoder(ConvEncoder):
    """:class:`ConvEncoder` over time: rows are flat ``(T, C)`` windows (time-major), reshaped to
    ``(C, T)`` for strided 1-d convolutions, then a linear code."""

    dims = 1

    @staticmethod
    def _head(shape):
        t, c = shape
        return c, (t,), [nn.Unflatten(1, shape), Transpose()]


class SequenceConvDecoder(ConvDecoder):
    """The mirror of :class:`SequenceConvEncoder` (transposed 1-d convolutions giving back
    exactly ``T`` steps); output rows are flat ``(T, C)`` windows in row-major order."""

    dims = 1

    @staticmethod
    def _tail(shape):
        t, c = shape
        return c, (t,), [Transpose(), nn.Flatten()]


class GRUEncoder(nn.Module):
    """GRU layers of widths ``hidden`` over the ``T`` steps of a ``(T, C)`` window; the code is a
    linear map of the last layer's final hidden state."""

    def __init__(
        self,
        input_shape: Sequence[int],
        hidden: Sequence[int],
        latent_dim: int,
        code_activation: str | None = None,
    ):
        super().__init__()
        self.input_shape = tuple(int(s) for s in input_shape)
        widths = [self.input_shape[1], *hidden]
        self.grus = nn.ModuleList(
            nn.GRU(a, b, batch_first=True) for a, b in itertools.pairwise(widths)
        )
        self.code = nn.Linear(widths[-1], latent_dim)
        self.code_activation = make_activation(code_activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.reshape(x.shape[0], *self.input_shape)
        for gru in self.grus:
            h, _ = gru(h)
        return self.code_activation(self.code(h[:, -1]))


class GRUDecoder(nn.Module):
    """The code repeated at each of ``T`` steps, GRU layers of widths ``hidden`` (from the code
    outwards), then a linear map of each step's state to the ``C`` channels; output rows are flat
    ``(T, C)`` windows in row-major order (pre-activation)."""

    def __init__(self, latent_dim: int, hidden: Sequence[int], output_shape: Sequence[int]):
        super().__init__()
        self.output_shape = tuple(int(s) for s in output_shape)
        widths = [latent_dim, *hidden]
        self.grus = nn.ModuleList(
            nn.GRU(a, b, batch_first=True) for a, b in itertools.pairwise(widths)
        )
        self.out = nn.Linear(widths[-1], self.output_shape[1])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = z.unsqueeze(1).expand(-1, self.output_shape[0], -1).contiguous()
        for gru in self.grus:
            h, _ = gru(h)
        return self.out(h).flatten(1)


def _check_shape(architecture: str, input_shape, n_features: int, expected: str) -> tuple:
    if input_shape is None or len(input_shape) != len(expected.split(",")):
        learn = ("3-D input (n, T, C)" if architecture == "sequence"
                 else "4-D input (n, C, H, W)")  # fmt: skip
        raise ParameterError(
            f"architecture={architecture!r} needs input_shape={expected}, or {learn} to learn "
            f"it from; got input_shape={input_shape!r}"
        )
    if math.prod(input_shape) != n_features:
        raise ParameterError(
            f"input_shape {tuple(input_shape)} has {math.prod(input_shape)} values per sample, "
            f"but X has {n_features} features"
        )
    return tuple(int(s) for s in input_shape)


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
    kernel_size: int = 4,
    strides: int | Sequence[int] = 2,
    norm: str = "none",
    residual_blocks: int = 0,
    sequence_cell: str = "conv",
) -> tuple[nn.Module, nn.Module]:
    """Build an encoder and a decoder from the spec shared by all estimators.

    Parameters
    ----------
    n_features : int
        Width of the flat input rows.
    latent_dim : int
        Width of the code.
    hidden : sequence of int
        MLP: the hidden layer widths from the input inwards. Conv (images and sequences): the
        feature maps of each stage. GRU: the widths of the GRU layers.
    decoder_hidden : sequence of int, optional
        The decoder's widths from the code outwards; by default the mirror of ``hidden``.
    activation : str
        Hidden-layer activation (see :data:`ACTIVATIONS`); not used by GRU layers.
    architecture : {"mlp", "conv", "sequence"}
    input_shape : (C, H, W) or (T, C), optional
        Needed for ``"conv"`` (``(C, H, W)``) and ``"sequence"`` (``(T, C)``); its product must
        equal ``n_features``.
    tied : bool
        Decoder weights are the encoder's transposed (MLP only).
    code_activation : str, optional
        Activation of the code layer (``None``: linear code).
    kernel_size, strides, norm, residual_blocks
        The convolution spec (``"conv"``, and ``"sequence"`` with ``sequence_cell="conv"``; see
        the module docstring). Other architectures refuse values other than the defaults.
    sequence_cell : {"conv", "gru"}
        The layers of ``architecture="sequence"``.

    Returns
    -------
    encoder, decoder : torch.nn.Module
        ``encoder: (n, n_features) -> (n, latent_dim)``, ``decoder: (n, latent_dim) ->
        (n, n_features)`` returning pre-activation outputs.
    """
    if architecture not in ARCHITECTURES:
        raise ParameterError(
            f"unknown architecture {architecture!r}; choose one of "
            f"{', '.join(map(repr, ARCHITECTURES))}"
        )
    if sequence_cell not in SEQUENCE_CELLS:
        raise ParameterError(
            f"unknown sequence_cell {sequence_cell!r}; choose one of "
            f"{', '.join(map(repr, SEQUENCE_CELLS))}"
        )
    hidden = tuple(int(h) for h in hidden)
    dec_hidden = tuple(reversed(hidden)) if decoder_hidden is None else tuple(decoder_hidden)
    convolutional = architecture == "conv" or (
        architecture == "sequence" and sequence_cell == "conv"
    )
    conv_spec = {"kernel_size": kernel_size, "strides": strides, "norm": norm,
                 "residual_blocks": residual_blocks}  # fmt: skip
    if not convolutional:
        changed = [k for k, v in conv_spec.items() if _differs(v, CONV_DEFAULTS[k])]
        if changed:
            where = f"architecture={architecture!r}"
            if architecture == "sequence":
                where += " with sequence_cell='gru'"
            raise ParameterError(
                f"{', '.join(f'{k}={conv_spec[k]!r}' for k in changed)}: "
                f"{'applies' if len(changed) == 1 else 'apply'} to convolutions only "
                "(architecture='conv', or 'sequence' with sequence_cell='conv'), not to "
                f"{where}; leave {' and '.join(changed)} at the default or change the architecture"
            )
    if architecture != "sequence" and sequence_cell != "conv":
        raise ParameterError(
            f"sequence_cell={sequence_cell!r} applies to architecture='sequence' only, not to "
            f"architecture={architecture!r}; leave sequence_cell='conv' or use "
            "architecture='sequence'"
        )
    if tied and architecture != "mlp":
        raise ParameterError("tied=True is only available for architecture='mlp'")
    if architecture == "mlp":
        encoder = MLPEncoder(n_features, hidden, latent_dim, activation, code_activation)
        decoder = MLPDecoder(
            latent_dim, dec_hidden, n_features, activation, tied_to=encoder if tied else None
        )
        return encoder, decoder
    if architecture == "conv":
        shape = _check_shape(architecture, input_shape, n_features, "(channels, height, width)")
    else:
        shape = _check_shape(architecture, input_shape, n_features, "(time_steps, channels)")
    if not hidden or not dec_hidden:
        which = "`hidden`" if not hidden else "`decoder_hidden`"
        layers = "GRU" if not convolutional else "conv"
        raise ParameterError(
            f"architecture={architecture!r} needs at least one {layers} layer in {which}"
        )
    if not convolutional:
        return (GRUEncoder(shape, hidden, latent_dim, code_activation),
                GRUDecoder(latent_dim, dec_hidden, shape))  # fmt: skip
    enc_strides = stage_strides(strides, len(hidden))
    if len(dec_hidden) == len(hidden):
        dec_strides: int | tuple[int, ...] = enc_strides
    elif len(set(enc_strides)) == 1:
        dec_strides = enc_strides[0]
    else:
        raise ParameterError(
            f"strides={tuple(strides)} gives one stride per stage of `hidden`, but decoder_hidden="
            f"{dec_hidden} has {len(dec_hidden)} stages: the decoder mirrors the strides, so give "
            "decoder_hidden as many stages as hidden, or one int stride for all"
        )
    spec = {"kernel_size": int(kernel_size), "norm": norm, "residual_blocks": int(residual_blocks)}
    if norm not in NORMS:
        raise ParameterError(f"unknown norm {norm!r}; choose one of {', '.join(map(repr, NORMS))}")
    if architecture == "conv":
        enc_cls, dec_cls = ConvEncoder, ConvDecoder
    else:
        enc_cls, dec_cls = SequenceConvEncoder, SequenceConvDecoder
    encoder = enc_cls(shape, hidden, latent_dim, activation, code_activation,
                      strides=strides, **spec)  # fmt: skip
    decoder = dec_cls(latent_dim, dec_hidden, shape, activation, strides=dec_strides, **spec)
    return encoder, decoder


def _differs(value, default) -> bool:
    """Whether a spec value is not its default (a 1-tuple of strides equals the int)."""
    if isinstance(value, tuple | list):
        return tuple(value) != (default,)
    return value != default


@torch.no_grad()
def reset_parameters(module: nn.Module, generator: torch.Generator) -> None:
    """Initialise every linear, convolution and GRU layer with PyTorch's defaults, from
    ``generator``.

    PyTorch's own ``reset_parameters`` draws from the global random state; this reproduces the same
    distributions (Kaiming-uniform weights with ``a = sqrt(5)``, biases uniform in
    ``+-1/sqrt(fan_in)``; every GRU weight and bias uniform in ``+-1/sqrt(hidden_size)``) from an
    explicit generator, so a seed gives the same weights without touching global state. Tied
    decoder biases start at zero; norm layers keep their constant initialisation (ones, zeros).
    A submodule whose class sets ``keeps_own_init`` (a user's network, :mod:`aekit.networks`)
    is left as it was built.
    """
    for m in _own_modules(module):
        if isinstance(m, (nn.Linear, *CONVOLUTIONS)):
            nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5), generator=generator)
            if m.bias is not None:
                # fan_in as PyTorch computes it: weight dim 1 times the kernel size (this is the
                # input width for Linear and Conv, and the output channels for ConvTranspose).
                fan_in = m.weight[0].numel()
                bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
                nn.init.uniform_(m.bias, -bound, bound, generator=generator)
        elif isinstance(m, nn.GRU):
            bound = 1 / math.sqrt(m.hidden_size)
            for p in m.parameters():
                nn.init.uniform_(p, -bound, bound, generator=generator)
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
