"""The basic undercomplete autoencoder: a funnel of layers to a narrow code and back.

``z = f(x)``, ``x_hat = g(z)``, trained to minimise the reconstruction loss ``L(x, g(f(x)))``:
squared error ``sum_j (x_j - x_hat_j)^2`` with a linear (or sigmoid) output, or binary
cross-entropy with a sigmoid output for data in [0, 1] (computed from the logits). With no hidden
layers and linear activations it learns the principal subspace of the data (Baldi and Hornik 1989),
so its error matches PCA's at the same code size; nonlinear layers let it beat PCA (Hinton and
Salakhutdinov 2006).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from .._params import Options, Sizes, param, param_of
from ..anomaly import OutlierMixin
from ..estimator import BaseAutoencoder
from ..losses import reconstruction_deviance, reconstruction_loss
from ..nn import ACTIVATIONS, make_activation
from ..training import Phase

OUTPUT_ACTIVATIONS = tuple(ACTIVATIONS)
#: The MLP's hidden widths when ``hidden=None`` (chosen on a validation split, issue 16).
MLP_HIDDEN = (512, 256)


class AutoencoderModule(nn.Module):
    """Encoder, decoder and the reconstruction objective (the base of every deterministic family).

    Parameters
    ----------
    encoder, decoder : nn.Module
        ``(n, n_features) -> (n, latent_dim)`` and back to pre-activation outputs.
    loss : {"mse", "bce"}
    output_activation : str
        Applied to the decoder's output for ``"mse"`` (any name in :data:`aekit.nn.ACTIVATIONS`);
        ``"bce"`` always means a sigmoid output, folded into the loss.
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, loss: str, output_activation: str):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.loss = loss
        self.output = make_activation("sigmoid" if loss == "bce" else output_activation)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        out = self.decoder(z)
        return self.output(out)

    def _loss_input(self, z: torch.Tensor) -> torch.Tensor:
        """What the loss compares with x: logits for BCE (stable form), the output for MSE."""
        return self.decoder(z) if self.loss == "bce" else self.decode(z)

    def reconstruction_loss(
        self, x: torch.Tensor, target: torch.Tensor | None = None, reduction: str = "none"
    ) -> torch.Tensor:
        """Loss of reconstructing ``target`` (default ``x``) from ``x``: per sample, shape (n,),
        or (``reduction="mean"``) its mean over the batch."""
        target = x if target is None else target
        return reconstruction_loss(self._loss_input(self.encode(x)), target, self.loss, reduction)

    def objective(self, x: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Mean per-sample reconstruction loss over the batch."""
        return {"loss": self.reconstruction_loss(x, reduction="mean")}

    def score_samples(self, x: torch.Tensor) -> torch.Tensor:
        """Minus the per-sample reconstruction deviance (the loss less that of a perfect
        reconstruction of the row: :func:`~aekit.losses.best_reconstruction_loss`)."""
        return -reconstruction_deviance(self._loss_input(self.encode(x)), x, self.loss)

    def phases(self) -> list[Phase]:
        return [Phase("reconstruction", self.objective, list(self.parameters()))]


@dataclass(kw_only=True, repr=False, eq=False)
class Autoencoder(OutlierMixin, BaseAutoencoder):
    """Undercomplete autoencoder, a scikit-learn transformer.

    Parameters
    ----------
    latent_dim : int, default=2
        Width of the code (``transform``'s output).
    hidden : tuple of int or None, default=None
        Hidden layer widths from the input inwards (``()`` for none). With
        ``architecture="conv"`` (or ``"sequence"`` with conv cells): the feature maps of each
        convolution stage; with GRU cells: the widths of the GRU layers. None: ``(512, 256)``
        for the MLP, ``(256, 128)`` for the other architectures. The MLP's default was
        ``(256, 128)`` before (CHANGELOG): the wider one reconstructs Fashion-MNIST better at
        30-D (0.49x PCA-30's error against 0.53x) and maps it as well in 2-D, at twice the
        CPU time (docs/experiments.md). A model saved with the old default keeps its widths.
    decoder_hidden : tuple of int, optional
        The decoder's widths from the code outwards; by default the mirror of ``hidden``.
    activation : str, default="relu"
        relu, sigmoid, tanh, elu, gelu, leaky_relu or linear.
    code_activation : str or None, default=None
        Activation of the code layer (None: a linear code). ``"sigmoid"`` with ``hidden=()``
        and ``tied=True`` gives the classic ``y = s(W x + b)``, ``z = s(W^T y + b')``.
    architecture : {"mlp", "conv", "sequence"}, default="mlp"
        Dense layers; convolutions over images ``(C, H, W)``; or layers over time for windows of
        a multivariate sequence ``(T, C)`` (``sequence_cell``). The networks are described in
        :mod:`aekit.nn`.
    input_shape : (C, H, W) or (T, C), optional
        Shape of each row: an image, learned from 4-D input ``(n, C, H, W)`` (3-D ``(n, H, W)``:
        gray images) when not given; or a window of ``T`` time steps of ``C`` channels, learned
        from 3-D input ``(n, T, C)`` with ``architecture="sequence"`` (rows are the windows
        flattened row-major). Needed for ``"conv"`` and ``"sequence"``, used for pictures
        otherwise. A 2-tuple makes 3-D input windows for any architecture.
    kernel_size : int, default=4
        Convolution kernel (``"conv"``, and ``"sequence"`` with ``sequence_cell="conv"``), with
        padding ``(kernel_size - 1) // 2``.
    strides : int or tuple of int, default=2
        Stride of every convolution stage, or one per stage of ``hidden`` (the decoder mirrors
        them; a 1-tuple counts for every stage). The transposed convolutions give back exactly
        the input size.
    norm : {"none", "batch", "group", "layer"}, default="none"
        Normalisation after each convolution (not after the decoder's output layer): batch norm,
        GroupNorm (up to 32 groups of at least 2 channels), or LayerNorm over each sample's maps
        (GroupNorm with one group).
    residual_blocks : int, default=0
        Residual blocks (two 3x3 convolutions with the norm and the activation, and a skip
        connection) after each encoder stage, mirrored in the decoder.
    sequence_cell : {"conv", "gru"}, default="conv"
        ``architecture="sequence"``: strided 1-d convolutions over time (with the convolution
        parameters above), or GRU layers (the code from the last state; the decoder runs the
        code, repeated at every step, through GRUs and a per-step linear layer).

        The convolution parameters apply to convolutions only, ``sequence_cell`` to sequences
        only: other architectures refuse values other than the defaults (a ParameterError
        naming them) rather than ignore them. With all defaults ``"conv"`` builds exactly the
        network of earlier versions (kernel 4, stride 2, no norm), whose saved models load.
    tied : bool, default=False
        Decoder weights are the transposed encoder weights (MLP only).
    encoder, decoder : nn.Module subclass, import path, nn.Module instance, or None
        Your own networks instead of the built-in ones (either or both; :mod:`aekit.networks`):
        a class, or ``"package.module:Name"``, built in ``fit`` as ``Name(**encoder_kwargs)``
        under ``random_state`` with the global random state left untouched; aekit adds
        ``input_shape``, ``n_features``, ``latent_dim``, ``out_features`` (the encoder's output
        width) and ``in_features`` (the decoder's input width) where the constructor names them.
        Or an instance: ``fit`` trains a copy, starting from its weights, and never changes it.
        The encoder receives batches shaped ``(n, *input_shape_)`` (images ``(n, C, H, W)``,
        windows ``(n, T, C)``, rows ``(n, n_features)``) and returns the code ``(n,
        latent_dim)``; the decoder takes codes and returns ``(n, *input_shape_)`` or ``(n,
        n_features)``, pre-activation: logits for ``loss="bce"`` (no final sigmoid: the loss
        applies it stably), the reconstruction for ``"mse"`` (then ``output_activation``).
        Both are checked on one batch before training, with an error naming the shapes.
        ``hidden``, ``activation`` and ``architecture`` shape only the built-in side. Saving
        records the class's import path and the weights; loading imports it only with
        ``aekit.load(path, trust_code=True)``, or takes it from ``objects=``.
    encoder_kwargs, decoder_kwargs : dict or None, default=None
        Keyword arguments of the classes' constructors (JSON values, to be saved).
    loss : {"auto", "mse", "bce"}, default="auto"
        Squared error summed over features, or binary cross-entropy with a sigmoid output for data
        in [0, 1] (checked). ``"auto"``: ``"bce"`` when the data of the first fit lie in [0, 1]
        (images scaled to [0, 1], min-max scaled tables), ``"mse"`` otherwise; the choice is
        ``loss_``, kept by ``save`` and by later ``partial_fit`` calls.
    output_activation : str, default="linear"
        Output of an ``"mse"`` model: "linear", "sigmoid" (data in [0, 1]) or any other
        activation name (``"bce"`` always uses a sigmoid).
    optimizer : {"adam", "adamw", "sgd"}, default="adam"
        ``"sgd"`` uses momentum 0.9.
    lr : float, default=1e-3
    lr_schedule : {"auto", "none", "cosine", "step", "plateau"}, default="auto"
        ``"auto"``: in ``fit`` (and ``continue_fit``), ``lr`` for the first four fifths of
        ``max_epochs``, then a half cosine down to 0 over the last fifth, per epoch (at least
        one epoch: with ``max_epochs`` under 5 the last epoch runs at ``lr / 2``); in
        ``partial_fit``, the constant ``lr``, where a rate held at 0 would silently stop a
        stream from learning. With ``early_stopping``, a run that stops before the last fifth
        never cools down. ``"cosine"``: the rate falls from ``lr`` to 0 along a half cosine over
        all ``max_epochs`` epochs, then stays at 0 (a short run learns less than with
        ``"auto"``). Either schedule ends where ``continue_fit``'s budget does: raising
        ``max_epochs`` after a finished run lays the schedule over the new ``max_epochs``, so
        ``"auto"`` returns to ``lr`` until the new last fifth, then cools down again.
        ``"step"``: x0.1 after a third and two thirds of ``max_epochs``. ``"plateau"``: x0.1
        after ``max(2, patience // 2)`` epochs without improvement.
    weight_decay : float, default=0.0
    batch_size : int, default=128
    max_epochs : int, default=100
    validation_fraction : float, default=0.1
        Share of the rows held out (a seeded random permutation) to report ``val_loss`` and drive
        early stopping, when ``fit`` gets no ``validation_data``. 0 turns it off.
    early_stopping : bool, default=False
        Stop when the validation loss (the training loss without validation rows) has not improved
        by ``min_delta`` for ``patience`` epochs.
    patience : int, default=10
    min_delta : float, default=0.0
        In the loss's per-sample unit.
    restore_best : bool, default=True
        After early stopping, restore the weights of the best epoch.
    random_state : int, RandomState or None, default=None
        Seeds the weights, the validation split, the batch order and any noise. The same int gives
        bit-identical results on the same machine, torch version and thread count.
    device : str, default="auto"
        "auto" (CUDA, then MPS, then CPU), "cpu", "cuda", "cuda:N" or "mps".
    precision : {"fp32", "bf16"}, default="fp32"
        "bf16": the objectives run under ``torch.autocast`` in bfloat16 (matrix products and
        convolutions; losses stay float32), with float32 weights and optimiser state.
    cuda_graphs : "auto" or bool, default="auto"
        On a CUDA device, capture each full-size training step (every phase, forward, backward
        and optimiser step) once in a CUDA graph and replay it: one launch per step instead of
        hundreds, which is what limits small models (5 to 9 times faster on an H200, see
        docs/benchmarks.md). The first steps run eagerly as the warm-up; the last, smaller
        batch of an epoch runs eagerly; a changed learning rate is captured anew. The noise of
        a captured step comes from the same generator but not in the same order as eagerly, so
        the two agree in distribution, not bit for bit. "auto": on a CUDA device, with Adam(W),
        in one process, and only where no code of the user's runs in the step (``encoder=``,
        ``decoder=``, ``discriminator=``, a prior function), whose Python a replay would skip;
        a step that still cannot be captured trains eagerly (a note on stderr with
        ``verbose``). True: wherever possible, user code included, and a ``UserWarning`` says
        why where not (another device, data-parallel training, SGD, a step that copies from
        the host or synchronises). False: never.
    verbose : int, default=0
        1: progress on stderr (a bar on a terminal, a line per epoch otherwise).

    Attributes
    ----------
    module_ : AutoencoderModule
    encoder_, decoder_ : torch.nn.Module
        ``(n, n_features) -> (n, latent_dim)`` and ``(n, latent_dim) -> (n, n_features)``
        (the decoder returns pre-activation outputs: logits for ``loss="bce"``).
    history_ : list of dict
        Per epoch: ``epoch``, ``loss`` and ``val_loss`` (mean per-sample loss), ``lr``,
        ``seconds``, ``samples_per_second``, ``best_epoch``.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when X had string column names.
    input_shape_ : tuple or None
        ``(C, H, W)`` of images, ``(T, C)`` of sequence windows, or None.
    device_ : torch.device
    n_epochs_ : int
        Epochs trained over the model's life (``fit`` plus ``partial_fit``).
    stop_reason_ : str
        "max_epochs", "early_stopping", "callback" or "interrupted".
    best_epoch_ : int
        The epoch of the best monitored loss (validation loss, else training loss; 0: the
        initial weights). The model holds that epoch's weights after early stopping (with
        ``restore_best=True``), a divergence or Ctrl-C; otherwise the last epoch's.
    n_train_rows_ : int
        Rows the last training used (after the validation split; a classifier's labelled rows).
    loss_ : {"mse", "bce"}
        The loss in use (``loss``, or what ``"auto"`` chose).

    Notes
    -----
    The code is undercomplete: ``fit`` refuses a network whose narrowest layer (the code, or a
    narrower hidden layer of an MLP) is wider than X has features. With no regulariser such a
    network can learn to copy its input, and its code then says nothing the input does not. A
    code exactly as wide as the input could copy it too, but it is allowed: it is what the
    default ``latent_dim=2`` gives on 2-feature data, which should not fail. Overcomplete codes
    are meaningful where the objective regularises the code, as in those families' papers:
    :class:`~aekit.SparseAutoencoder`, :class:`~aekit.DenoisingAutoencoder`,
    :class:`~aekit.ContractiveAutoencoder`, and the VAE and adversarial autoencoders, whose
    codes are pulled towards a prior; the stacked models' pre-trained layers take them too.

    ``fit`` also refuses, before allocating anything, a network whose weights, gradients, best
    weights and optimiser state alone exceed the memory available.

    Examples
    --------
    >>> from aekit import Autoencoder
    >>> from aekit.datasets import load_dataset
    >>> data = load_dataset("digits")
    >>> ae = Autoencoder(latent_dim=2, hidden=(64, 32), random_state=0).fit(data.X_train)
    >>> codes = ae.transform(data.X_test)        # (360, 2) float32
    >>> ae.loss_                                 # loss="auto": the pixels lie in [0, 1]
    'bce'
    >>> ae.score(data.X_test)                    # minus the mean binary cross-entropy deviance
    -...
    """

    hidden: tuple[int, ...] | None = param(None, None, Sizes())
    # A cooldown at the end of fit's budget, the base rate in partial_fit (chosen on a validation
    # split, issue 16; the VAE too; the adversarial and stacked families keep "none" until
    # measured).
    lr_schedule: str = param_of(BaseAutoencoder, "lr_schedule", default="auto")
    loss: str = param("auto", Options("auto", "mse", "bce"))
    output_activation: str = param("linear", Options(*OUTPUT_ACTIVATIONS))

    _auto_params: ClassVar[dict[str, tuple[str, str]]] = {"loss": ("bce", "mse")}
    _overcomplete_code: ClassVar[bool] = False  # see the class docstring's Notes

    def _default_hidden(self) -> tuple[int, ...]:
        return MLP_HIDDEN if self.architecture == "mlp" else super()._default_hidden()

    def _build_module(self) -> AutoencoderModule:
        encoder, decoder = self._build_networks()
        return AutoencoderModule(encoder, decoder, self.loss_, self.output_activation)
