"""Networks a user brings: ``encoder=``, ``decoder=`` and ``discriminator=`` on every estimator.

Each is one of

* an ``nn.Module`` subclass, or an import path ``"package.module:Name"`` to one, built inside
  ``fit`` as ``Name(**injected, **kwargs)`` under the estimator's seed (the global random state is
  forked and put back). ``injected`` holds the sizes aekit knows, passed only to a constructor
  that names them and only where ``kwargs`` does not: ``input_shape`` (the shape of one sample:
  ``(C, H, W)``, ``(T, C)``, or ``(n_features,)`` for table rows), ``n_features``,
  ``latent_dim`` (the estimator's), ``out_features`` (an encoder: the width it must return) and
  ``in_features`` (a decoder or discriminator: the width it receives); a discriminator, which
  sees codes only, gets ``in_features`` and ``latent_dim``;
* an ``nn.Module`` instance: ``fit`` trains a deep copy, with the instance's own weights as the
  starting point, and never changes the caller's object.

Each network is wrapped in a small adapter that keeps aekit's convention (flat rows in and out,
:mod:`aekit.nn`) while the user's module sees its natural shapes: an encoder receives the batch
reshaped to ``(n, *input_shape)``; its output may be one tensor ``(n, out_features)`` or a tuple
of tensors whose widths add up to it (a VAE's ``(mu, logvar)``), concatenated in order; a
decoder may return ``(n, *input_shape)`` or flat ``(n, n_features)`` pre-activation values
(logits when the loss is ``"bce"``: the sigmoid is part of the loss); a discriminator returns one
logit per row, ``(n, 1)`` or ``(n,)``. The adapters' parameters are the user module's, under
``<role>.net.``: the weights the user's module would have on its own.

Before training, :func:`check_networks` runs every user network once on a batch and raises a
:class:`~aekit.errors.ParameterError` naming the shape it got and the shape it needs.
"""

from __future__ import annotations

import copy
import inspect
import math
from typing import Any

import torch
from torch import nn

from .errors import ModelFileError, ParameterError
from .nn import make_activation

#: The parameters that take a user's network (each with ``<role>_kwargs``).
ROLES = ("encoder", "decoder", "discriminator")

#: The sizes aekit passes to a user's constructor that names them (see the module docstring).
INJECTED = ("input_shape", "n_features", "latent_dim", "out_features", "in_features")


def describe(spec: Any) -> str:
    """How a network parameter's value reads in a message: its class or path."""
    if isinstance(spec, str):
        return spec
    cls = spec if isinstance(spec, type) else type(spec)
    name = f"{cls.__module__}.{cls.__qualname__}"
    return name if isinstance(spec, type) else f"an instance of {name}"


def resolve(spec: Any, role: str) -> type[nn.Module] | nn.Module:
    """The class or instance a network parameter names (an import path is imported here: the
    caller's own parameter, given in Python or on the command line)."""
    if isinstance(spec, str):
        from .priors import import_object

        obj = import_object(spec, role)
        if not (isinstance(obj, type) and issubclass(obj, nn.Module)):
            raise ParameterError(
                f"{role}={spec!r} names {type(obj).__name__ if not isinstance(obj, type) else obj}"
                ", not a torch.nn.Module subclass"
            )
        return obj
    return spec


def build(
    spec: Any,
    kwargs: dict[str, Any] | None,
    *,
    role: str,
    owner: str,
    sizes: dict[str, Any],
) -> nn.Module:
    """The user's module for parameter ``role``: a class built with ``kwargs`` (and the
    ``sizes`` its constructor names), or a deep copy of an instance."""
    obj = resolve(spec, role)
    kwargs = dict(kwargs or {})
    if isinstance(obj, nn.Module):
        if kwargs:
            raise ParameterError(
                f"{owner}: {role}_kwargs apply to a class that aekit builds; {role} is already "
                f"a module instance ({describe(obj)}). Give the class instead, or drop "
                f"{role}_kwargs"
            )
        return copy.deepcopy(obj)
    try:
        names = inspect.signature(obj).parameters
    except (TypeError, ValueError):  # (a constructor without a signature: pass nothing extra)
        names = {}
    given = {k: v for k, v in sizes.items() if k in names and k not in kwargs}
    try:
        net = obj(**given, **kwargs)
    except Exception as e:
        passed = ", ".join(f"{k}={v!r}" for k, v in {**given, **kwargs}.items()) or "nothing"
        raise ParameterError(
            f"{owner}: building {role}={describe(spec)} failed with {type(e).__name__}: {e}. "
            f"aekit called it with {passed}: the keyword arguments come from {role}_kwargs, and "
            f"aekit adds {', '.join(INJECTED)} where the constructor names them"
        ) from e
    if not isinstance(net, nn.Module):
        raise ParameterError(f"{owner}: {role}={describe(spec)} built {type(net).__name__}, not "
                             "a torch.nn.Module")  # fmt: skip
    return net


