"""Variational autoencoders (Kingma and Welling 2014) and the importance-weighted bound (Burda
et al. 2015, *Importance weighted autoencoders*).

Generative model ``p(z) = N(0, I)``, ``p(x | z)``: Bernoulli with logits ``g(z)`` (binary cross
entropy, for data in [0, 1]) or Gaussian ``N(g(z), sigma^2 I)`` with one shared variance (learned
or fixed; a linear decoder then makes the model probabilistic PCA). Inference model
``q(z | x) = N(mu(x), diag exp(logvar(x)))``, sampled by reparameterisation
``z = mu + exp(logvar / 2) * eps``.

Training maximises the evidence lower bound (nats per sample)::

    ELBO(x) = E_q[log p(x | z)] - KL(q(z | x) || p(z)),
    KL = 1/2 sum_j (mu_j^2 + exp(logvar_j) - 1 - logvar_j)        (Kingma and Welling, app. B)

or, with ``n_importance_samples = k > 1``, the tighter bound
``L_k = E[log 1/k sum_i p(x, z_i) / q(z_i | x)]``, computed with ``logsumexp``. ``L_1 <= L_k <=
L_{k+1} <= log p(x)``; the same estimator with many samples estimates ``log p(x)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.base import clone
from sklearn.utils.validation import check_is_fitted
from torch import nn
from torch.nn import functional as F

from .. import distributed as dist
from .._params import Integer, Options, Real, param, param_of
from .._typing import ArrayLike, Input, RandomState
from ..anomaly import OutlierMixin
from ..errors import DataError, ParameterError
from ..estimator import BaseAutoencoder, inference_chunk
from ..losses import best_reconstruction_loss, reconstruction_deviance
from ..networks import mean_and_logvar
from ..runtime import available_memory, resolve_device, seed_from
from ..sources import IterableSource, Source, n_rows, probe_rows
from ..training import Phase

LIKELIHOODS = ("gaussian", "bernoulli")
BINARIZE = ("dynamic", "static")  # or None
_LOG_2PI = math.log(2 * math.pi)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``KL(N(mu, diag exp(logvar)) || N(0, I))`` per dimension, shape of ``mu``."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar)


def log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``log N(z; mu, diag exp(logvar))`` summed over the last dimension."""
    return -0.5 * ((z - mu).pow(2) / logvar.exp() + logvar + _LOG_2PI).sum(-1)


