"""The estimator contract every aekit model shares.

A family (``models/<family>.py``) subclasses :class:`BaseAutoencoder` as a keyword-only
dataclass that adds its own parameters as fields (the generated ``__init__`` only stores them,
scikit-learn style), and writes ``_build_module``, which returns an ``nn.Module`` with this
interface (all on flat rows ``(n, n_features)``):

``encode(x) -> z``
    the deterministic code (``transform``);
``decode(z) -> x_hat``
    the reconstruction in data space (``inverse_transform``);
``objective(x, generator) -> {"loss": ..., **metrics}``
    the training loss in per-sample units (summed over features, averaged over the batch);
``score_samples(x) -> (n,)``
    deterministic per-sample score, higher is better (``score_samples``, ``score``);
``phases() -> list[Phase]``
    what the training loop runs each batch (one phase unless the model alternates optimisers).

Everything else (input checks, seeds, devices, the training loop, early stopping, batched
inference) is here, once; the files are :mod:`aekit.persist`'s, devices and seeds
:mod:`aekit.runtime`'s, the callbacks :mod:`aekit.callbacks`'.
"""

from __future__ import annotations

import contextlib
import copy
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin, clone
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from . import distributed as dist
from . import networks, persist
from ._params import (
    Boolean,
    Instance,
    Integer,
    Network,
    Options,
    Real,
    Shape,
    Sizes,
    check_params,
    param,
    trainer_settings,
)
from ._typing import ArrayLike, Callbacks, Input
from ._validation import check_finite, check_unit_interval, image_shape_of
from .callbacks import EstimatorHooks
from .errors import DataError, ModelFileError, ParameterError
from .nn import (
    ACTIVATIONS,
    ARCHITECTURES,
    NORMS,
    SEQUENCE_CELLS,
    build_encoder_decoder,
    reset_parameters,
)
from .runtime import (
    available_memory,
    format_bytes,
    resolve_device,
    seed_from,
    training_seed,
    training_threads,
)
from .sources import (
    IterableSource,
    Source,
    as_source,
    is_source,
    n_rows,
    probe_rows,
    sample_input_shape,
)
from .tags import Tags
from .training import (
    LR_SCHEDULES,
    OPTIMIZER_STATE,
    OPTIMIZERS,
    PRECISIONS,
    Trainer,
    TrainerConfig,
)

# Inference chunks (see inference_chunk): activations per forward pass on the CPU, and input
# values per chunk read on the host on any device.
CPU_INFERENCE_BYTES = 2**24
INFERENCE_MAX_VALUES = 2**24


def _floor_pow2(n: int) -> int:
    return 1 << (max(1, int(n)).bit_length() - 1)


