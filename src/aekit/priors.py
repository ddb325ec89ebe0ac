"""Priors over codes, for the adversarial autoencoders (Makhzani et al. 2015, section 2).

A prior draws codes from a seeded ``torch.Generator`` on the generator's device:
``prior.sample(n, generator, labels=None) -> (n, dim)`` float32. Priors with components (a mixture,
a swiss roll cut into segments) also draw a labelled code from its class's component, the paper's
use of labels in the regularisation phase (section 2.3): ``labels`` holds a component index per
row, or -1 for "any component".

Built-in priors, by name (``make_prior``):

``"gaussian"``
    ``N(0, I)``.
``"mixture"``
    ``n_components`` Gaussians with standard deviation ``std``. In 2-D their means lie on a circle
    of radius ``radius``, as in the paper's figure 4; in more dimensions on well separated points
    of the sphere of that radius (the axes ``+-radius e_i`` while there are enough of them).
``"swiss_roll"``
    2-D: ``r = 3 sqrt(u)``, angle ``4 pi sqrt(u)`` for ``u ~ U(0, 1)`` (component ``k`` of ``K`` is
    the segment ``u in [k/K, (k+1)/K)``), plus optional Gaussian ``noise``.
``"uniform"``
    The box ``[low, high]^dim``.

A user prior is any callable ``prior(n, generator) -> (n, dim)`` array or tensor, given as the
function itself or as an importable path ``"package.module:function"``. Estimators save it as that
path, so it must be defined at the top level of an importable module.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from . import distributed as dist
from .errors import ParameterError

PRIORS = ("gaussian", "mixture", "swiss_roll", "uniform")

# The parameters each built-in prior takes (through an estimator's ``prior_params``).
PRIOR_PARAMS = {
    "gaussian": {"std": 1.0},
    "mixture": {"radius": 4.0, "std": 0.5},
    "swiss_roll": {"noise": 0.0},
    "uniform": {"low": -2.0, "high": 2.0},
}


class Prior:
    """A distribution over codes of width ``dim`` with ``n_components`` labelled parts (0: none)."""

    dim: int
    n_components: int = 0

    def sample(
        self, n: int, generator: torch.Generator, labels: torch.Tensor | None = None
    ) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _components(self, n: int, generator: torch.Generator, labels) -> torch.Tensor:
        """Component of each row: the label where given (>= 0), else uniform at random."""
        device = generator.device
        drawn = dist.randint(self.n_components, (n,), generator=generator, device=device)
        if labels is None:
            return drawn
        labels = labels.to(device)
        return torch.where(labels >= 0, labels, drawn)

    def _no_labels(self, labels) -> None:
        if labels is not None:
            raise ParameterError(
                f"the {type(self).__name__} has no components to condition on labels; use "
                "prior='mixture' or 'swiss_roll'"
            )


class GaussianPrior(Prior):
    def __init__(self, dim: int, std: float = 1.0):
        self.dim, self.std = int(dim), float(std)

    def sample(self, n, generator, labels=None):
        self._no_labels(labels)
        return self.std * dist.randn((n, self.dim), generator=generator, device=generator.device)


class UniformPrior(Prior):
    def __init__(self, dim: int, low: float = -2.0, high: float = 2.0):
        if not high > low:
            raise ParameterError(f"uniform prior: high={high} must be greater than low={low}")
        self.dim, self.low, self.high = int(dim), float(low), float(high)

    def sample(self, n, generator, labels=None):
        self._no_labels(labels)
        u = dist.rand((n, self.dim), generator=generator, device=generator.device)
        return self.low + (self.high - self.low) * u


def mixture_means(dim: int, n_components: int, radius: float) -> np.ndarray:
    """Component means, ``(n_components, dim)``: at distance ``radius`` from 0 in two or more
    dimensions.

    1-D: evenly spaced on ``[-radius, radius]`` (one component: at 0). 2-D: evenly spaced on
    the circle. More dimensions: ``+-radius e_i`` (orthogonal, or opposite) while
    ``n_components <= 2 dim``; beyond, points spread on the sphere by mutual repulsion
    (deterministic).
    """
    k = int(n_components)
    if dim == 1:
        return (
            np.linspace(-radius, radius, k, dtype=np.float64)[:, None]
            if k > 1
            else np.zeros((1, 1))
        )
    if dim == 2:
        angle = 2 * np.pi * np.arange(k) / k
        return radius * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    if k <= 2 * dim:
        means = np.zeros((k, dim))
        for i in range(k):  # e_0, e_1, ..., then -e_0, -e_1, ...
            means[i, i % dim] = radius if i < dim else -radius
        return means
    # Points that repel each other on the unit sphere (the Thomson problem), from a seeded start:
    # a few hundred steps spread them about as well as the best known codes.
    rng = np.random.default_rng(0)
    m = rng.standard_normal((k, dim))
    m /= np.linalg.norm(m, axis=1, keepdims=True)
    for _ in range(500):
        diff = m[:, None] - m[None]
        d2 = (diff**2).sum(-1) + np.eye(k)
        force = (diff / d2[..., None] ** 1.5).sum(1)
        m += 0.5 * force / np.abs(force).max() / np.sqrt(k)
        m /= np.linalg.norm(m, axis=1, keepdims=True)
    return radius * m


class MixturePrior(Prior):
    def __init__(self, dim: int, n_components: int = 10, radius: float = 4.0, std: float = 0.5):
        if int(n_components) < 1:
            raise ParameterError(f"mixture prior: n_components={n_components} must be >= 1")
        self.dim, self.n_components = int(dim), int(n_components)
        self.radius, self.std = float(radius), float(std)
        self.means = torch.tensor(mixture_means(self.dim, self.n_components, self.radius),
                                  dtype=torch.float32)  # fmt: skip

    def sample(self, n, generator, labels=None):
        k = self._components(n, generator, labels)
        if self.means.device != generator.device:  # moved once, not copied in every step
            self.means = self.means.to(generator.device)
        means = self.means[k]
        noise = dist.randn((n, self.dim), generator=generator, device=generator.device)
        return means + self.std * noise


class SwissRollPrior(Prior):
    def __init__(self, dim: int, n_components: int = 10, noise: float = 0.0):
        if int(dim) != 2:
            raise ParameterError(f"the swiss_roll prior is 2-D; latent_dim={dim} must be 2")
        self.dim, self.n_components, self.noise = 2, int(n_components), float(noise)

    def sample(self, n, generator, labels=None):
        device = generator.device
        k = self._components(n, generator, labels)
        u = (k + dist.rand((n,), generator=generator, device=device)) / self.n_components
        r = 3.0 * u.sqrt()
        angle = 4 * math.pi * u.sqrt()
        z = torch.stack([r * angle.cos(), r * angle.sin()], dim=1)
        if self.noise > 0:
            z = z + self.noise * dist.randn((n, 2), generator=generator, device=device)
        return z


class CallablePrior(Prior):
    """A user's function ``fn(n, generator) -> (n, dim)``; its output is checked on every call."""

    def __init__(self, fn: Callable, dim: int, name: str):
        self.fn, self.dim, self.name = fn, int(dim), name

    def sample(self, n, generator, labels=None):
        self._no_labels(labels)
        n = dist.global_rows(n)  # in data-parallel training: the global batch's draw
        z = self.fn(n, generator)
        if not isinstance(z, torch.Tensor):
            z = torch.as_tensor(np.asarray(z, dtype=np.float32))
        if tuple(z.shape) != (n, self.dim):
            raise ParameterError(
                f"prior {self.name} returned shape {tuple(z.shape)} for n={n}; it must return "
                f"(n, latent_dim) = ({n}, {self.dim})"
            )
        return dist.local_rows(z.to(device=generator.device, dtype=torch.float32))


