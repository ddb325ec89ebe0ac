"""Input corruption for denoising autoencoders (Vincent et al. 2008, 2010).

Every function draws from the generator it is given (the training loop's noise generator, or a
seeded one for evaluation), never from global state, and works on any device.
"""

from __future__ import annotations

import torch

from . import distributed as dist

NOISES = ("masking", "gaussian", "salt_and_pepper")


def corrupt(
    x: torch.Tensor,
    noise: str,
    level: float,
    generator: torch.Generator | None,
    low: torch.Tensor | float = 0.0,
    high: torch.Tensor | float = 1.0,
    clip: bool = False,
) -> torch.Tensor:
    """Return a corrupted copy of ``x`` (shape ``(n, n_features)``).

    Parameters
    ----------
    noise : {"masking", "gaussian", "salt_and_pepper"}
        ``"masking"``: each input is set to 0 with probability ``level`` (the corruption of
        Vincent et al.: ``x~ = x * m`` with ``m_j ~ Bernoulli(1 - level)``).
        ``"gaussian"``: ``x~ = x + level * e`` with ``e ~ N(0, I)``, clipped to ``[low, high]``
        when ``clip``.
        ``"salt_and_pepper"``: a share ``level`` of the inputs, chosen at random, is set to
        ``low`` or ``high`` with equal probability.
    level : float
        Masking probability, noise standard deviation, or share of inputs replaced.
    low, high : float or Tensor of shape (n_features,)
        The data range (per feature for salt-and-pepper and clipping).
    """
    shape, device = x.shape, x.device
    if noise == "masking":
        keep = dist.rand(shape, generator=generator, device=device) >= level
        return x * keep
    if noise == "gaussian":
        out = x + level * dist.randn(shape, generator=generator, device=device, dtype=x.dtype)
        if clip:
            low_t, high_t = (torch.as_tensor(v, device=device, dtype=x.dtype) for v in (low, high))
            out = torch.clamp(out, low_t, high_t)
        return out
    if noise == "salt_and_pepper":
        hit = dist.rand(shape, generator=generator, device=device) < level
        salt = dist.rand(shape, generator=generator, device=device) < 0.5
        low_t = torch.as_tensor(low, device=device, dtype=x.dtype).expand(shape)
        high_t = torch.as_tensor(high, device=device, dtype=x.dtype).expand(shape)
        return torch.where(hit, torch.where(salt, high_t, low_t), x)
    raise ValueError(f"unknown noise {noise!r}; choose one of {', '.join(NOISES)}")