def inference_budget(device) -> int:
    """Bytes of activations one inference pass may hold on ``device`` (:func:`inference_chunk`):
    on a CUDA device the smaller of half its free memory and an eighth of its total memory, as a
    power of two; elsewhere ``CPU_INFERENCE_BYTES``."""
    device = torch.device(device)
    if device.type == "cuda":
        free, total = torch.cuda.mem_get_info(device)
        return _floor_pow2(min(free // 2, total // 8))
    return CPU_INFERENCE_BYTES


def inference_chunk(device, bytes_per_row: int, width: int) -> tuple[int, int]:
    """Rows per forward pass at inference, and the activation budget they were sized for.

    ``rows = budget // bytes_per_row``, at most ``INFERENCE_MAX_VALUES // width`` (64 MB of
    float32 input read on the host per chunk), at least 1, rounded down to a power of two.
    ``bytes_per_row`` estimates one row's activations in the pass (the sizes of every layer's
    output, summed: :meth:`BaseAutoencoder._bytes_per_row`; ``k`` times one sample's for the
    VAE's ``k`` importance samples). The budget (:func:`inference_budget`):

    * the CPU (and MPS): 16 MiB. Throughput on the CPU is flat from a few hundred rows a pass
      and falls once a pass outgrows the caches (one thread, 784-400-20 networks:
      ``score_samples`` in chunks of 1024 rows runs 1.5x as fast as in chunks of 16,384 and
      1.6x as fast as 10,000 rows at once; ``docs/benchmarks.md``), so the bounded chunk is
      also a fast one: 1024 to 2048 rows of a 784-400-20 autoencoder, 16 of a VAE's
      ``log_likelihood`` with 50 samples.
    * a CUDA device: the smaller of half the free memory and an eighth of the total memory,
      rounded down to a power of two (on an 80 GB H100: 8 GiB), so that the chunk is the same
      at every call while a quarter of the device is free, and shrinks by halves when memory is
      short. Larger passes keep paying there (an H200: 16,384-row chunks of ``transform`` 1.4x
      as fast as 4096; ``log_likelihood`` with 5000 samples 2.2x as fast as in 128 MiB passes).

    A function of the device, the model, the data's width and ``k`` only, never of the data's
    source or length: an array, a Dataset and a memory map of the same rows are cut into the
    same chunks and give bit-identical outputs (float32 results depend on the batch size at the
    1e-7 level).
    """
    budget = inference_budget(device)
    rows = min(budget // max(1, int(bytes_per_row)), INFERENCE_MAX_VALUES // max(1, int(width)))
    return _floor_pow2(rows), budget


RANDOM_STATE = Instance(np.random.RandomState, "a numpy RandomState")
DEVICE = Instance((str, torch.device), "a device such as 'auto', 'cpu', 'cuda', 'cuda:1', 'mps'")
KWARGS = Instance(dict, "a dict of keyword arguments for the network's constructor")
#: The hidden widths of the families that keep the original MLP, and of conv and sequence
#: networks when ``hidden=None`` (Autoencoder's MLP default: ``models.autoencoder.MLP_HIDDEN``).
HIDDEN = (256, 128)


@dataclass(kw_only=True, repr=False, eq=False)
class NetworkParams:
    """The parameters every family shares: the network spec, the optimisation, the control.

    They are declared once, as dataclass fields. Each estimator class is a keyword-only dataclass
    (``@dataclass(kw_only=True, repr=False, eq=False)``) that adds its own fields, so its
    generated ``__init__`` has an explicit signature and stores exactly its parameters, as
    scikit-learn requires, without every family repeating two dozen shared parameters. Each
    field declares its valid values (:func:`aekit._params.param`), which ``_check_params``
    checks; ``trainer=True`` marks the settings handed to the training loop's
    :class:`~aekit.training.TrainerConfig`. The meaning of each is documented on
    :class:`aekit.Autoencoder`.
    """

    latent_dim: int = param(2, Integer(1))
    hidden: tuple[int, ...] = param(HIDDEN, Sizes())
    decoder_hidden: tuple[int, ...] | None = param(None, None, Sizes())
    activation: str = param("relu", Options(*ACTIVATIONS))
    architecture: str = param("mlp", Options(*ARCHITECTURES))
    input_shape: tuple[int, ...] | None = param(None, None, Shape())
    tied: bool = param(False, Boolean())
    code_activation: str | None = param(None, None, Options(*ACTIVATIONS))
    encoder: Any = param(None, None, Network())
    encoder_kwargs: dict | None = param(None, None, KWARGS)
    decoder: Any = param(None, None, Network())
    decoder_kwargs: dict | None = param(None, None, KWARGS)
    # The convolution spec ("conv", and "sequence" with sequence_cell="conv"; see aekit.nn).
    kernel_size: int = param(4, Integer(1))
    strides: int | tuple[int, ...] = param(2, Integer(1), Sizes("(2, 2, 1)"))
    norm: str = param("none", Options(*NORMS))
    residual_blocks: int = param(0, Integer(0))
    sequence_cell: str = param("conv", Options(*SEQUENCE_CELLS))
    optimizer: str = param("adam", Options(*OPTIMIZERS), trainer=True)
    lr: float = param(1e-3, Real(0, None, closed="neither"), trainer=True)
    lr_schedule: str = param("none", Options(*LR_SCHEDULES), trainer=True)
    weight_decay: float = param(0.0, Real(0, None), trainer=True)
    batch_size: int = param(128, Integer(1), trainer=True)
    max_epochs: int = param(100, Integer(0), trainer=True)
    validation_fraction: float = param(0.1, Real(0, 1, closed="left"))
    early_stopping: bool = param(False, Boolean(), trainer=True)
    patience: int = param(10, Integer(1), trainer=True)
    min_delta: float = param(0.0, Real(0, None), trainer=True)
    restore_best: bool = param(True, Boolean(), trainer=True)
    random_state: Any = param(None, None, Integer(), RANDOM_STATE)
    device: str = param("auto", DEVICE)
    precision: str = param("fp32", Options(*PRECISIONS), trainer=True)
    cuda_graphs: bool | str = param("auto", Options("auto"), Boolean(), trainer=True)
    verbose: int = param(0, Integer(0), trainer=True)


#: The shared parameters that shape the network (``set_params`` of one after fitting is refused
#: by ``partial_fit``, ``continue_fit`` and ``save``; see ``_check_structure``).
NETWORK_PARAMS = (
    "latent_dim", "hidden", "decoder_hidden", "activation", "architecture", "input_shape", "tied",
    "code_activation", "encoder", "encoder_kwargs", "decoder", "decoder_kwargs", "kernel_size",
    "strides", "norm", "residual_blocks", "sequence_cell",
)  # fmt: skip


def _equal(a, b) -> bool:
    """Parameter values compared as values (tuples and lists alike, numpy scalars too)."""
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return a is b


def _encode_path(module, x):
    return module.encode(x)


def _decode_path(module, z):
    return module.decode(z)


def _has_decoder(model) -> bool:
    """The decoding methods' availability: ``hasattr`` is False, and says why, without one."""
    if not model.__sklearn_tags__().aekit.has_decoder:
        raise AttributeError(
            f"{type(model).__name__} has no decoder (a classifier has a head instead; a model "
            "with labels_only=True trains none): it cannot decode or reconstruct; its codes are "
            "transform(X)"
        )
    return True


class BaseAutoencoder(
    NetworkParams, ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator
):
    """Shared implementation of the scikit-learn contract for aekit's models (see module doc)."""

    # Parameters whose "auto" value fit resolves from the first data it sees, into the fitted
    # attribute of the same name + "_": (the value for data in [0, 1], the value otherwise).
    _auto_params: ClassVar[dict[str, tuple[str, str]]] = {}

    # -- to be provided by each family ----------------------------------------------------------

    def _build_module(self) -> torch.nn.Module:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- parameter checks --------------------------------------------------------------------

    def _check_params(self) -> None:
        """Check every parameter against the constraint its field declares (:mod:`aekit._params`;
        one message form, "Class: param=value is invalid; expected ..."). A family extends this,
        calling super() first, with its rules across several parameters only.

        Called once by ``fit`` and ``continue_fit``, by every ``partial_fit`` (``set_params``
        may change the parameters between calls), and by :func:`aekit.load` on the parameters
        read from a file."""
        check_params(self)
        for role in networks.ROLES:
            if getattr(self, role + "_kwargs", None) and getattr(self, role, None) is None:
                raise ParameterError(
                    f"{type(self).__name__}: {role}_kwargs={getattr(self, role + '_kwargs')!r} "
                    f"are the keyword arguments of your own {role}, but {role}=None (the "
                    f"built-in one takes none); give {role}=, or drop {role}_kwargs"
                )
        if self.tied and (self.encoder is not None or self.decoder is not None):
            raise ParameterError(
                f"{type(self).__name__}: tied=True ties the built-in MLP decoder's weights to "
                "the built-in encoder's; it does not apply with encoder= or decoder= (tie "
                "weights inside your own modules instead)"
            )

    # Whether a code wider than the input is meaningful for this family: yes where an objective
    # regularises the code (a penalty, noise, a prior), so that copying the input is not the
    # optimum; not for the plain Autoencoder (see its docstring).
    _overcomplete_code: ClassVar[bool] = True

    def _check_network(self) -> None:
        """Check the network the parameters describe for the data just validated (its widths
        need ``n_features_in_``), before anything is allocated: a code wider than the input
        where the family does not take one, then the memory that training it needs. Part of
        ``fit``'s checks (and of a first ``partial_fit``'s, and ``preflight``'s)."""
        n = int(self.n_features_in_)
        if not self._overcomplete_code and self._bottleneck() > n:
            raise ParameterError(
                f"{type(self).__name__}: latent_dim={self.latent_dim!r} with "
                f"hidden={self._hidden_sizes()!r} gives a code wider than the input "
                f"(n_features={n}): "
                "without a regulariser the network can learn to copy its input, and the code "
                f"says nothing the input does not. Use latent_dim <= {n} (or a hidden layer "
                "at most that wide), or a family that regularises its code: SparseAutoencoder, "
                "DenoisingAutoencoder or ContractiveAutoencoder"
            )
        self._check_memory()

    def _hidden_sizes(self) -> tuple[int, ...]:
        """The hidden widths in use: ``hidden``, or for ``hidden=None`` (a family whose default
        depends on the architecture, :class:`~aekit.Autoencoder`'s) :meth:`_default_hidden`."""
        return self._default_hidden() if self.hidden is None else tuple(self.hidden)

    def _default_hidden(self) -> tuple[int, ...]:
        return HIDDEN

    def _bottleneck(self) -> int:
        """The narrowest layer between input and output: the code, or a narrower hidden layer
        of an MLP, or the encoder GRU's last state (all the code sees of a window). A
        convolution's feature maps are not counted, nor a GRU's states over all time steps."""
        widths = [int(self.latent_dim)]
        hidden = self._hidden_sizes()
        if self.architecture == "mlp" and self.encoder is None and self.decoder is None:
            decoder = hidden if self.decoder_hidden is None else self.decoder_hidden
            widths += [int(w) for w in (*hidden, *decoder)]
        elif self.architecture == "sequence" and self.sequence_cell == "gru" and hidden:
            widths.append(int(hidden[-1]))
        return min(widths)

    def _network_on_meta(self) -> torch.nn.Module | None:
        """The module ``_build_module`` builds, on torch's meta device: every tensor's shape,
        and no memory. None where it cannot be built there (a user's layer that reads a
        tensor's values while it is built); a ParameterError is raised as it is."""
        try:
            with torch.random.fork_rng(devices=[]), torch.device("meta"):
                return self._build_module()
        except (NotImplementedError, RuntimeError):
            return None
        except ParameterError as e:  # a user's constructor that reads values: not on meta
            if isinstance(e.__cause__, NotImplementedError | RuntimeError):
                return None
            raise

    def _check_memory(self) -> None:
        """Refuse a network whose training cannot fit in the memory available now.

        Training holds, for every parameter, the weight, its gradient, the copy of the best
        weights the loop keeps, and the optimiser's state (Adam's two moment estimates, SGD's
        momentum): ``3 + OPTIMIZER_STATE[optimizer]`` copies, 4 bytes each for float32, counted
        on the module built on the meta device (any family, MLP or conv). Activations come on
        top, so this is a lower bound: a network refused here could never train. The limit is
        the memory available now (:func:`aekit.runtime.available_memory`: MemAvailable on the
        CPU, the free memory of a CUDA device); where it is unknown, nothing is checked.
        """
        module = self._network_on_meta()
        if module is None:
            return
        params = list(module.parameters())
        lazy = [n for n, p in module.named_parameters()
                if isinstance(p, torch.nn.parameter.UninitializedParameter)]  # fmt: skip
        if lazy:
            raise ParameterError(
                f"{type(self).__name__}: {lazy[0]} is a lazy parameter (nn.LazyLinear, "
                "nn.LazyConv2d, ...), whose shape and initial values would come from the first "
                "batch, outside the seed. Give the layer its input size: aekit passes "
                "input_shape, n_features, in_features and out_features to your constructor"
            )
        n_params = sum(p.numel() for p in params)
        slots = OPTIMIZER_STATE.get(self.optimizer, 2)
        copies = 3 + slots
        need = copies * sum(p.numel() * p.element_size() for p in params)
        need += 2 * sum(b.numel() * b.element_size() for b in module.buffers())
        limit, where = available_memory(resolve_device(self.device))
        if limit is None or need <= limit:
            return
        hidden = self._hidden_sizes()
        widths = {"latent_dim": self.latent_dim or 0, "hidden": max(hidden, default=0),
                  "decoder_hidden": max(self.decoder_hidden or (), default=0)}  # fmt: skip
        widest = max(widths, key=lambda k: widths[k])
        shown = hidden if widest == "hidden" else getattr(self, widest)
        raise ParameterError(
            f"{type(self).__name__}: {widest}={shown!r} makes a network of "
            f"{n_params:,} parameters ({self.n_features_in_} input features, "
            f"hidden={hidden!r}, latent_dim={self.latent_dim!r}); training it needs at "
            f"least {format_bytes(need)} ({copies} copies of the weights: the weights, their "
            f"gradients, the best weights kept, and {slots} for the {self.optimizer} optimiser's "
            f"state), but {where} has {format_bytes(limit)} available. Use a smaller {widest}"
        )

    def _phases(self, module):
        return module.phases()

    def preflight(self, X: Input, y: ArrayLike | None = None) -> dict[str, Any]:
        """Raise now what ``fit(X, y)`` would raise before its first epoch (parameters, device,
        data, network shape), without training and without changing this estimator.

        Returns the parameters that ``fit`` would resolve from this data (``"auto"`` values),
        for example ``{"loss": "bce"}`` for data in [0, 1]. ``aekit train`` calls it before it
        writes anything.
        """
        probe = clone(self)
        probe._check_params()
        resolve_device(probe.device)
        X = probe._validate_X(X, reset=True)
        resolved = probe._resolve_auto(probe._data_range(X))
        probe._check_values(X)
        probe._check_source(X, y)
        probe._fit_targets(X, y, reset=True)
        probe._check_network()  # builds the network on the meta device: its errors, no memory
        # built for real where the user's networks must run, or the meta device cannot build it
        if self._user_networks() or probe._network_on_meta() is None:
            with torch.random.fork_rng(devices=[]):
                module = probe._build_module()
            networks.check_networks(module, probe_rows(X))
        return resolved

    def _data_range(self, X) -> np.ndarray:
        """What fit's data-dependent choices read (``_resolve_auto``, ``_init_from_data``): an
        array itself. For a source, where something reads it (an "auto" parameter, or a family
        whose ``_uses_data_range``), the minimum and maximum of each feature over all its rows
        (two rows, one pass, :meth:`aekit.sources.Source.extremes`), so that a source gives the
        model an array of the same rows gives; otherwise its probe."""
        if not isinstance(X, Source):
            return X
        auto = any(getattr(self, name) == "auto" for name in self._auto_params)
        return X.extremes() if auto or self._uses_data_range() else X.probe

    def _uses_data_range(self) -> bool:
        """Whether ``_init_from_data`` reads the data (per-feature minimum and maximum only)."""
        return False

    def _resolve_auto(self, X: np.ndarray) -> dict[str, str]:
        """Set the fitted value of each ``_auto_params`` parameter (``loss_`` for ``loss``):
        the parameter itself, or for ``"auto"`` the choice for this data. Returns the choices
        that "auto" made."""
        resolved, unit = {}, None
        for name, (in_unit, otherwise) in self._auto_params.items():
            value = getattr(self, name)
            if value == "auto":
                if unit is None:
                    unit = bool(X.size) and float(X.min()) >= 0 and float(X.max()) <= 1
                value = resolved[name] = in_unit if unit else otherwise
            setattr(self, name + "_", value)
        return resolved

    @contextlib.contextmanager
    def _unchanged_on_error(self):
        """Everything ``fit`` does before it has a new network: on an error the estimator is
        left exactly as it was. A refit that fails on its data must not leave the old network
        with the new data's settings (its width, the loss "auto" chose), which ``save`` would
        then write as a model that gives wrong outputs or does not load."""
        before = dict(self.__dict__)
        try:
            yield
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(before)
            raise

    def _check_fitted_choices(self) -> None:
        """Training on (``partial_fit``, ``continue_fit``) keeps the choices the network was
        built with: a parameter set to another value since is refused, not silently ignored."""
        for name in self._auto_params:
            value, fitted = getattr(self, name), self.__dict__.get(name + "_")
            if value != "auto" and fitted is not None and value != fitted:
                raise ParameterError(
                    f"{type(self).__name__}: {name}={value!r}, but the model was fitted with "
                    f"{name}_={fitted!r} and its network built for it; fit again to change it "
                    f"(partial_fit continues the fitted model), or set_params({name}={fitted!r})"
                )

    # Parameters that shape the trained network besides the shared ones (NETWORK_PARAMS): a
    # family lists its own (the AAEs' discriminators, posterior, supervised decoder).
    _structural_params: ClassVar[tuple[str, ...]] = ()

    # Parameters added after models of this class were first saved whose default differs from
    # the behaviour those files had: ``load`` gives a file that lacks one this value instead of
    # the default, so a model saved before loads and trains as it did.
    _params_before: ClassVar[dict[str, Any]] = {}

    def _structure(self) -> tuple[str, ...]:
        return (*NETWORK_PARAMS, *self._structural_params)

    def _check_structure(self, action: str) -> None:
        """``set_params`` of a parameter that shapes the network (``latent_dim``, ``hidden``,
        ``encoder``, ...) after the network was built is refused by ``partial_fit``,
        ``continue_fit`` and ``save``: they would go on with the network as trained while the
        parameters describe another, and ``save`` would write a config its weights do not fit
        (or that builds a different network when loaded)."""
        built = self.__dict__.get("_built_with")
        if built is None:
            return
        for name, old in built.items():
            new = getattr(self, name)
            same = new is old or (not isinstance(new, torch.nn.Module) and _equal(new, old))
            if not same:
                raise ParameterError(
                    f"{type(self).__name__}: {name}={new!r}, but the network was built with "
                    f"{name}={old!r}; {action} would go on with the network as trained, which "
                    f"these parameters do not describe. Fit again to change it, or "
                    f"set_params({name}={old!r})"
                )

    def _resolved(self, name: str):
        """The value in use of an ``_auto_params`` parameter: as ``fit`` resolved it, else (not
        fitted yet) the parameter itself."""
        return self.__dict__.get(name + "_", getattr(self, name))

    def _user_networks(self) -> list[str]:
        """The network parameters (``encoder``, ``decoder``, ``discriminator``) given a user's
        network."""
        return [role for role in networks.ROLES if getattr(self, role, None) is not None]

    def _build_networks(
        self,
        code_activation: str | None = None,
        latent_dim: int | None = None,
        *,
        only: str | None = None,
        encoder_output: str | None = None,
    ):
        """Encoder and decoder: the user's own (``encoder=``, ``decoder=``; :mod:`aekit.networks`)
        or built from the shared spec.

        ``latent_dim`` is the width of the encoder's output and of the decoder's input (default:
        the parameter), for an encoder with more outputs (a mean and a log-variance) or a
        decoder that also reads a label. ``code_activation`` overrides the parameter, for
        families whose objective needs a particular code (sigmoid). ``only="encoder"`` or
        ``"decoder"`` builds that side alone (the other is None). ``encoder_output`` says, for
        error messages, what the family's encoder must return (default: one code tensor).
        """
        width = int(latent_dim or self.latent_dim)
        code = code_activation or self.code_activation
        roles = ("encoder", "decoder") if only is None else (only,)
        built: dict[str, Any] = {}
        if any(getattr(self, role) is None for role in roles):
            encoder, decoder = build_encoder_decoder(
                n_features=self.n_features_in_,
                latent_dim=width,
                hidden=self._hidden_sizes(),
                decoder_hidden=self.decoder_hidden,
                activation=self.activation,
                architecture=self.architecture,
                input_shape=self.input_shape_,
                tied=bool(self.tied),
                code_activation=code,
                kernel_size=self.kernel_size,
                strides=self.strides,
                norm=self.norm,
                residual_blocks=self.residual_blocks,
                sequence_cell=self.sequence_cell,
            )
            built = {"encoder": encoder, "decoder": decoder}
        owner = type(self).__name__
        if isinstance(self.encoder, torch.nn.Module) and isinstance(self.decoder, torch.nn.Module):
            mine = {id(p) for p in self.encoder.parameters()}
            if any(id(p) in mine for p in self.decoder.parameters()):
                raise ParameterError(
                    f"{owner}: the encoder and decoder instances share parameters (tied "
                    "weights). fit trains a copy of each, which would untie them silently; "
                    "give untied networks, or tie inside one module of your own and use it as "
                    "both sides' parent"
                )
        shape = tuple(self.input_shape_ or (int(self.n_features_in_),))
        sizes = {"input_shape": shape, "n_features": int(self.n_features_in_),
                 "latent_dim": int(self.latent_dim)}  # fmt: skip
        for role in roles:
            spec = getattr(self, role)
            if spec is None:
                continue
            kwargs = getattr(self, role + "_kwargs")
            if role == "encoder":
                net = networks.build(spec, kwargs, role=role, owner=owner,
                                     sizes={**sizes, "out_features": width})  # fmt: skip
                built[role] = networks.UserEncoder(
                    net, input_shape=shape, out_features=width, code_activation=code,
                    owner=owner, contract=encoder_output or f"one tensor of shape (n, {width})",
                )  # fmt: skip
                continue
            net = networks.build(spec, kwargs, role=role, owner=owner,
                                 sizes={**sizes, "in_features": width})  # fmt: skip
            logits = self.__sklearn_tags__().aekit.unit_interval_input
            if logits and networks.ends_with_sigmoid(net):
                raise ParameterError(
                    f"{owner}: decoder={networks.describe(spec)} ends with a Sigmoid, but the "
                    "loss for data in [0, 1] takes logits (binary cross-entropy applies the "
                    "sigmoid itself, in a numerically stable form). Drop the final Sigmoid; "
                    "the model's outputs (reconstruct, inverse_transform) are still "
                    "probabilities"
                )
            flat = int(self.n_features_in_)
            shapes = f"(n, {', '.join(map(str, shape))})" + (f" or (n, {flat})" if len(shape) > 1
                                                             else "")  # fmt: skip
            built[role] = networks.UserDecoder(
                net, in_features=width, input_shape=shape, owner=owner,
                contract=f"a tensor of shape {shapes}: "
                + ("logits (the loss applies the sigmoid)" if logits else "the reconstruction"),
            )  # fmt: skip
        return built.get("encoder"), built.get("decoder")

    def _init_from_data(self, module, X: np.ndarray) -> None:
        """Set data-dependent module state before training (a family's hook; e.g. the data
        range for salt-and-pepper noise). Saved with the weights, so not called on load."""

    def _check_values(self, X: np.ndarray, source: str = "X") -> None:
        """Checks on the values that depend on the model's settings (families extend this)."""
        if self.__sklearn_tags__().aekit.unit_interval_input:
            reason, instead = self._unit_interval_reason()
            fix = None
            if any(getattr(self, name) == "auto" for name in self._auto_params):
                fix = (f"Rows scaled with the training rows' minimum and maximum (MinMaxScaler) "
                       f"can leave [0, 1]: for such data fit with {instead}, or clip the rows to "
                       "[0, 1].")  # fmt: skip
            if isinstance(X, Source):  # its probe now, and every batch as it is read
                X.require_unit_interval(reason, instead, fix)
            else:
                check_unit_interval(X, source, reason, instead, fix)

    def _unit_interval_reason(self) -> tuple[str, str]:
        """Which setting needs inputs in [0, 1], and the one for other data, in words (for the
        error message)."""
        for name, (in_unit, otherwise) in self._auto_params.items():
            if self._resolved(name) == in_unit:
                if getattr(self, name) == "auto":
                    why = self._auto_reason(name)
                    return f"{name}='auto' chose {in_unit!r} {why}; {name}={in_unit!r}", (
                        f"{name}={otherwise!r}"
                    )
                return f"{name}={in_unit!r}", f"{name}={otherwise!r}"
        return "this model", "another model"

    def _auto_reason(self, name: str) -> str:
        """Why ``"auto"`` chose what it did for ``name`` (for messages)."""
        return "because the training data lay in [0, 1]"

    # -- input ------------------------------------------------------------------------------

    def _validate_X(self, X, *, reset: bool, source: str = "X") -> np.ndarray | Source:
        """2-D float32 rows; 3-D ``(n, H, W)`` and 4-D ``(n, C, H, W)`` images are flattened, and
        3-D ``(n, T, C)`` windows where the model takes sequences (:meth:`_sequence_input`).
        A torch Dataset, DataLoader or iterable of batches becomes a
        :class:`~aekit.sources.Source` (:meth:`_validate_source`)."""
        if is_source(X):
            return self._validate_source(X, reset=reset, source=source)
        shape = None
        ndim = getattr(X, "ndim", None)
        if ndim in (3, 4):
            X = np.asarray(X)
            if ndim == 3 and self._sequence_input(reset):
                shape = (int(X.shape[1]), int(X.shape[2]))
            else:  # the one rule for images, shared with the data files
                shape = image_shape_of(X.shape, source)
            X = X.reshape(len(X), -1)
        try:
            X = validate_data(
                self,
                X,
                reset=reset,
                dtype=[np.float32, np.float64],
                ensure_all_finite=False,
                ensure_min_samples=1,
            )
        except ValueError as e:
            if not reset and "features, but" in str(e):
                prefix = "" if source == "X" else f"{source}: "
                raise DataError(
                    f"{prefix}{e} Give data with the same columns, in the same order, as at "
                    "fit time (and the same preprocessing)."
                ) from None
            raise
        X = np.asarray(X, dtype=np.float32)
        check_finite(X, source)
        if reset:
            self.input_shape_ = self._resolve_input_shape(shape, X.shape[1])
        elif shape is not None and self.input_shape_ is not None and shape != self.input_shape_:
            raise DataError(
                f"{source} holds images of shape {shape}, but the model was fitted on "
                f"{self.input_shape_}"
            )
        return X

    def _sequence_input(self, reset: bool) -> bool:
        """Whether 3-D input is ``(n, T, C)`` windows rather than gray images ``(n, H, W)``: for
        ``architecture="sequence"``, an ``input_shape`` ``(T, C)``, a model fitted on windows, or
        a user's encoder (it receives each sample in the shape given, ``(n, A, B)``)."""
        if self.architecture == "sequence":
            return True
        if self.encoder is not None and (self.decoder is not None or self.architecture != "conv"):
            return True  # (the built-in conv decoder needs images)
        if self.input_shape is not None and len(self.input_shape) == 2:
            return True
        fitted = None if reset else self.__dict__.get("input_shape_")
        return fitted is not None and len(fitted) == 2

    def _validate_source(self, X, *, reset: bool, source: str = "X") -> Source:
        """A non-array source, probed (:func:`aekit.sources.as_source`): its width and sample
        shape set ``n_features_in_`` and ``input_shape_`` (``reset``) or are checked against
        them. Its values are checked batch by batch as they are read."""
        data = as_source(X, source)
        n, shape = data.n_features, sample_input_shape(data.sample_shape)
        if shape is not None and len(shape) == 2 and not self._sequence_input(reset):
            shape = (1, *shape)  # a gray image (H, W), as 3-D arrays are read
        if reset:
            self.n_features_in_ = n
            self.__dict__.pop("feature_names_in_", None)  # a source has no column names
            self.input_shape_ = self._resolve_input_shape(shape, n)
            return data
        if n != self.n_features_in_:
            raise DataError(
                f"{source} has samples of shape {data.sample_shape} ({n} features), but "
                f"{type(self).__name__} is expecting {self.n_features_in_} features as input. "
                "Give data with the same columns, in the same order, as at fit time (and the "
                "same preprocessing)."
            )
        if shape is not None and self.input_shape_ is not None and shape != self.input_shape_:
            raise DataError(
                f"{source} holds samples of shape {shape}, but the model was fitted on "
                f"{self.input_shape_}"
            )
        return data

    def _check_source(self, X, y) -> None:
        """What a family cannot train on a non-array source refuses it here, with the
        alternative (the VAE's static binarisation, for example). An iterable of batches has
        no rows to pair with labels: a model that learns from labels needs a map-style Dataset
        and y, one label per item."""
        if isinstance(X, IterableSource) and self.__sklearn_tags__().aekit.uses_labels:
            raise DataError(
                f"{type(self).__name__} learns from labels, and {X.name} is an iterable of "
                "batches, whose rows cannot be paired with y: give a map-style Dataset (with "
                "__len__ and __getitem__) and y, one label per item, or an array"
            )

    def _split(self, X, seed: int, rows: np.ndarray | None):
        """``(X_train, X_val, index, val_index)``: fit's validation split. Rows by index
        (:meth:`_split_validation`) of an array or a map-style Dataset; whole batches of an
        iterable (:meth:`aekit.sources.IterableSource.split`)."""
        if isinstance(X, IterableSource):
            if self.validation_fraction > 0:
                train, val = X.split(float(self.validation_fraction), seed)
                return train, val, None, None
            return X, None, None, None
        index, val_index = self._split_validation(len(X), seed, rows=rows)
        return X, None, index, val_index

    def _resolve_input_shape(self, learned, n_features: int):
        shape = tuple(int(s) for s in self.input_shape) if self.input_shape is not None else None
        if shape is not None and learned is not None and shape != learned:
            raise DataError(f"input_shape={shape} but X holds images of shape {learned}")
        shape = shape or learned
        if shape is not None and math.prod(shape) != n_features:
            raise DataError(
                f"input_shape={shape} has {math.prod(shape)} values per image but X has "
                f"{n_features} features; fix input_shape or the data"
            )
        return shape

    # -- fitting -------------------------------------------------------------------------------

    def fit(
        self,
        X: Input,
        y: ArrayLike | None = None,
        *,
        validation_data: Input | None = None,
        callbacks: Callbacks = None,
    ) -> Self:
        """Train from scratch for up to ``max_epochs`` epochs.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), images (n, C, H, W) / (n, H, W), \
torch Dataset, DataLoader or iterable of batches
            The training rows. Arrays (numpy, memory maps, torch tensors) are indexed per
            batch and never loaded whole. A map-style ``torch.utils.data.Dataset`` (items: a
            sample of any shape, or a tuple whose first element is one) is loaded in exactly
            the order an array of the same rows would be, so it gives the same model (bit for
            bit on the CPU); a ``DataLoader`` over one lends its workers (``num_workers``,
            ``pin_memory``, ...), while the order and ``batch_size`` stay the estimator's (its
            ``batch_size``, ``shuffle``, ``sampler`` and ``collate_fn`` are not used). Any
            other iterable of batches ``(b, *sample_shape)`` (a DataLoader over an
            ``IterableDataset``, a list of arrays) is read in its own order, each epoch anew;
            a one-shot generator is refused. From the first 1024 samples of a source, ``fit``
            learns the width, ``input_shape_`` (from a ``(C, H, W)`` or ``(T, C)`` sample) and
            its "auto" choices; every batch is then checked as it is read (same shape, finite,
            in [0, 1] where the loss needs it). See :mod:`aekit.sources`.
        y : ignored
            Accepted for Pipeline compatibility. (Families that learn from labels take an
            array with one label per row or per item of a map-style Dataset.)
        validation_data : array-like or source, optional
            Held-out rows (an array, a Dataset, a DataLoader or an iterable of batches).
            Without it, ``validation_fraction`` of X (a seeded random permutation, never the
            last rows) is held out; for an iterable of batches, whole batches are held out
            (batch ``i`` when a draw seeded by ``(random_state, i)`` is below the fraction, the
            same batches every epoch).
        callbacks : list, optional
            Objects with any of ``on_train_begin(trainer, estimator)``,
            ``on_epoch_end(trainer, estimator, logs)`` and ``on_train_end(trainer, estimator,
            reason)`` (:mod:`aekit.callbacks`); for example :class:`~aekit.callbacks.Checkpoint`.

        Returns
        -------
        self
        """
        self._check_params()
        with self._unchanged_on_error():
            X = self._validate_X(X, reset=True)
            rows = probe_rows(X)  # X itself, or a source's first samples
            data_range = self._data_range(X)
            self._resolve_auto(data_range)
            self._check_values(X)
            self._check_source(X, y)
            targets = self._fit_targets(X, y, reset=True)
            X_val, y_val = self._validation_rows(validation_data)
            seed = training_seed(self.random_state)
            index = self._trainable_rows(targets)
            train, val_index = X, None
            if X_val is None:
                train, X_val, index, val_index = self._split(X, seed, index)
            self.n_train_rows_ = self._count_rows(train, index)
            self._check_network()
            self._initialize(seed, X=rows, X_range=data_range)
        if self._pretrain(X, seed, callbacks):  # interrupted (Ctrl-C): no main training
            self.stop_reason_ = "interrupted"
            return self
        self._train(train, X_val, self.max_epochs, callbacks, early_stopping=self.early_stopping,
                    index=index, val_index=val_index, y=targets, y_val=y_val)  # fmt: skip
        return self

    @staticmethod
    def _count_rows(X, index) -> int:
        """Training rows: those of ``index``, or of ``X``; 0 for an iterable of batches until
        its first epoch has counted them (:meth:`_train`)."""
        if index is not None:
            return len(index)
        return n_rows(X) or 0

    # Hooks for families that train in stages or on targets (the stacked models):
    _stage: ClassVar[str | None] = None  # labels the main training's epochs in history_

    def _fit_targets(self, X: np.ndarray, y, reset: bool) -> np.ndarray | None:
        """The targets the objectives receive with each batch (None: unsupervised, y ignored)."""
        return None

    def _trainable_rows(self, targets: np.ndarray | None) -> np.ndarray | None:
        """Rows the main training uses (None: all; a classifier: the labelled ones)."""
        return None

    def _pretrain(self, X: np.ndarray, seed: int, callbacks) -> bool:
        """Runs between building the module and the main training (greedy pre-training);
        returns True when it was interrupted, so that the main training is skipped."""
        return False

    def partial_fit(
        self,
        X: Input,
        y: ArrayLike | None = None,
        *,
        validation_data: Input | None = None,
        callbacks: Callbacks = None,
    ) -> Self:
        """One more epoch over ``X`` without re-initialising (also right after ``aekit.load``).

        The first call on an unfitted model initialises it as ``fit`` would, without holding
        out a validation split. Optimiser state, learning-rate schedule and random generators
        continue where they were, so ``fit`` then ``partial_fit`` continues exactly. The one
        exception is ``lr_schedule="auto"``, the plain autoencoders' and the VAE's default: its
        cooldown belongs to ``fit``'s budget, and ``partial_fit`` trains at the constant ``lr``
        (right after a ``fit``, the rate goes from the cooled-down value back to ``lr``). ``X``
        and ``validation_data`` take what :meth:`fit` takes (a Dataset: one epoch over it).
        """
        first = "module_" not in self.__dict__
        self._check_params()  # every call: set_params may change them between calls
        if not first:
            self._check_fitted_choices()
            self._check_structure("partial_fit")
        with self._unchanged_on_error():
            X = self._validate_X(X, reset=first)
            if first:
                data_range = self._data_range(X)
                self._resolve_auto(data_range)
            self._check_values(X)
            self._check_source(X, y)
            targets = self._fit_targets(X, y, reset=first)
            X_val, y_val = self._validation_rows(validation_data)
            if first:
                self.n_train_rows_ = self._count_rows(X, None)
                self._check_network()
                seed = training_seed(self.random_state)
                self._initialize(seed, X=probe_rows(X), X_range=data_range)
        self._train(X, X_val, 1, callbacks, early_stopping=False, scheduled=False,
                    index=self._trainable_rows(targets), y=targets, y_val=y_val)  # fmt: skip
        return self

    def continue_fit(
        self, X: Input, y: ArrayLike | None = None, *, callbacks: Callbacks = None
    ) -> Self:
        """Continue an interrupted :meth:`fit` (a loaded checkpoint) up to ``max_epochs`` epochs
        in all, on the same rows: ``fit``'s validation split is drawn again from
        ``random_state``, which must be the int that ``fit`` used (``aekit train --resume``).
        Only for models tagged ``resumable`` (see :mod:`aekit.tags`). ``X`` is what ``fit`` was
        given: the same array, Dataset (the same split and order) or iterable (the same
        batches held out)."""
        check_is_fitted(self)
        self._check_params()
        self._check_fitted_choices()
        self._check_structure("continue_fit")
        resumable = self.__sklearn_tags__().aekit.resumable
        if not (resumable and isinstance(self.random_state, int | np.integer)):
            raise ParameterError(
                f"{type(self).__name__}: only a fit with an int random_state, in one stage, can "
                "be continued; use partial_fit"
            )
        X = self._validate_X(X, reset=False)
        self._check_values(X)
        self._check_source(X, y)
        targets = self._fit_targets(X, y, reset=False)
        train, X_val, index, val_index = self._split(
            X, seed_from(self.random_state), self._trainable_rows(targets)
        )
        if not isinstance(X, IterableSource):  # an iterable's count is kept from fit
            self.n_train_rows_ = self._count_rows(train, index)
        self._train(train, X_val, max(0, self.max_epochs - self.n_epochs_), callbacks,
                    early_stopping=self.early_stopping, index=index, val_index=val_index,
                    y=targets)  # fmt: skip
        return self

    def _validation_rows(self, validation_data):
        """``(X_val, None)`` from ``validation_data`` (``(None, None)`` without it)."""
        if validation_data is None:
            return None, None
        if isinstance(validation_data, tuple):
            raise DataError(
                "validation_data takes the validation rows X_val alone, not a tuple such as "
                "(X_val, y_val): an autoencoder's target is its input"
            )
        X_val = self._validate_X(validation_data, reset=False, source="validation_data")
        self._check_values(X_val, "validation_data")
        return X_val, None

    def _split_validation(self, n: int, seed: int, rows: np.ndarray | None = None):
        """Row indices ``(train, validation)`` from a seeded permutation (never the last rows) of
        ``rows`` (default: all ``n`` rows). Without enough rows for both sides, ``(rows, None)``.
        Indices, not copies, so a memory-mapped X is not loaded whole."""
        m = n if rows is None else len(rows)
        n_val = int(m * self.validation_fraction)
        if n_val < 1 or n_val >= m:
            return rows, None
        perm = np.random.default_rng(seed).permutation(m)
        if rows is not None:
            perm = rows[perm]
        return perm[n_val:], perm[:n_val]

    def _trainer_config(self) -> TrainerConfig:
        """The parameters declared ``trainer=True``, under their own names (``cuda_graphs="auto"``
        stays "auto" where a captured step is safe, and is False where it is not)."""
        settings = trainer_settings(self)
        if settings["cuda_graphs"] == "auto" and not self._capture_is_safe():
            settings["cuda_graphs"] = False
        return TrainerConfig(**settings)

    def _capture_is_safe(self) -> bool:
        """Whether a captured step computes what an eager one does: not where a user's code runs
        in the step (a network of the user's may keep Python state, which a replay skips).
        Families with other user code in the step (a prior function) say so too."""
        return not self._user_networks()

    def _initialize(
        self,
        seed: int,
        device: torch.device | None = None,
        X: np.ndarray | None = None,
        X_range: np.ndarray | None = None,
    ) -> None:
        """Build the module from ``seed`` (on the CPU, so a seed means the same weights on any
        device), set its data-dependent state from ``X``, move it to the device, and create the
        trainer."""
        self.device_ = device if device is not None else resolve_device(self.device)
        # Constructing torch layers draws their default initialisation from the global generator;
        # fork_rng puts the global state back, and the weights come from our own generator.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)  # seeds any layer reset_parameters below does not cover
            module = self._build_module()
        reset_parameters(module, torch.Generator().manual_seed(seed))
        if X is not None:
            self._init_from_data(module, X if X_range is None else X_range)
            networks.check_networks(module, X)  # the user's networks, on one batch
        self._attach_module(module.to(self.device_))
        self._trainer = Trainer(
            self.module_,
            self._phases(self.module_),
            self._trainer_config(),
            device=self.device_,
            seed=seed,
            validate=getattr(self.module_, "validate", None),
        )
        self._built_with = {name: getattr(self, name) for name in self._structure()}
        self.history_: list[dict[str, Any]] = []
        self.n_epochs_ = 0
        self.best_epoch_ = 0
        self.stop_reason_ = None

    def _attach_module(self, module: torch.nn.Module) -> None:
        self.module_ = module
        self.encoder_ = module.encoder
        if self.__sklearn_tags__().aekit.has_decoder:  # a classifier has a head instead
            self.decoder_ = module.decoder

    def encoder_module(self) -> torch.nn.Module:
        """A copy of the trained encoder as a plain ``torch.nn.Module`` (flat rows in, codes out),
        on the CPU, in training mode: the pre-trained first layers of a user's own network.

        Examples
        --------
        >>> net = nn.Sequential(model.encoder_module(), nn.Linear(30, 10))  # doctest: +SKIP
        """
        check_is_fitted(self)
        return copy.deepcopy(self.encoder_).cpu().train()

    def _train(
        self, X, X_val, epochs, callbacks, *, early_stopping: bool, index=None, val_index=None,
        y=None, y_val=None, scheduled=True,
    ) -> None:  # fmt: skip
        hooks = EstimatorHooks(callbacks, self, self._sync_from_trainer)
        self._trainer.reconfigure(self._trainer_config())  # set_params between partial_fits
        # On the CPU, unless the user chose the threads: one thread for a small model, else no
        # more than the cores other processes leave free, counted again after each epoch (two
        # threads sharing a core with another process trained 6-29x slower than one). Torch's
        # count is put back afterwards.
        work = 6e-6 * sum(p.numel() for p in self.module_.parameters()) * int(self.batch_size)
        with training_threads(self.device_, work) as threads:
            try:
                self.stop_reason_ = self._trainer.run(
                    X,
                    X_val,
                    epochs=epochs,
                    history=self.history_,
                    callbacks=[hooks] if threads is None else [hooks, threads],
                    early_stopping=early_stopping,
                    index=index,
                    val_index=val_index,
                    y=y,
                    y_val=y_val,
                    stage=self._stage,
                    scheduled=scheduled,
                )
            finally:
                self._sync_from_trainer()
                self.module_.eval()
                if isinstance(X, IterableSource) and not self.n_train_rows_ and X.n_rows:
                    self.n_train_rows_ = X.n_rows  # counted in the first epoch

    def _sync_from_trainer(self) -> None:
        self.world_size_ = self._trainer.world.size
        self.n_epochs_ = self._trainer.epoch
        self.best_epoch_ = self._trainer.best.epoch

    # -- using a fitted model ----------------------------------------------------------------

    @torch.no_grad()
    def _bytes_per_row(self, fn, width: int) -> int:
        """Bytes one row costs in ``fn``: its input, its output and every layer's output (the
        forward hooks of the module's leaf layers, on one row of zeros), summed. An over-estimate
        of what is alive at once without autograd, and cheap: one row through the network.
        ``fn`` must not draw random numbers (the probe would consume them)."""
        sizes = [int(width)]

        def record(_module, _inputs, out):
            for t in out if isinstance(out, tuple | list) else (out,):
                if isinstance(t, torch.Tensor):
                    sizes.append(t.numel())

        leaves = [m for m in self.module_.modules() if not list(m.children())]
        hooks = [m.register_forward_hook(record) for m in leaves]
        try:
            self.module_.eval()
            out = fn(torch.zeros(1, int(width), device=self.device_))
        finally:
            for h in hooks:
                h.remove()
        sizes.append(out.numel() if isinstance(out, torch.Tensor) else 0)
        return 4 * sum(sizes)

    @torch.no_grad()
    def _batched(
        self, fn, X: np.ndarray | Source, *, bytes_per_row: int | None = None, rows: int = 0
    ) -> np.ndarray:
        """``fn`` over chunks of rows, in eval mode, without autograd; numpy out.

        The chunk is :func:`inference_chunk`'s for ``bytes_per_row`` (by default measured on
        ``fn`` itself, :meth:`_bytes_per_row`), or ``rows`` where given. A source is read in the
        same chunks, in its order, so the outputs equal an array's."""
        self.module_.eval()
        width = X.n_features if isinstance(X, Source) else X.shape[1]
        if not rows:
            if bytes_per_row is None:
                bytes_per_row = self._bytes_per_row(fn, width)
            rows, _ = inference_chunk(self.device_, bytes_per_row, width)
        if isinstance(X, Source):
            chunks = X.chunks(rows)
        else:
            chunks = (X[start : start + rows] for start in range(0, len(X), rows))
        outs = []
        for chunk in chunks:
            chunk = np.ascontiguousarray(chunk)
            if not chunk.flags.writeable:  # a read-only memory map: torch wants writable memory
                chunk = chunk.copy()
            x = torch.from_numpy(chunk)
            outs.append(fn(x.to(self.device_)).detach().cpu().numpy())
        return np.concatenate(outs)

    def transform(self, X: Input) -> np.ndarray:
        """The code of each row, shape ``(n_samples, latent_dim)``, float32, deterministic.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), images, torch Dataset, DataLoader \
or iterable of batches
            As :meth:`fit` takes it. A source is read in its own order (a Dataset: items 0, 1,
            ...), in the same fixed chunks as an array, so the codes equal an array's.

        Returns
        -------
        ndarray of shape (n_samples, latent_dim), float32
        """
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        return self._batched(self.module_.encode, X).astype(np.float32, copy=False)

    @available_if(_has_decoder)
    def inverse_transform(self, X: ArrayLike) -> np.ndarray:
        """Decode codes ``(n_samples, latent_dim)`` to rows ``(n_samples, n_features)``, float32."""
        check_is_fitted(self)
        Z = check_array(X, dtype=np.float32, ensure_all_finite=True)
        if Z.shape[1] != self.latent_dim:
            raise DataError(
                f"inverse_transform takes codes with {self.latent_dim} columns (latent_dim), got "
                f"{Z.shape[1]}"
            )
        return self._batched(self.module_.decode, Z).astype(np.float32, copy=False)

    @available_if(_has_decoder)
    def reconstruct(self, X: Input) -> np.ndarray:
        """``decode(encode(X))``: the model's reconstruction of each row, float32 (``X`` as
        :meth:`transform` takes it: an array, a Dataset, a DataLoader or an iterable of
        batches, read in its order)."""
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        return self._batched(lambda x: self.module_.decode(self.module_.encode(x)), X).astype(
            np.float32, copy=False
        )

    def score_samples(self, X: Input) -> np.ndarray:
        """Per-sample score, higher is better: minus the reconstruction deviance of each row,
        the reconstruction loss less that of a perfect reconstruction of the row
        (:func:`~aekit.losses.best_reconstruction_loss`: zero for squared error and for binary
        rows, the row's entropy for binary cross-entropy on intensities, which would otherwise
        rank rows by their grey levels); per-sample units, without regularisers. Low values
        flag anomalies. ``X`` as
        :meth:`transform` takes it; a source's batches are checked as they are read (finite,
        and in [0, 1] where the loss needs it)."""
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        self._check_values(X)
        return self._batched(self.module_.score_samples, X).astype(np.float64)

    def score(self, X: Input, y: ArrayLike | None = None) -> float:
        """Mean of :meth:`score_samples`: minus the mean per-sample reconstruction deviance."""
        return float(np.mean(self.score_samples(X)))

    @available_if(_has_decoder)
    def interpolate(
        self, x_a: ArrayLike, x_b: ArrayLike, steps: int = 10, y: ArrayLike | None = None
    ) -> np.ndarray:
        """Decoded points on the line between the codes (``transform``) of two inputs, ``(steps,
        n_features)``, ``x_a`` first. ``y``: the class to decode with, for models whose decoder
        also reads the label (supervised and categorical adversarial autoencoders)."""
        if int(steps) < 2:
            raise DataError(f"steps={steps}: an interpolation needs at least its two ends")
        Z = self.transform(np.vstack([np.reshape(x_a, (1, -1)), np.reshape(x_b, (1, -1))]))
        t = np.linspace(0, 1, int(steps), dtype=np.float32)[:, None]
        return self._decode_with(y, (1 - t) * Z[0] + t * Z[1])

    @available_if(_has_decoder)
    def traverse(
        self, x: ArrayLike, dim: int, values: ArrayLike, y: ArrayLike | None = None
    ) -> np.ndarray:
        """Decodings of ``x``'s code with latent dimension ``dim`` set to each value (``y``: as
        for :meth:`interpolate`)."""
        if not isinstance(dim, int | np.integer) or not 0 <= int(dim) < int(self.latent_dim):
            raise DataError(f"dim={dim} is not a latent dimension (0..{self.latent_dim - 1})")
        z = self.transform(np.reshape(x, (1, -1)))[0]
        values = check_array(np.reshape(values, (-1, 1)), dtype=np.float32)[:, 0]
        Z = np.repeat(z[None, :], len(values), axis=0)
        Z[:, int(dim)] = values
        return self._decode_with(y, Z)

    def _decode_with(self, y, Z: np.ndarray) -> np.ndarray:
        if y is None:
            return self.inverse_transform(Z)
        return self.inverse_transform(Z, np.repeat(np.atleast_1d(np.asarray(y))[:1], len(Z)))

    @property
    def _n_features_out(self) -> int:
        return int(self.latent_dim)

    def __sklearn_tags__(self) -> Tags:
        """scikit-learn's tags and aekit's (:mod:`aekit.tags`); families add what they can do."""
        tags = Tags.extend(super().__sklearn_tags__())
        tags.transformer_tags.preserves_dtype = ["float32"]
        tags.input_tags.allow_nan = False
        tags.aekit.unit_interval_input = any(
            self._resolved(name) == in_unit for name, (in_unit, _) in self._auto_params.items()
        )
        return tags

    # -- exporting ---------------------------------------------------------------------------

    def export(
        self,
        path: str | Path,
        format: str = "onnx",
        *,
        scaling: tuple[ArrayLike, ArrayLike] | None = None,
    ) -> dict[str, Path]:
        """Write the networks to ONNX files in the folder ``path``, for use outside Python.

        ``encoder.onnx`` takes what :meth:`transform` takes, flat float32 rows ``(batch,
        n_features)`` (input ``"x"``), and returns the code (output ``"code"``; the posterior
        mean for a VAE, the style for the categorical adversarial autoencoders).
        ``decoder.onnx`` takes codes ``(batch, latent_dim)`` (input ``"code"``) and returns
        what :meth:`inverse_transform` returns, rows ``(batch, n_features)`` (output ``"x"``),
        the output activation included (the sigmoid of a BCE or Bernoulli model). A model whose
        decoder also reads a class takes it as a second input ``"label"``, one-hot rows
        ``(batch, n_classes)`` in the order of ``classes_`` (cluster indices for a clusterer).
        A model without a decoder (the classifiers, a ``labels_only`` semi-supervised AAE)
        writes ``encoder.onnx`` only. The batch size is dynamic.

        Parameters
        ----------
        path : str or Path
            A new or empty folder, or one aekit wrote (it holds ``aekit-manifest.json``); files
            aekit did not write are never replaced. Each file is written atomically.
        format : {"onnx"}
        scaling : (offset, scale) or None
            Bake a scaling into the graphs: the encoder computes ``(x - offset) / scale`` first
            and the decoder ``out * scale + offset`` last, so both work on raw rows (``aekit
            export RUN`` passes the run's scaling). Scalars or arrays of ``n_features``.

        Returns
        -------
        dict of str to Path
            The files written, by name.

        Raises
        ------
        ImportError
            Without the ``onnx`` and ``onnxruntime`` packages (``pip install 'aekit[onnx]'``).
        aekit.ExportError
            A network (a user's own) that cannot be traced faithfully: each graph is run in
            onnxruntime on other batch sizes than the traced one and compared with PyTorch
            before anything is written.
        """
        from . import export

        check_is_fitted(self)
        if format not in export.FORMATS:
            raise ParameterError(f"format={format!r}: aekit exports to {', '.join(export.FORMATS)}")
        export.require_onnx()
        module = copy.deepcopy(self.module_).cpu().eval()
        pre = post = None
        if scaling is not None:
            offset, scale = scaling
            pre, post = export.Affine(offset, scale), export.Affine(offset, scale, inverse=True)
        graphs = {
            export.ENCODER_FILE: export.Graph(
                export.Composed(module, _encode_path, pre=pre),
                {"x": int(self.n_features_in_)},
                "code",
            )
        }
        if self.__sklearn_tags__().aekit.has_decoder:
            fn, labels = self._export_decoder()
            inputs = {"code": int(self.latent_dim)}
            if labels:
                inputs["label"] = int(labels)
            graphs[export.DECODER_FILE] = export.Graph(
                export.Composed(module, fn, post=post), inputs, "x",
                one_hot=("label",) if labels else (),
            )  # fmt: skip
        with torch.random.fork_rng(devices=[]):  # tracing runs the module: no global draws
            return export.write(path, graphs, format)

    def _export_decoder(self) -> tuple[Any, int]:
        """``(fn, n_labels)``: the decode path for :meth:`export`, ``fn(module, code[, label])``
        with ``label`` one-hot rows of width ``n_labels`` (0: the decoder reads no label)."""
        return _decode_path, 0

    # -- saving and loading ------------------------------------------------------------------

    def _params_to_json(self) -> dict[str, Any]:
        params = {}
        for k, v in self.get_params(deep=False).items():
            if isinstance(v, tuple | list):
                v = [x.item() if isinstance(x, np.generic) else x for x in v]
            elif isinstance(v, np.generic):  # numpy's bool, int and float: their Python values
                v = v.item()
            elif k == "random_state" and not (v is None or isinstance(v, int)):
                v = None  # a RandomState object has no faithful JSON form
            elif isinstance(v, torch.device):
                v = str(v)
            elif isinstance(v, torch.nn.Module | type):  # a user's network: its class, by name
                v = networks.saved_form(k, v, type(self).__name__)
            params[k] = v
        for k in networks.ROLES:
            if params.get(k + "_kwargs") is not None:
                networks.check_json(k + "_kwargs", params[k + "_kwargs"], type(self).__name__)
        return params

    def save(
        self,
        path: str | Path,
        *,
        metadata: dict | None = None,
        extra_files: dict[str, bytes] | None = None,
    ) -> Path:
        """Save to folder ``path``: ``config.json``, ``model.safetensors``, the optimiser state
        (``optimizer.safetensors`` + ``optimizer.json``) and ``history.json``.

        The files form one save generation (:func:`aekit.io.write_generation`): each is written
        atomically, ``config.json`` last, recording the SHA-256 of the others, which
        :func:`load` verifies; the previous versions are kept until the set is complete. A save
        interrupted at any moment (a kill during a checkpoint) leaves the previous complete save
        loadable, and Ctrl-C or SIGTERM during a save take effect once it is complete. No pickle
        is used.

        ``path`` must be a new or empty folder, or one aekit wrote (it holds
        ``aekit-manifest.json``, the list of the files aekit wrote there): aekit never replaces a
        file it did not write (:class:`~aekit.errors.FolderError`). The folder is locked while
        the files are written (:class:`~aekit.errors.FolderLockedError` if another process
        holds it).

        ``metadata`` (JSON types) is stored in the config, for example label names.
        ``extra_files`` (name to bytes) are written in the same generation and checksummed with
        the model (``aekit train`` keeps its ``data.json`` there).

        In data-parallel training (a process group of several processes, see
        :mod:`aekit.distributed`), every rank holds the same model and rank 0 alone writes; the
        other ranks return ``path`` without touching it.
        """
        check_is_fitted(self)
        self._check_structure("save")
        if not dist.world().is_main:  # data-parallel training: rank 0 alone writes
            return Path(path)
        state = self._trainer.state_dict()
        state["device_type"] = self.device_.type
        self._metadata = {**getattr(self, "_metadata", {}), **(metadata or {})}
        return persist.write_model(
            path,
            cls=type(self),
            params=self._params_to_json(),
            fitted=self._fitted_to_json(),
            weights=self.module_.state_dict(),
            trainer_state=state,
            history=self.history_,
            metadata=self._metadata,
            extra_files=extra_files,
        )

    def _fitted_to_json(self) -> dict[str, Any]:
        names = getattr(self, "feature_names_in_", None)
        return {
            "n_features_in_": int(self.n_features_in_),
            "input_shape_": self.input_shape_,
            "n_epochs_": int(self.n_epochs_),
            "best_epoch_": int(self.best_epoch_),
            "n_train_rows_": int(self.n_train_rows_),
            "stop_reason_": self.stop_reason_,
            **{name + "_": self._resolved(name) for name in self._auto_params},
            "feature_names_in_": None if names is None else [str(n) for n in names],
            "device_": str(self.device_),
            "world_size": int(getattr(self, "world_size_", 1)),  # processes it last trained in
        }

    def _restore(
        self, path: Path, config: dict[str, Any], files: dict[str, Path], device_given: bool
    ) -> None:
        fitted = config["fitted"]
        for name in self._auto_params:  # as fit resolved "auto" (saves before 0.2: the param)
            value = fitted.get(name + "_", getattr(self, name))
            if value == "auto" or value not in self._auto_params[name]:
                raise ModelFileError(f"{path / persist.CONFIG_FILE}: fitted.{name}_ = {value!r} "
                                     f"is not one of {self._auto_params[name]}")  # fmt: skip
            setattr(self, name + "_", value)
        self.n_train_rows_ = int(fitted.get("n_train_rows_", 0))
        self.world_size_ = int(fitted.get("world_size", 1))
        self.n_features_in_ = int(fitted["n_features_in_"])
        shape = fitted.get("input_shape_")
        self.input_shape_ = tuple(shape) if shape is not None else None
        if fitted.get("feature_names_in_") is not None:
            self.feature_names_in_ = np.asarray(fitted["feature_names_in_"], dtype=object)
        try:
            device = resolve_device(self.device)
        except ValueError:
            if device_given:
                raise
            device = torch.device("cpu")  # saved on a GPU, loaded where there is none
        weights = persist.read_weights(path, config, files)
        self._initialize(seed_from(self.random_state), device=device)
        try:
            self.module_.load_state_dict({k: v.to(device) for k, v in weights.items()})
        except RuntimeError as e:
            detail = " ".join(line.strip() for line in str(e).splitlines()[1:])
            users = self._user_networks()
            hint = (f" The {users[0]} is your own network: pass the module it was trained with, "
                    f"built with the same arguments, in objects={{{users[0]!r}: ...}}."
                    if users else "")  # fmt: skip
            raise ModelFileError(
                f"{path / persist.WEIGHTS_FILE}: the weights do not fit the model described in "
                f"{persist.CONFIG_FILE} ({detail[:600] or str(e)}).{hint}"
            ) from None
        self.module_.eval()
        self.history_ = persist.read_history(path, config, files)
        self.n_epochs_ = int(fitted.get("n_epochs_", len(self.history_)))
        self.stop_reason_ = fitted.get("stop_reason_")
        self._metadata = dict(config.get("metadata") or {})
        self._restore_trainer(path, config, files)
        self.best_epoch_ = int(fitted.get("best_epoch_", self._trainer.best.epoch))

    def _restore_trainer(self, path: Path, config: dict[str, Any], files: dict[str, Path]) -> None:
        """Load the optimiser state if it is there; without it, training continues with a fresh
        optimiser, which :func:`load` documents."""
        state = persist.read_trainer_state(path, config, files)
        if state is None:
            self._trainer.epoch = self.n_epochs_
            return
        if state.get("device_type") != self.device_.type:
            # Generator states are device-specific; reseed the noise generator deterministically.
            state["noise_generator"] = self._trainer.noise_generator.get_state()
        try:
            self._trainer.load_state_dict(state)
        except (KeyError, ValueError, RuntimeError) as e:
            raise ModelFileError(
                f"{path / persist.OPTIMIZER_META_FILE}: unusable optimizer state ({e})"
            ) from None
