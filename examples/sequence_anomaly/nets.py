"""Networks for multivariate windows ``(n, T, C)``, written as a PyTorch user writes them.

Nothing here imports aekit. Given ``input_shape=(T, C)``, aekit hands the encoder batches of
windows shaped ``(n, T, C)`` (time first, channels last, as ``nn.GRU(batch_first=True)`` takes
them) and passes the sizes the constructors name: ``input_shape``, ``out_features`` (the code
width) and ``in_features`` (the decoder's input width). Decoders return windows ``(n, T, C)``:
real values, for the squared-error loss.

Two pairs: 1-D convolutions along time (fast on a CPU), and GRUs (the classic sequence
autoencoder: the last hidden state is the summary, and the decoder unrolls from the code).
"""

from __future__ import annotations

import torch
from torch import nn


def _halve(size: int) -> int:
    """Output length of a size-5 convolution with stride 2 and padding 2."""
    return (size + 1) // 2


class ConvEncoder(nn.Module):
    """Windows ``(n, T, C)`` -> code: stride-2 1-D convolutions along time (64 -> 32 -> 16
    steps with the defaults), ReLU, then a linear layer.

    Parameters
    ----------
    input_shape : (T, C)
    out_features : int
    channels : sequence of int
        Feature maps of each convolution.
    """

    def __init__(self, input_shape, out_features, channels=(32, 64)):
        super().__init__()
        length, c = input_shape
        layers = []
        for ch in channels:
            layers += [nn.Conv1d(c, ch, 5, stride=2, padding=2), nn.ReLU()]
            c, length = ch, _halve(length)
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c * length, out_features)

    def forward(self, x):
        return self.head(self.features(x.transpose(1, 2)).flatten(1))


class ConvDecoder(nn.Module):
    """Code -> windows ``(n, T, C)``: the encoder's mirror, with transposed convolutions.

    Parameters
    ----------
    input_shape : (T, C)
    in_features : int
    channels : sequence of int
        The encoder's feature maps, in the encoder's order.
    """

    def __init__(self, input_shape, in_features, channels=(32, 64)):
        super().__init__()
        length, c = input_shape
        lengths = [length]
        for _ in channels:
            lengths.append(_halve(lengths[-1]))
        self.start = (channels[-1], lengths[-1])
        self.project = nn.Sequential(nn.Linear(in_features, channels[-1] * lengths[-1]), nn.ReLU())
        outs = [*reversed(channels[:-1]), c]
        layers, ch = [], channels[-1]
        for i, out in enumerate(outs):
            n_in, n_out = lengths[-1 - i], lengths[-2 - i]
            # 2 * n_in - 1 steps, plus one where the encoder halved an even length
            layers.append(nn.ConvTranspose1d(ch, out, 5, stride=2, padding=2,
                                             output_padding=n_out - (2 * n_in - 1)))  # fmt: skip
            if i < len(outs) - 1:
                layers.append(nn.ReLU())
            ch = out
        self.features = nn.Sequential(*layers)

    def forward(self, z):
        return self.features(self.project(z).reshape(len(z), *self.start)).transpose(1, 2)


class GRUEncoder(nn.Module):
    """Windows ``(n, T, C)`` -> code: a GRU reads the window; its last hidden state (of the top
    layer) goes through a linear layer to the code.

    Parameters
    ----------
    input_shape : (T, C)
    out_features : int
    hidden : int
    num_layers : int
    """

    def __init__(self, input_shape, out_features, hidden=64, num_layers=1):
        super().__init__()
        self.gru = nn.GRU(input_shape[1], hidden, num_layers=num_layers, batch_first=True)
        self.head = nn.Linear(hidden, out_features)

    def forward(self, x):
        _, h = self.gru(x)  # h: (num_layers, n, hidden)
        return self.head(h[-1])


class GRUDecoder(nn.Module):
    """Code -> windows ``(n, T, C)``: the code sets the initial hidden state and is fed at
    every step; a linear layer reads each step's hidden state out to the C channels.

    Parameters
    ----------
    input_shape : (T, C)
    in_features : int
    hidden : int
    num_layers : int
    """

    def __init__(self, input_shape, in_features, hidden=64, num_layers=1):
        super().__init__()
        self.length = input_shape[0]
        self.num_layers = num_layers
        self.init = nn.Linear(in_features, hidden * num_layers)
        self.gru = nn.GRU(in_features, hidden, num_layers=num_layers, batch_first=True)
        self.out = nn.Linear(hidden, input_shape[1])

    def forward(self, z):
        h0 = torch.tanh(self.init(z)).reshape(len(z), self.num_layers, -1).transpose(0, 1)
        steps = z.unsqueeze(1).expand(-1, self.length, -1)
        y, _ = self.gru(steps, h0.contiguous())
        return self.out(y)