class VAEModule(nn.Module):
    """Encoder to ``(mu, logvar)``, decoder to the parameters of ``p(x | z)``, and the bounds."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module, latent_dim: int, *,
                 likelihood: str, variance: str | float, beta: float, free_bits: float,
                 k: int, binarize: str | None, warmup_steps: int,
                 gradient: str = "standard"):  # fmt: skip
        super().__init__()
        self.encoder, self.decoder = encoder, decoder
        self.latent_dim, self.likelihood = latent_dim, likelihood
        self.beta, self.free_bits, self.k = float(beta), float(free_bits), int(k)
        self.binarize, self.gradient = binarize, gradient
        # Saved with the weights, so that a resumed run continues its warm-up where it was.
        self.register_buffer("warmup_steps", torch.tensor(int(warmup_steps)))
        # Known on the host: without a warm-up, a training step does no ramp arithmetic (seven
        # small kernels a step, as much as the rest of a small model's step on a GPU).
        self.warms_up = int(warmup_steps) > 0
        if likelihood == "gaussian" and variance == "learned":
            self.log_var_x = nn.Parameter(torch.zeros(()))
        elif likelihood == "gaussian":
            self.register_buffer("log_var_x", torch.tensor(math.log(float(variance))))
        self.register_buffer("step", torch.zeros((), dtype=torch.long))  # for the KL warm-up

    # -- the two models ----------------------------------------------------------------------

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x)
        return h[:, : self.latent_dim], h[:, self.latent_dim :]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The posterior mean (``transform``)."""
        return self.posterior(x)[0]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The mean of ``p(x | z)``."""
        out = self.decoder(z)
        return torch.sigmoid(out) if self.likelihood == "bernoulli" else out

    def log_px(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """``log p(x | z)`` summed over features, for decoder outputs ``out`` (broadcasts over
        leading sample dimensions)."""
        if self.likelihood == "bernoulli":
            return -F.binary_cross_entropy_with_logits(out, x.expand_as(out), reduction="none").sum(
                -1
            )
        var = self.log_var_x.exp()
        return -0.5 * ((x - out).pow(2) / var + self.log_var_x + _LOG_2PI).sum(-1)

    def best_log_px(self, x: torch.Tensor) -> torch.Tensor:
        """Per row, the largest ``log p(x | z)`` a decoder output can give ``x``, shape ``(n,)``:
        minus the row's entropy for the Bernoulli likelihood (zero for binary rows; see
        :func:`~aekit.losses.best_reconstruction_loss`). Zero for the Gaussian likelihood, whose
        ceiling is the same for every row and changes no ranking."""
        if self.likelihood == "bernoulli":
            return -best_reconstruction_loss(x, "bce")
        return x.new_zeros(x.shape[0])

    def anomaly_score(self, x: torch.Tensor) -> torch.Tensor:
        """The ELBO of :meth:`score_samples` less :meth:`best_log_px`: the threshold's score.
        Under the Bernoulli likelihood the difference is taken per feature before the sum, as
        :func:`~aekit.losses.reconstruction_deviance` does."""
        out, kl = self._fixed_noise_pass(x)
        if self.likelihood != "bernoulli":
            return self.log_px(x, out) - kl - self.best_log_px(x)
        return -reconstruction_deviance(out, x, "bce") - kl

    def sample_posterior(self, mu, logvar, k: int, generator) -> torch.Tensor:
        eps = dist.randn(
            (k, *mu.shape), generator=generator, rows_dim=1, device=mu.device, dtype=mu.dtype
        )
        return mu + (0.5 * logvar).exp() * eps

    def log_weights(self, x: torch.Tensor, k: int, generator, posterior=None, eps=None):
        """``log p(x, z_i) - log q(z_i | x)`` for ``k`` posterior samples: shape ``(k, n)``.
        ``posterior`` reuses ``(mu, logvar)``; ``eps`` of shape ``(k, n, latent)`` gives the
        standard normal draws instead of ``generator``."""
        mu, logvar = self.posterior(x) if posterior is None else posterior
        if eps is None:
            z = self.sample_posterior(mu, logvar, k, generator)
        else:
            z = mu + (0.5 * logvar).exp() * eps
        return self.log_weights_at(x, z, mu, logvar)

    def log_weights_at(self, x: torch.Tensor, z: torch.Tensor, mu, logvar) -> torch.Tensor:
        """``log p(x, z) - log q(z | x)`` for given codes ``z`` of shape ``(k, n, latent)``,
        with ``q = N(mu, diag exp(logvar))``: shape ``(k, n)``."""
        log_prior = -0.5 * (z.pow(2) + _LOG_2PI).sum(-1)
        # The decoder takes flat rows of codes (a conv decoder unflattens its input's last axis
        # into a feature map): (k, n, latent) goes in as (k * n, latent).
        x_hat = self.decoder(z.reshape(-1, z.shape[-1])).reshape(*z.shape[:-1], -1)
        return self.log_px(x, x_hat) + log_prior - log_normal(z, mu, logvar)

    def iwae_objective(self, x: torch.Tensor, generator) -> torch.Tensor:
        """The batch mean of ``L_k`` (k = ``self.k``) to maximise. With ``gradient="dreg"`` its
        value is the same, its gradient the doubly reparameterised estimator of Tucker et al.
        2019 (*Doubly reparameterized gradient estimators for Monte Carlo objectives*, eq. 5):

        * the decoder's gradient is the IWAE gradient, ``sum_i w~_i grad_theta log w_i`` with
          the normalised weights ``w~_i = w_i / sum_j w_j``;
        * the encoder's is ``sum_i w~_i^2 (d log w_i / d z_i)(d z_i / d phi)``. The IWAE
          gradient's score term ``sum_i w~_i grad_phi log q(z_i | x)`` (the reason its encoder
          gradient gets noisier as ``k`` grows, Rainforth et al. 2018) is not zero in
          expectation for ``k > 1``: a second reparameterisation rewrites it as a pathwise
          term, and the two pathwise terms together weigh each sample by ``w~_i^2`` instead of
          ``w~_i``. Dropping it alone would be biased. With ``k = 1`` the option changes
          nothing (the ELBO's own objective is used).

        ``log q(z_i | x)`` is evaluated with the posterior's parameters detached (the score term
        removed), ``w~`` is a constant of the backward pass, and a hook multiplies the gradient
        that reaches each ``z_i`` by its ``w~_i`` (``w~_i`` to ``w~_i^2``). One forward and one
        backward pass, as for the standard estimator."""
        if self.gradient != "dreg" or not torch.is_grad_enabled():
            return self.iwae_bound(x, self.k, generator).mean()
        mu, logvar = self.posterior(x)
        z = self.sample_posterior(mu, logvar, self.k, generator)
        log_w = self.log_weights_at(x, z, mu.detach(), logvar.detach())  # no score term
        with torch.no_grad():
            w = torch.softmax(log_w, 0)
            bound = (torch.logsumexp(log_w, 0) - math.log(self.k)).mean()
        if z.requires_grad:  # not when the encoder is frozen
            # (under autocast z may be bf16 and w float32: the hook keeps the gradient's dtype)
            z.register_hook(lambda g: g * w.unsqueeze(-1).to(g.dtype))
        surrogate = (w * log_w).sum(0).mean()
        return bound + (surrogate - surrogate.detach())  # the bound's value, DReG's gradient

    def iwae_bound(self, x: torch.Tensor, k: int, generator, eps=None) -> torch.Tensor:
        """``log 1/k sum_i w_i`` per sample (``k = 1``: a one-sample ELBO estimate)."""
        return torch.logsumexp(self.log_weights(x, k, generator, eps=eps), 0) - math.log(k)

    def iwae_bound_chunked(self, x: torch.Tensor, k: int, chunk: int, generator, eps=None):
        """:meth:`iwae_bound` over ``chunk`` samples at a time, with a running ``logsumexp``:
        ``log sum_i w_i = logaddexp(log sum_{i<c} w_i, log sum_{i>=c} w_i)``. Memory is that of
        ``chunk`` samples whatever ``k``; for the same draws (``eps``) the result equals the
        unchunked bound up to rounding. For evaluation (no autograd graph is kept)."""
        posterior = self.posterior(x)
        running = torch.full((x.shape[0],), -math.inf, device=x.device, dtype=x.dtype)
        for start in range(0, k, chunk):
            m = min(chunk, k - start)
            part = None if eps is None else eps[start : start + m]
            lw = self.log_weights(x, m, generator, posterior=posterior, eps=part)
            running = torch.logaddexp(running, torch.logsumexp(lw, 0))
        return running - math.log(k)

    @torch.no_grad()
    def values_per_sample(self) -> tuple[int, int]:
        """Floats that one posterior sample of one row costs in :meth:`log_weights`: ``(kept,
        peak)``, where ``kept`` sums every decoder layer's output and the likelihood's terms (all
        kept for the backward pass when training) and ``peak`` is the most alive at once without
        autograd (two consecutive layers and the likelihood's terms)."""
        sizes: list[int] = []

        def record(_module, _inputs, out):  # out[0]: one row's output (or a tuple's first)
            sizes.append(int(out[0].numel()) if hasattr(out[0], "numel") else 0)

        hooks = [m.register_forward_hook(record)
                 for m in self.decoder.modules() if not list(m.children())]  # fmt: skip
        training = self.decoder.training
        try:
            self.decoder.eval()  # one row: batch norm must not update or need a batch
            p = next(self.decoder.parameters(), None)
            device = p.device if p is not None else None
            out = self.decoder(torch.zeros(1, self.latent_dim, device=device))
        finally:
            self.decoder.train(training)
            for h in hooks:
                h.remove()
        n_out, latent = out[0].numel(), self.latent_dim
        sizes = sizes or [n_out]
        pairs = max(a + b for a, b in zip([latent, *sizes], [*sizes, n_out], strict=False))
        return sum(sizes) + 3 * n_out + 4 * latent, pairs + 2 * n_out + 4 * latent

    def elbo(self, x: torch.Tensor, generator) -> torch.Tensor:
        """Per-sample ELBO with the analytic KL and one reparameterised sample."""
        mu, logvar = self.posterior(x)
        z = self.sample_posterior(mu, logvar, 1, generator)[0]
        return self.log_px(x, self.decoder(z)) - gaussian_kl(mu, logvar).sum(1)

    # -- training ----------------------------------------------------------------------------

    def _binarized(self, x: torch.Tensor, generator) -> torch.Tensor:
        if self.binarize == "dynamic":  # a fresh draw of the binary image every batch
            return dist.bernoulli(x, generator=generator)
        return x

    def objective(self, x: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Minus the ELBO (beta-weighted KL, warm-up, free bits), or minus ``L_k`` for k > 1."""
        x = self._binarized(x, generator)
        if self.k > 1:
            bound = self.iwae_objective(x, generator)
            return {"loss": -bound, "bound": bound.detach()}
        mu, logvar = self.posterior(x)
        z = self.sample_posterior(mu, logvar, 1, generator)[0]
        out = self.decoder(z)
        if self.likelihood == "bernoulli":  # -log p(x|z) summed over features, batch mean:
            # one summed reduction instead of per-row sums then a mean (0.16 ms a step on the CPU)
            rec = F.binary_cross_entropy_with_logits(out, x, reduction="sum") / len(x)
        else:
            rec = -self.log_px(x, out).mean()
        if self.free_bits > 0:  # free bits clamp each dimension's KL over the (global) batch
            kl_dims = dist.batch_mean(gaussian_kl(mu, logvar))  # per latent dimension
            kl, kl_term = kl_dims.sum(), kl_dims.clamp_min(self.free_bits).sum()
        else:  # linear in the rows: this process's own mean is its share of the global one
            kl = kl_term = gaussian_kl(mu, logvar).sum() / len(x)
        weight = self.beta
        if self.training and self.warms_up:
            # (step + 1) / W, capped at 1, as tensor arithmetic (no device synchronisation)
            ramp = ((self.step + 1) / self.warmup_steps.clamp_min(1)).clamp(max=1.0)
            weight = self.beta * torch.where(self.warmup_steps > 0, ramp, torch.ones_like(ramp))
            self.step += 1
        loss = rec + kl_term if isinstance(weight, float) and weight == 1.0 else (
            rec + weight * kl_term)  # fmt: skip
        rec, kl = rec.detach(), kl.detach()  # the metrics need no autograd
        return {"loss": loss, "reconstruction": rec, "kl": kl, "elbo": -(rec + kl)}

    def score_samples(self, x: torch.Tensor) -> torch.Tensor:
        """Per-sample ELBO, deterministic: every row uses the same fixed noise vector
        ``eps`` (seed 0), so a row's score does not depend on the other rows or its position."""
        out, kl = self._fixed_noise_pass(x)
        return self.log_px(x, out) - kl

    def _fixed_noise_pass(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The decoder's output for ``z = mu + sigma * eps`` with one fixed noise vector
        ``eps`` (seed 0) shared by all rows, and each row's KL term: what the deterministic
        per-row scores are made of."""
        g = torch.Generator(device=x.device).manual_seed(0)
        eps = torch.randn(self.latent_dim, generator=g, device=x.device, dtype=x.dtype)
        mu, logvar = self.posterior(x)
        z = mu + (0.5 * logvar).exp() * eps
        return self.decoder(z), gaussian_kl(mu, logvar).sum(1)

    def phases(self) -> list[Phase]:
        return [Phase("elbo", self.objective, list(self.parameters()))]


@dataclass(kw_only=True, repr=False, eq=False)
class VAE(OutlierMixin, BaseAutoencoder):
    """Variational autoencoder, a scikit-learn transformer (``transform``: the posterior mean).

    Takes the network and training parameters of :class:`~aekit.Autoencoder`, with
    ``hidden=(256, 128)`` by default (Autoencoder's wider MLP was measured only for the plain
    families) and, like it, ``lr_schedule="auto"``: ``lr`` for four fifths of ``max_epochs``,
    then a cooldown to 0 (the constant ``lr`` in ``partial_fit``). On a validation split of
    Fashion-MNIST it raised the held-out log-likelihood of the default VAE over a constant rate
    by +1.52, -0.06 and +0.49 nats (seeds 0-2; docs/experiments.md). And:

    Parameters
    ----------
    likelihood : {"auto", "gaussian", "bernoulli"}, default="auto"
        ``p(x | z)``: Gaussian with a shared variance (real-valued data), or Bernoulli from logits
        (data in [0, 1]). ``"auto"``: Bernoulli when the data of the first fit lie in [0, 1] (or
        with ``binarize``), Gaussian otherwise; the choice is ``likelihood_``.
    gaussian_variance : "learned" or float, default="learned"
        The Gaussian likelihood's shared variance.
    beta : float, default=1.0
        Weight of the KL term (beta-VAE).
    kl_warmup_epochs : int, default=0
        The KL weight rises linearly, per step, from 0 to ``beta`` over this many epochs.
    free_bits : float, default=0.0
        Nats per latent dimension (on the batch mean) below which its KL is not penalised.
    n_importance_samples : int, default=1
        ``k > 1`` trains the importance-weighted bound ``L_k``.
    iwae_gradient : {"standard", "dreg"}, default="standard"
        For ``k > 1``, the estimator of ``L_k``'s gradient: the IWAE paper's, or the doubly
        reparameterised one (Tucker et al. 2019; :meth:`VAEModule.iwae_objective`), unbiased
        too, with an encoder gradient about 20x less variable at k = 5 on digits
        (``tests/test_vae.py``). The bound's value is the same; with ``k = 1`` it changes
        nothing. At k = 5 on Fashion-MNIST it did not raise the held-out log-likelihood
        (docs/experiments.md), so it is not the default; the paper's gains are at larger ``k``.
    encoder, decoder : as for :class:`~aekit.Autoencoder`
        Your own networks. The encoder returns ``(mu, logvar)``, each ``(n, latent_dim)``, or
        one tensor ``(n, 2 * latent_dim)`` with the mean first (``out_features`` is
        ``2 * latent_dim``); the decoder returns logits for the Bernoulli likelihood, the mean
        for the Gaussian one.
    binarize : {None, "dynamic", "static"}, default=None
        Bernoulli likelihood only: a fresh binary sample of the intensities each batch
        (``"dynamic"``, as in the IWAE paper), one seeded sample at fit (``"static"``), or none.
    anomaly_score : {"elbo", "log_likelihood"}, default="elbo"
        The score that ``decision_function``, ``predict`` and the threshold ``offset_`` use
        (:mod:`aekit.anomaly`): the ELBO (``score_samples``, one fixed noise vector: cheap), or
        the importance-sampled estimate of ``log p(x)`` with ``anomaly_samples`` samples (the
        bound ``L_k`` of :meth:`log_likelihood`, per row, seed 0): tighter, ``k`` times the cost.
        Either is taken relative to the row's best ``log p(x | z)`` (``best_log_px``: minus the
        row's entropy under the Bernoulli likelihood, zero for binary rows and for the Gaussian
        likelihood), so ``decision_function`` is ``score_samples(X) - offset_`` plus that
        entropy. Unadjusted, a Bernoulli likelihood of grey levels ranks rows by their entropy,
        not their fit (docs/anomaly.md measures both scores). ``score_samples`` and ``score``
        stay the ELBO, a bound on ``log p(x)``.
    anomaly_samples : int, default=100
        ``k`` for ``anomaly_score="log_likelihood"``.

    Notes
    -----
    ``history_`` reports ``loss`` (minus the bound trained); for k = 1 also ``reconstruction``,
    ``kl`` and ``elbo``, for k > 1 ``bound`` (all in nats per sample). ``score`` is the mean ELBO
    from one fixed noise vector shared by all rows (deterministic, and a row's score depends on
    that row only). Evaluation methods take X as given: for a model trained on binarised data,
    binarise the evaluation data too (``aekit evaluate`` does, seeded).
    """

    lr_schedule: str = param_of(BaseAutoencoder, "lr_schedule", default="auto")
    likelihood: str = param("auto", Options("auto", *LIKELIHOODS))
    gaussian_variance: str | float = param(
        "learned", Options("learned"), Real(0, None, closed="neither")
    )
    beta: float = param(1.0, Real(0, None))
    kl_warmup_epochs: int = param(0, Integer(0))
    free_bits: float = param(0.0, Real(0, None))
    n_importance_samples: int = param(1, Integer(1))
    iwae_gradient: str = param("standard", Options("standard", "dreg"))
    binarize: str | None = param(None, None, Options(*BINARIZE))
    anomaly_score: str = param("elbo", Options("elbo", "log_likelihood"))
    anomaly_samples: int = param(100, Integer(1))

    _auto_params: ClassVar[dict[str, tuple[str, str]]] = {"likelihood": ("bernoulli", "gaussian")}

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.aekit.generative = tags.aekit.stochastic_decoder = True
        tags.aekit.has_likelihood = True
        tags.aekit.binary_input = self.binarize is not None
        return tags

    def _check_params(self) -> None:
        super()._check_params()
        name = type(self).__name__
        if self.binarize is not None and self.likelihood not in ("bernoulli", "auto"):
            raise ParameterError(f"{name}: binarize needs likelihood='bernoulli' (or 'auto')")
        k, w = self.n_importance_samples, self.kl_warmup_epochs
        if k > 1 and (self.beta != 1 or self.free_bits > 0 or w > 0):
            raise ParameterError(
                f"{name}: beta, free_bits and kl_warmup_epochs shape the ELBO's KL term; the "
                "importance-weighted bound (n_importance_samples > 1) has none: leave them at "
                "1, 0 and 0"
            )

    def _anomaly_scores(self, X, y=None) -> np.ndarray:
        # relative to each row's best log p(x | z): the Bernoulli likelihood of an intensity in
        # (0, 1) is at most minus its entropy, and unadjusted the score ranks rows by their grey
        # levels (one-class Fashion-MNIST: mean ROC-AUC 0.749 against 0.903; docs/anomaly.md)
        if self.anomaly_score == "log_likelihood":
            return self._per_row(X, int(self.anomaly_samples), 0, relative=True)
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        self._check_values(X)
        return self._batched(self.module_.anomaly_score, X).astype(np.float64)

    def _auto_reason(self, name: str) -> str:
        if self.binarize is not None:
            return f"because binarize={self.binarize!r} draws binary rows"
        return super()._auto_reason(name)

    def _unit_interval_reason(self) -> tuple[str, str]:
        reason, instead = super()._unit_interval_reason()
        if self.binarize is not None:  # a Gaussian likelihood does not binarise
            instead = "binarize=None (with likelihood='gaussian')"
        return reason, instead

    def _resolve_auto(self, X: np.ndarray) -> dict[str, str]:
        if self.binarize is not None and self.likelihood == "auto":  # binary draws: Bernoulli
            self.likelihood_ = "bernoulli"
            return {"likelihood": "bernoulli"}
        return super()._resolve_auto(X)

    def _build_module(self) -> VAEModule:
        latent = int(self.latent_dim)
        encoder, _ = self._build_networks(  # mu and logvar
            latent_dim=2 * latent, only="encoder", encoder_output=mean_and_logvar(latent)
        )
        _, decoder = self._build_networks(only="decoder")
        n = self.__dict__.get("n_train_rows_", 0)  # for the warm-up (0 when loading)
        steps_per_epoch = math.ceil(n / int(self.batch_size)) if n else 0
        return VAEModule(
            encoder, decoder, latent, likelihood=self.likelihood_,
            variance=self.gaussian_variance, beta=self.beta, free_bits=self.free_bits,
            k=int(self.n_importance_samples), binarize=self.binarize,
            gradient=self.iwae_gradient,
            warmup_steps=int(self.kl_warmup_epochs) * steps_per_epoch,
        )  # fmt: skip

    def _init_from_data(self, module, X: np.ndarray) -> None:
        pass

    def preflight(self, X: Input, y: ArrayLike | None = None) -> dict[str, Any]:
        resolved = super().preflight(X, y)
        if int(self.n_importance_samples) > 1:
            probe = clone(self)
            X = probe._validate_X(X, reset=True)
            probe._resolve_auto(probe._data_range(X))
            with torch.random.fork_rng(devices=[]):
                module = probe._build_module()
            n = n_rows(X) or len(probe_rows(X))  # an iterable: its probe, for a bound
            n_val = int(n * float(self.validation_fraction))  # as fit's split
            n_val = n_val if 1 <= n_val < n else 0
            probe._check_iwae_memory(module, resolve_device(self.device), n_val)
        return resolved

    def _check_iwae_memory(self, module: VAEModule, device, n_val: int) -> None:
        """Refuse, before training, an ``n_importance_samples`` whose activations cannot fit.

        Training keeps every decoder activation of ``k x batch_size`` samples for the backward
        pass, and their gradients: about ``2 x 4 bytes x k x batch x kept`` values
        (:meth:`VAEModule.values_per_sample`); validation, without autograd, ``4 bytes x k x
        rows x peak`` for its batches of up to ``max(batch_size, 1024)`` rows. The limit is the
        memory available now: ``MemAvailable`` of ``/proc/meminfo`` on the CPU, the free memory
        on a CUDA device; without either (another system) nothing is checked.
        """
        k, batch = int(self.n_importance_samples), int(self.batch_size)
        if k <= 1:
            return
        kept, peak = module.values_per_sample()
        val_rows = min(max(batch, 1024), n_val)
        per_k = {"train": 2 * 4 * batch * kept, "validation": 4 * val_rows * peak}
        phase = max(per_k, key=per_k.get)
        need = k * per_k[phase]
        limit, where = available_memory(device)
        if limit is None or need <= limit:
            return
        fits = max(0, int(limit // per_k[phase]))
        what = (f"training: {k} x {batch} samples x {kept} values x 4 bytes, and as much for "
                "their gradients" if phase == "train" else
                f"validation: {k} x {val_rows} rows x {peak} values x 4 bytes")  # fmt: skip
        fix = "a smaller batch_size" if phase == "train" else "validation_fraction=0"
        raise ParameterError(
            f"{type(self).__name__}: n_importance_samples={k} needs about {need / 1e9:.1f} GB for "
            f"the decoder's activations ({what}), but {where} has {limit / 1e9:.1f} GB "
            f"available. Use a smaller n_importance_samples (at most about {fits} here) or "
            f"{fix}."
        )

    def _check_source(self, X, y) -> None:
        super()._check_source(X, y)
        if not isinstance(X, Source):
            return
        if self.binarize == "static":
            raise DataError(
                f"binarize='static' draws one binary copy of the training rows, which {X.name}, "
                "a Dataset or iterable, does not hold in memory: use binarize='dynamic' (a new "
                "draw every epoch), binarize the samples in the Dataset, or give an array "
                "(np.load(path, mmap_mode='r') for a file)"
            )
        if isinstance(X, IterableSource) and int(self.kl_warmup_epochs) > 0:
            raise DataError(
                f"kl_warmup_epochs={self.kl_warmup_epochs} counts steps per epoch, which an "
                f"iterable of batches ({X.name}) does not know before it is read: give a "
                "map-style Dataset, or kl_warmup_epochs=0"
            )

    def _train(self, X, X_val, epochs, callbacks, **kw) -> None:
        val_index = kw.get("val_index")
        if X_val is not None:  # an iterable's part: at most a validation batch of 1024 rows
            n_val = n_rows(X_val) or 1024
        else:
            n_val = 0 if val_index is None else len(val_index)
        # the bound and its estimator as the parameters are now (set_params between calls)
        self.module_.k, self.module_.gradient = int(self.n_importance_samples), self.iwae_gradient
        self._check_iwae_memory(self.module_, self.device_, n_val)
        if self.binarize == "static":  # one seeded draw (a copy of X), validation rows included
            X = self._static_binary(X)
            X_val = None if X_val is None else self._static_binary(X_val)
        super()._train(X, X_val, epochs, callbacks, **kw)

    # -- evaluation --------------------------------------------------------------------------

    def _static_binary(self, X: np.ndarray) -> np.ndarray:
        """One seeded Bernoulli draw of the intensities, the same at every call."""
        rng = np.random.default_rng(seed_from(self.random_state) if self.random_state is not None
                                    else 0)  # fmt: skip
        return (rng.random(X.shape, dtype=np.float32) < X).astype(np.float32)

    def elbo(self, X: Input, random_state: RandomState = 0) -> float:
        """Mean ELBO (nats per sample): the analytic KL and one independent seeded posterior
        sample per row (:meth:`score` shares one noise vector across rows instead)."""
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        self._check_values(X)
        g = torch.Generator(device=self.device_).manual_seed(seed_from(random_state))
        # the chunk measured on score_samples (the same layers): a probe of elbo would draw from g
        per_row = self._bytes_per_row(self.module_.score_samples, self.n_features_in_)
        return float(np.mean(self._batched(lambda x: self.module_.elbo(x, g), X,
                                           bytes_per_row=per_row)))  # fmt: skip

    def log_likelihood(
        self, X: Input, n_samples: int = 5000, random_state: RandomState = 0
    ) -> float:
        """Importance-sampled estimate of the mean ``log p(x)`` (nats per sample): ``L_k`` with
        ``k = n_samples``, batched so that the samples of a test set fit in memory.

        Rows go in chunks sized for ``k`` samples each (:func:`~aekit.estimator.inference_chunk`
        with ``k`` times one sample's activations, :meth:`VAEModule.values_per_sample`); where
        even one row's ``k`` samples exceed the budget, the samples of a chunk go through the
        decoder a part at a time. The chunks, and so the draws each row gets, depend on the
        device, the network and ``k``, not on the data's source or length."""
        if (
            isinstance(n_samples, bool)
            or not isinstance(n_samples, int | np.integer)
            or n_samples < 1
        ):
            raise ParameterError(f"n_samples={n_samples!r} must be an integer >= 1")
        return float(np.mean(self._per_row(X, int(n_samples), random_state)))

    def _per_row(self, X, k: int, random_state, relative: bool = False) -> np.ndarray:
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        self._check_values(X)
        g = torch.Generator(device=self.device_).manual_seed(seed_from(random_state))
        # k samples of a row each cost `peak` values; a chunk of rows holds all k of them where
        # they fit the budget, else the samples go through the decoder `per_pass` at a time
        _, peak = self.module_.values_per_sample()
        sample_bytes = 4 * peak
        rows, budget = inference_chunk(self.device_, k * sample_bytes, self.n_features_in_)
        per_pass = max(1, min(k, budget // (rows * sample_bytes)))

        def bound(x: torch.Tensor) -> torch.Tensor:
            value = self.module_.iwae_bound_chunked(x, k, per_pass, g)
            return value - self.module_.best_log_px(x) if relative else value

        return self._batched(bound, X, rows=rows).astype(np.float64)

    def active_units(self, X: Input, threshold: float = 0.01) -> int:
        """Latent dimensions ``u`` with ``Cov_x(E_q[z_u]) > threshold`` (Burda et al. 2015)."""
        mu = self.transform(X).astype(np.float64)
        return int((mu.var(axis=0) > threshold).sum())

    # -- generation --------------------------------------------------------------------------

    def sample(self, n: int, random_state: RandomState = None, mean: bool = True) -> np.ndarray:
        """``n`` rows generated from the prior: the means of ``p(x | z)`` (``mean=True``), or
        draws from it. An int ``random_state`` makes it reproducible."""
        check_is_fitted(self)
        g = torch.Generator(device=self.device_).manual_seed(seed_from(random_state))
        with torch.no_grad():
            self.module_.eval()
            z = torch.randn((int(n), int(self.latent_dim)), generator=g, device=self.device_)
            out = self.module_.decode(z)
            if not mean:
                if self.likelihood_ == "bernoulli":
                    out = torch.bernoulli(out, generator=g)
                else:
                    std = (0.5 * self.module_.log_var_x).exp()
                    out = out + std * torch.randn(out.shape, generator=g, device=out.device)
        return out.cpu().numpy().astype(np.float32)