def import_path(obj: Any) -> str | None:
    """``"module:qualname"`` when importing that gives back ``obj`` (a top-level function or
    class of an importable module), else None (a lambda, a local function, ``__main__``)."""
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not module or not qualname or "<" in qualname or module == "__main__":
        return None
    try:
        found = resolve_path(f"{module}:{qualname}")
    except ParameterError:
        return None
    return f"{module}:{qualname}" if found is obj else None


def resolve_path(path: str) -> Any:
    """The callable named by ``"package.module:name"`` (or ``"package.module.name"``)."""
    obj = import_object(path)
    if not callable(obj):
        raise ParameterError(f"prior={path!r} names {type(obj).__name__}, not a callable")
    return obj


def import_object(path: str, param: str = "prior") -> Any:
    """Import the object named by ``"package.module:name"`` (or ``"package.module.name"``);
    ``param`` names the parameter in messages.

    Importing a module runs its code: :func:`aekit.load` calls this only with ``trust_code``.
    """
    module_name, sep, attr = path.partition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        if param != "prior":
            raise ParameterError(f"{param}={path!r} is not an import path such as "
                                 "'mypackage.nets:Encoder'")  # fmt: skip
        raise ParameterError(
            f"prior={path!r} is not a known prior ({', '.join(PRIORS)}) nor an importable path "
            "such as 'mypackage.priors:ring'"
        )
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        hint = ""
        if isinstance(e, ModuleNotFoundError):
            hint = ("; is the module's folder on the Python path? (from the shell, run from that "
                    "folder as PYTHONPATH=. aekit ...)")  # fmt: skip
        raise ParameterError(f"{param}={path!r} cannot be imported ({e}){hint}") from None
    return obj


def make_prior(
    prior: str | Callable, dim: int, n_components: int = 10, params: dict | None = None
) -> Prior:
    """The prior named ``prior`` (see the module doc), or a user prior (a callable, or an import
    path to one), over codes of width ``dim``."""
    params = dict(params or {})
    if isinstance(prior, str) and prior in PRIORS:
        unknown = set(params) - set(PRIOR_PARAMS[prior])
        if unknown:
            raise ParameterError(
                f"prior_params {sorted(unknown)} do not apply to prior={prior!r}; it takes "
                + (", ".join(PRIOR_PARAMS[prior]) or "none")
            )
        if prior == "gaussian":
            return GaussianPrior(dim, **params)
        if prior == "uniform":
            return UniformPrior(dim, **params)
        if prior == "mixture":
            return MixturePrior(dim, n_components, **params)
        return SwissRollPrior(dim, n_components, **params)
    if params:
        raise ParameterError("prior_params apply to the built-in priors; a user prior takes none")
    if isinstance(prior, str):
        return CallablePrior(resolve_path(prior), dim, repr(prior))
    if callable(prior):
        return CallablePrior(prior, dim, getattr(prior, "__qualname__", repr(prior)))
    raise ParameterError(
        f"prior={prior!r}: give one of {', '.join(PRIORS)}, a callable (n, generator) -> codes, "
        "or an import path 'package.module:function'"
    )