class UserNetwork(nn.Module):
    """The adapter around a user's module (see the module docstring). ``keeps_own_init``: aekit
    does not re-initialise it (:func:`aekit.nn.reset_parameters`): a class built under the seed
    keeps its own initialisation, an instance its weights."""

    keeps_own_init = True

    def __init__(self, net: nn.Module, role: str, owner: str, contract: str):
        super().__init__()
        self.net = net
        self.role = role
        self.owner = owner
        self.contract = contract

    def _wrong(self, got: str, given: tuple[int, ...]) -> ParameterError:
        return ParameterError(
            f"{self.owner}: the {self.role} ({type(self.net).__name__}) returned {got} for input "
            f"of shape {given}; it must return {self.contract}"
        )

    def probe(self, x: torch.Tensor) -> None:
        """Run once on ``x`` (flat rows of this network's input width); errors name the
        network, the shapes, and what it must return."""
        try:
            self(x)
        except ParameterError:
            raise
        except Exception as e:
            raise ParameterError(
                f"{self.owner}: the {self.role} ({type(self.net).__name__}) failed on input of "
                f"shape {self._given(x)} with {type(e).__name__}: {e}. It receives "
                f"{self.receives()} and must return {self.contract}"
            ) from e

    def _given(self, x: torch.Tensor) -> tuple[int, ...]:
        return tuple(x.shape)

    def receives(self) -> str:  # pragma: no cover - each adapter says
        raise NotImplementedError


def _shape_text(out: Any) -> str:
    if isinstance(out, torch.Tensor):
        return f"a tensor of shape {tuple(out.shape)}"
    if isinstance(out, tuple | list):
        parts = ", ".join(_shape_text(o) if isinstance(o, torch.Tensor) else type(o).__name__
                          for o in out)  # fmt: skip
        return f"a {type(out).__name__} of ({parts})"
    return f"a {type(out).__name__}"


class UserEncoder(UserNetwork):
    """Flat rows ``(n, n_features)`` -> the user's encoder on ``(n, *input_shape)`` -> flat
    ``(n, out_features)`` (a tuple of outputs concatenated), then ``code_activation``."""

    def __init__(self, net, *, input_shape, out_features, code_activation, owner, contract):
        super().__init__(net, "encoder", owner, contract)
        self.input_shape = tuple(int(s) for s in input_shape)
        self.out_features = int(out_features)
        self.code = make_activation(code_activation)

    def _given(self, x):
        return (len(x), *self.input_shape)

    def receives(self) -> str:
        return f"a batch of shape (n, {', '.join(map(str, self.input_shape))})"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = len(x)
        out = self.net(x.reshape(-1, *self.input_shape))  # -1: a traced batch stays dynamic
        parts = list(out) if isinstance(out, tuple | list) else [out]
        if not parts or not all(isinstance(p, torch.Tensor) and p.ndim == 2 and len(p) == n
                                for p in parts):  # fmt: skip
            raise self._wrong(_shape_text(out), self._given(x))
        z = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
        if z.shape[1] != self.out_features:
            raise self._wrong(_shape_text(out), self._given(x))
        return self.code(z)


class UserDecoder(UserNetwork):
    """Codes ``(n, in_features)`` -> the user's decoder -> flat ``(n, n_features)`` (its output
    ``(n, *input_shape)`` or already flat)."""

    def __init__(self, net, *, in_features, input_shape, owner, contract):
        super().__init__(net, "decoder", owner, contract)
        self.in_features = int(in_features)
        self.n_features = math.prod(int(s) for s in input_shape)
        # the two layouts accepted: the sample's own shape, or flat (another shape with as many
        # values, (C, W, H) for (C, H, W) say, would train on scrambled targets)
        self.shapes = {tuple(int(s) for s in input_shape), (self.n_features,)}

    def receives(self) -> str:
        return f"codes of shape (n, {self.in_features})"

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        n = len(z)
        out = self.net(z)
        ok = isinstance(out, torch.Tensor) and len(out) == n
        if not ok or tuple(int(s) for s in out.shape[1:]) not in self.shapes:  # ints: traced too
            raise self._wrong(_shape_text(out), tuple(z.shape))
        return out.reshape(-1, self.n_features)  # -1: a traced batch stays dynamic (export)


