"""Estimator parameters declared once: each dataclass field carries its constraint.

In the spirit of scikit-learn's ``_parameter_constraints``, but on the field itself, so that a
parameter's name, default and valid values are written in one place::

    lr: float = param(1e-3, Real(0, None, closed="neither"), trainer=True)
    decoder_hidden: tuple[int, ...] | None = param(None, None, Sizes())

A field may list several constraints: the value must satisfy one of them (``None`` stands for
the value None). :func:`check_params` checks every field of an estimator against its
declaration, with one message form, "Class: param=value is invalid; expected ...". Rules that
relate several parameters stay hand-written, in the families' ``_check_params``.

``trainer=True`` marks the parameters that the estimator hands, under the same name, to
:class:`aekit.training.TrainerConfig`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from .errors import ParameterError

CONSTRAINTS = "aekit_constraints"  # field metadata: the tuple of constraints (None: the value None)
TRAINER = "aekit_trainer"  # field metadata: handed to the TrainerConfig field of the same name


class Constraint:
    """A set of valid values: ``accepts(value)``, and ``str(self)`` says what they are."""

    def accepts(self, value: Any) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def cast(self, value: Any) -> Any:
        """The accepted ``value`` as a plain Python value (numpy scalars become int, float)."""
        return value


def _is_int(v: Any) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_)


def _is_real(v: Any) -> bool:
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(
        v, bool | np.bool_
    )


def _number(x: float) -> str:
    return f"{x:g}"


class Integer(Constraint):
    """An integer (not a bool) in ``[low, high]`` (either end None: unbounded)."""

    def __init__(self, low: int | None = None, high: int | None = None):
        self.low, self.high = low, high

    def accepts(self, v: Any) -> bool:
        return (
            _is_int(v)
            and (self.low is None or v >= self.low)
            and (self.high is None or v <= self.high)
        )

    def cast(self, v: Any) -> int:
        return int(v)

    def __str__(self) -> str:
        if self.low is not None and self.high is not None:
            return f"an integer in [{self.low}, {self.high}]"
        if self.low is not None:
            return f"an integer >= {self.low}"
        if self.high is not None:
            return f"an integer <= {self.high}"
        return "an integer"


class Real(Constraint):
    """A finite number (NaN and infinities refused) between ``low`` and ``high``.

    ``closed``: which finite ends belong to the interval, ``"both"``, ``"left"``, ``"right"`` or
    ``"neither"`` (as in scikit-learn's ``Interval``); an end that is None is unbounded.
    """

    def __init__(self, low: float | None = None, high: float | None = None, *,
                 closed: str = "both"):  # fmt: skip
        if closed not in ("both", "left", "right", "neither"):
            raise ValueError(f"closed={closed!r}")
        self.low, self.high, self.closed = low, high, closed

    def accepts(self, v: Any) -> bool:
        if not _is_real(v) or not math.isfinite(v):
            return False
        left, right = self.closed in ("both", "left"), self.closed in ("both", "right")
        if self.low is not None and (v < self.low or (v == self.low and not left)):
            return False
        return self.high is None or not (v > self.high or (v == self.high and not right))

    def cast(self, v: Any) -> float:
        return float(v)

    def __str__(self) -> str:
        left, right = self.closed in ("both", "left"), self.closed in ("both", "right")
        if self.low is not None and self.high is not None:
            return (f"a number in {'[' if left else '('}{_number(self.low)}, "
                    f"{_number(self.high)}{']' if right else ')'}")  # fmt: skip
        if self.low is not None:
            return f"a finite number {'>=' if left else '>'} {_number(self.low)}"
        if self.high is not None:
            return f"a finite number {'<=' if right else '<'} {_number(self.high)}"
        return "a finite number"


class Options(Constraint):
    """One of the given strings."""

    def __init__(self, *options: str):
        self.options = tuple(options)

    def accepts(self, v: Any) -> bool:
        return isinstance(v, str) and v in self.options

    def cast(self, v: Any) -> str:
        return str(v)

    def __str__(self) -> str:
        names = ", ".join(repr(o) for o in self.options)
        return names if len(self.options) == 1 else f"one of {names}"


class Boolean(Constraint):
    """True or False (a numpy bool too)."""

    def accepts(self, v: Any) -> bool:
        return isinstance(v, bool | np.bool_)

    def cast(self, v: Any) -> bool:
        return bool(v)

    def __str__(self) -> str:
        return "True or False"


class Sizes(Constraint):
    """Layer widths: a tuple (or list) of positive integers, possibly empty."""

    def __init__(self, example: str = "(256, 128)"):
        self.example = example

    def accepts(self, v: Any) -> bool:
        return isinstance(v, tuple | list) and all(_is_int(h) and h >= 1 for h in v)

    def cast(self, v: Any) -> tuple[int, ...]:
        return tuple(int(h) for h in v)

    def __str__(self) -> str:
        return f"a tuple of positive integers such as {self.example}, or ()"


class Shape(Constraint):
    """The shape of one sample, positive integers: an image ``(channels, height, width)`` or a
    window of a multivariate sequence ``(time_steps, channels)``."""

    def accepts(self, v: Any) -> bool:
        return (
            isinstance(v, tuple | list)
            and len(v) in (2, 3)
            and all(_is_int(s) and s >= 1 for s in v)
        )

    def cast(self, v: Any) -> tuple[int, ...]:
        return tuple(int(s) for s in v)

    def __str__(self) -> str:
        return "(channels, height, width) for images or (time_steps, channels) for sequences"


class Instance(Constraint):
    """An instance of one of the given types, described by ``description``."""

    def __init__(self, types: type | tuple[type, ...], description: str):
        self.types, self.description = types, description

    def accepts(self, v: Any) -> bool:
        return isinstance(v, self.types)

    def __str__(self) -> str:
        return self.description


class Function(Constraint):
    """A callable (a user's function): a parameter that holds user code.

    ``builtin``: the names the parameter also takes that are not code (the AAE's built-in
    priors); any other string it holds is an import path (``"package.module:function"``), which
    :func:`aekit.load` and the command line import only when the caller trusts the code.
    """

    kind = "function"  # what an imported name must be (aekit.persist checks it)

    def __init__(self, builtin: tuple[str, ...] = ()):
        self.builtin = tuple(builtin)

    def accepts(self, v: Any) -> bool:
        return callable(v) and not isinstance(v, type)

    def __str__(self) -> str:
        return "a function"


class Network(Function):
    """A network a user brings (``encoder=``, ``decoder=``, ``discriminator=``): a
    ``torch.nn.Module`` subclass, an import path to one (``"package.module:Name"``, imported at
    ``fit`` time; read from a file, only with ``trust_code``), or a module instance (``fit``
    trains a copy). :mod:`aekit.networks` builds it; :func:`aekit.load` imports a saved path only
    when the caller trusts it, and accepts only an ``nn.Module`` subclass even then."""

    kind = "module"

    def accepts(self, v: Any) -> bool:
        if isinstance(v, str):
            return bool(v.strip())
        import torch  # (only when a value is checked: the CLI's --help does not import torch)

        if isinstance(v, type):
            return issubclass(v, torch.nn.Module)
        return isinstance(v, torch.nn.Module)

    def __str__(self) -> str:
        return (
            "a torch.nn.Module subclass, an import path 'package.module:Name' to one, or an "
            "nn.Module instance"
        )


def param(default: Any, *constraints: Constraint | None, trainer: bool = False) -> Any:
    """A dataclass field holding an estimator parameter: its default and the constraints its
    value must meet (one of them; ``None`` admits the value None). ``trainer``: the estimator
    hands it to :class:`~aekit.training.TrainerConfig` under the same name."""
    if not constraints:
        raise TypeError("param() needs at least one constraint")
    return dataclasses.field(default=default,
                             metadata={CONSTRAINTS: constraints, TRAINER: trainer})  # fmt: skip


def param_of(owner: type, name: str, **changes: Any) -> Any:
    """The declaration of ``owner``'s parameter ``name`` again, with its constraints and a new
    ``default`` if given: for a class that takes another family's parameter without inheriting
    it (the stacked models take the layer kinds' parameters) or changes its default."""
    f = owner.__dataclass_fields__[name]  # type: ignore[attr-defined]
    default = changes.pop("default", f.default)
    if changes:
        raise TypeError(f"param_of: unexpected {sorted(changes)}")
    return dataclasses.field(default=default, metadata=f.metadata)


def constraints_of(f: dataclasses.Field) -> tuple[Constraint | None, ...] | None:
    """The constraints a field declares, or None for a field declared without :func:`param`."""
    return f.metadata.get(CONSTRAINTS)


def sequence_fields(cls: type) -> tuple[str, ...]:
    """The parameters of ``cls`` that hold sequences (:class:`Sizes`, :class:`Shape`): JSON and
    the command line give them as lists or single values, the estimator takes tuples."""
    return tuple(
        f.name
        for f in dataclasses.fields(cls)
        if any(isinstance(c, Sizes | Shape) for c in constraints_of(f) or ())
    )


def code_fields(cls: type) -> dict[str, tuple[str, tuple[str, ...]]]:
    """The parameters of ``cls`` that may hold user code (a :class:`Function` constraint):
    ``name -> (kind, built-in names)``, where ``kind`` is what an imported name must be
    (``"function"``) and the built-in names are the strings that are not code. A string that is
    not built in is an import path, imported only with ``trust_code``."""
    out = {}
    for f in dataclasses.fields(cls):
        code = [c for c in constraints_of(f) or () if isinstance(c, Function)]
        if code:
            out[f.name] = (code[0].kind, code[0].builtin)
    return out


def describe(constraints: tuple[Constraint | None, ...]) -> str:
    """``"A"``, ``"A or B"``, ``"A, B or C"``."""
    words = ["None" if c is None else str(c) for c in constraints]
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def matching(constraints: tuple[Constraint | None, ...], value: Any) -> Constraint | bool | None:
    """The first constraint ``value`` meets (None for the value None), or False."""
    for c in constraints:
        if (value is None) if c is None else c.accepts(value):
            return c
    return False


def check_params(estimator: Any) -> None:
    """Check every parameter of ``estimator`` (a dataclass) against the constraints its field
    declares, in declaration order; :class:`ParameterError` for the first that fails. Fields
    declared without :func:`param` are not checked (the tests require a declaration for every
    parameter of aekit's own families)."""
    for f in dataclasses.fields(estimator):
        constraints = constraints_of(f)
        value = getattr(estimator, f.name)
        if constraints is not None and matching(constraints, value) is False:
            raise bad_param(type(estimator).__name__, f.name, value, describe(constraints))


def trainer_settings(estimator: Any) -> dict[str, Any]:
    """The parameters declared ``trainer=True``, as plain Python values (checked first)."""
    out = {}
    for f in dataclasses.fields(estimator):
        if f.metadata.get(TRAINER):
            value = getattr(estimator, f.name)
            c = matching(f.metadata[CONSTRAINTS], value)
            out[f.name] = c.cast(value) if isinstance(c, Constraint) else value
    return out


def bad_param(cls_name: str, param: str, value: Any, expected: str) -> ParameterError:
    """The one message form of a parameter error."""
    return ParameterError(f"{cls_name}: {param}={value!r} is invalid; expected {expected}")
