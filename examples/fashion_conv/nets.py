"""A convolutional encoder and decoder for 1x28x28 images, written as a PyTorch user writes them.

Nothing here imports aekit: these are plain ``nn.Module`` classes. aekit builds them inside
``fit`` and passes the sizes it knows to the constructor arguments named ``input_shape``,
``out_features`` (the encoder's output width: the code) and ``in_features`` (the decoder's input
width). The encoder receives image batches ``(n, C, H, W)``; the decoder returns images of the
same shape as logits (no final sigmoid: aekit's binary cross-entropy takes logits, stably).

Because ``train.py`` saves the model, aekit records these classes as ``"nets:ConvEncoder"`` and
``"nets:ConvDecoder"``; ``aekit.load(folder, trust_code=True)`` imports them again, so ``nets``
must be importable where the model is loaded (this folder on ``sys.path``).
"""

from __future__ import annotations

from torch import nn


def _halve(size: int) -> int:
    """Output size of a 3x3 convolution with stride 2 and padding 1."""
    return (size + 1) // 2


class ConvEncoder(nn.Module):
    """Images -> code: stride-2 3x3 convolutions (28 -> 14 -> 7 with the default two), each with
    BatchNorm and ReLU, then a linear layer to the code.

    Parameters
    ----------
    input_shape : (C, H, W)
    out_features : int
        The code width (aekit passes its ``latent_dim``).
    channels : sequence of int
        Feature maps of each convolution.
    """

    def __init__(self, input_shape, out_features, channels=(32, 64)):
        super().__init__()
        c, h, w = input_shape
        layers = []
        for ch in channels:
            layers += [nn.Conv2d(c, ch, 3, stride=2, padding=1, bias=False),
                       nn.BatchNorm2d(ch), nn.ReLU()]  # fmt: skip
            c, h, w = ch, _halve(h), _halve(w)
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c * h * w, out_features)

    def forward(self, x):
        return self.head(self.features(x).flatten(1))


class ConvDecoder(nn.Module):
    """Code -> image logits: the encoder's mirror, a linear layer to the smallest feature maps,
    then stride-2 transposed convolutions back to ``input_shape`` (BatchNorm and ReLU between
    them, none after the last: its outputs are the logits).

    Parameters
    ----------
    input_shape : (C, H, W)
    in_features : int
        The code width.
    channels : sequence of int
        The encoder's feature maps, in the encoder's order (the decoder runs them backwards).
    """

    def __init__(self, input_shape, in_features, channels=(32, 64)):
        super().__init__()
        c, h, w = input_shape
        sizes = [(h, w)]
        for _ in channels:
            sizes.append((_halve(sizes[-1][0]), _halve(sizes[-1][1])))
        self.start = (channels[-1], *sizes[-1])
        self.project = nn.Sequential(
            nn.Linear(in_features, channels[-1] * sizes[-1][0] * sizes[-1][1]), nn.ReLU()
        )
        outs = [*reversed(channels[:-1]), c]  # the channels each transposed convolution gives
        layers = []
        ch = channels[-1]
        for i, out in enumerate(outs):
            (h_in, w_in), (h_out, w_out) = sizes[-1 - i], sizes[-2 - i]
            # A 3x3, stride-2, padding-1 transposed convolution gives 2 * size - 1, plus
            # output_padding: 1 where the encoder halved an even size, 0 where an odd one.
            pad = (h_out - (2 * h_in - 1), w_out - (2 * w_in - 1))
            last = i == len(outs) - 1
            layers.append(nn.ConvTranspose2d(ch, out, 3, stride=2, padding=1, output_padding=pad,
                                             bias=last))  # fmt: skip
            if not last:
                layers += [nn.BatchNorm2d(out), nn.ReLU()]
            ch = out
        self.features = nn.Sequential(*layers)

    def forward(self, z):
        return self.features(self.project(z).reshape(len(z), *self.start))