class UserDiscriminator(UserNetwork):
    """Codes ``(n, in_features)`` -> the user's discriminator -> logits ``(n,)``."""

    def __init__(self, net, *, in_features, owner, contract):
        super().__init__(net, "discriminator", owner, contract)
        self.in_features = int(in_features)

    def receives(self) -> str:
        return f"codes of shape (n, {self.in_features})"

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        n = len(z)
        out = self.net(z)
        if not isinstance(out, torch.Tensor) or len(out) != n or out[0].numel() != 1:
            raise self._wrong(_shape_text(out), tuple(z.shape))
        return out.reshape(n)


def mean_and_logvar(latent_dim: int) -> str:
    """The contract of an encoder of a Gaussian posterior, in words (for messages)."""
    return (f"(mu, logvar), each of shape (n, {latent_dim}), or one tensor of shape "
            f"(n, {2 * latent_dim}) with mu first")  # fmt: skip


def ends_with_sigmoid(net: nn.Module) -> bool:
    """Whether the last layer ``net`` registers is a sigmoid (a decoder that returns
    probabilities, where aekit's BCE wants logits): the last leaf of ``net.modules()``, which is
    the last layer applied in the usual PyTorch module (a ``torch.sigmoid`` call in ``forward``
    is not seen)."""
    leaves = [m for m in net.modules() if not any(True for _ in m.children())]
    return bool(leaves) and isinstance(leaves[-1], nn.Sigmoid)


@torch.no_grad()
def check_networks(module: nn.Module, X: Any) -> None:
    """Run every user network in ``module`` once, in eval mode, on two rows of ``X`` (an
    encoder) or on zero codes (a decoder, a discriminator), before any training: a wrong
    shape or a failing layer is one clear :class:`ParameterError`, not an error deep in the
    first epoch."""
    users = [m for m in module.modules() if isinstance(m, UserNetwork)]
    if not users:
        return
    device = next((p.device for p in module.parameters()), torch.device("cpu"))
    rows = torch.as_tensor(X[:2], dtype=torch.float32, device=device)
    modes = [(m, m.training) for m in module.modules()]
    module.eval()  # batch statistics are neither used nor updated; no dropout
    try:
        for m in users:
            if isinstance(m, UserEncoder):
                m.probe(rows)
            else:
                m.probe(torch.zeros(len(rows), m.in_features, device=device))
    finally:
        for m, training in modes:
            m.training = training


def saved_form(role: str, value: Any, owner: str) -> str | dict[str, str]:
    """What ``config.json`` records for a network parameter: a class as its import path
    ``"module:Qualname"``, an instance as ``{"instance_of": "module:Qualname"}`` (its weights are
    the model's). A class defined inside a function (or a lambda) has no such name: refused, as
    models are saved as JSON and weights, never pickle."""
    cls = value if isinstance(value, type) else type(value)
    module, qualname = cls.__module__, cls.__qualname__
    if "<" in qualname:
        raise ModelFileError(
            f"cannot save {owner}: {role}={describe(value)} is defined inside a function (a "
            "closure), so it has no import path to record, and aekit saves models as JSON and "
            "weights, never pickle. Define the class at the top level of a module"
        )
    path = f"{module}:{qualname}"
    if module != "__main__":  # (a script's or notebook's class: loaded with objects= only)
        from .priors import import_path

        if import_path(cls) != path:  # the name must import back to this very class
            raise ModelFileError(
                f"cannot save {owner}: {role}={describe(value)} cannot be imported back as "
                f"{path!r} (the module does not define it under that name), so a load could not "
                "rebuild it. Define the class at the top level of an importable module"
            )
    return path if isinstance(value, type) else {"instance_of": path}


def check_json(name: str, kwargs: dict[str, Any], owner: str) -> None:
    """Refuse to save keyword arguments that JSON cannot hold (they rebuild the network)."""
    import json

    for key, value in kwargs.items():
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            raise ModelFileError(
                f"cannot save {owner}: {name}[{key!r}] = {value!r} is not a JSON value (numbers, "
                "strings, booleans, None, lists and dicts of them), and it is saved to rebuild "
                "the network. Pass plain values, and build anything else inside the class"
            ) from None
        if not isinstance(key, str):
            raise ModelFileError(f"cannot save {owner}: {name} has the key {key!r}; keyword "
                                 "arguments are named by strings")  # fmt: skip
