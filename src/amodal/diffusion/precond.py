"""EDM preconditioning with v-prediction, as in Stable Video Diffusion.

``D(x; sigma) = c_skip(sigma) * x + c_out(sigma) * F(c_in(sigma) * x, c_noise(sigma), **cond)``

With ``sigma_data = 1`` (SVD's choice, and a good one for masks in ``[-1, 1]``):
``c_skip = 1 / (sigma^2 + 1)``, ``c_out = -sigma / sqrt(sigma^2 + 1)``,
``c_in = 1 / sqrt(sigma^2 + 1)``, ``c_noise = ln(sigma) / 4``. The network ``F``
then predicts ``v = (sigma * x0 - n) / sqrt(sigma^2 + 1)`` up to sign: the
target that keeps its output at unit variance at every noise level.
:class:`Denoiser` can instead feed ``c_noise = ln(1 + sigma_data^2 / sigma^2) / 4``
(:func:`log_snr_noise`, ``noise_input="log_snr"``), which is 0 at infinite noise:
the input a one-step regression network was trained with, so that such a
network can start a diffusion model (:mod:`amodal.checkpoints.surgery`).

:class:`BinaryDenoiser` is the alternative for data in ``{-1, 1}`` (masks): the
backbone predicts the logit of ``P(x0 = 1 | x)`` per element, and
``D = tanh(logit / 2) = E[x0 | x]``, the ideal denoiser of binary data, trained
with the binary cross-entropy (a proper scoring rule, so its minimiser is the
true posterior and ``D`` the true score's denoiser).
"""

from __future__ import annotations

import torch
from torch import nn


def append_dims(x: torch.Tensor, target_ndim: int) -> torch.Tensor:
    """Append trailing singleton dims so ``x`` broadcasts against a ``target_ndim`` tensor."""
    missing = target_ndim - x.ndim
    if missing < 0:
        raise ValueError(f"tensor of rank {x.ndim} has more dims than the target rank {target_ndim}")
    return x[(...,) + (None,) * missing]


def vpred_scalings(sigma: torch.Tensor, sigma_data: float = 1.0):
    """EDM scalings for v-prediction: ``(c_skip, c_out, c_in, c_noise)``, each shaped like ``sigma``."""
    total = sigma**2 + sigma_data**2
    c_skip = sigma_data**2 / total
    c_out = -sigma * sigma_data / total.sqrt()
    c_in = 1.0 / total.sqrt()
    c_noise = 0.25 * sigma.log()
    return c_skip, c_out, c_in, c_noise


NOISE_INPUTS = ("log_sigma", "log_snr")


def log_snr_noise(sigma: torch.Tensor, sigma_data: float = 1.0) -> torch.Tensor:
    """``c_noise = ln(1 + sigma_data^2 / sigma^2) / 4``: a quarter of the log of one plus the signal-to-noise ratio, 0 at infinite noise."""
    return 0.25 * torch.log1p(sigma_data**2 / sigma**2)


class Denoiser(nn.Module):
    """Wrap a backbone ``F(x_in, c_noise, **cond)`` into the EDM denoiser ``D(x; sigma, **cond)``.

    The backbone sees the input scaled to unit variance and the noise level as
    ``c_noise``; it knows nothing about sigma schedules. ``sigma`` may be a
    scalar or a ``(B,)`` tensor; ``x`` any rank with batch first. ``noise_input``
    picks ``c_noise``: ``"log_sigma"`` (EDM's ``ln(sigma) / 4``) or ``"log_snr"``
    (:func:`log_snr_noise`).
    """

    def __init__(self, backbone: nn.Module, sigma_data: float = 1.0, noise_input: str = "log_sigma"):
        super().__init__()
        if noise_input not in NOISE_INPUTS:
            raise ValueError(f"noise_input must be one of {list(NOISE_INPUTS)}, got {noise_input!r}")
        self.backbone = backbone
        self.sigma_data = sigma_data  # std of the clean data; 1.0 for SVD latents and {-1, 1} masks
        self.noise_input = noise_input

    def forward(self, x: torch.Tensor, sigma: torch.Tensor | float, **cond) -> torch.Tensor:
        sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
        if sigma.ndim == 0:
            sigma = sigma.expand(x.shape[0])
        c_skip, c_out, c_in, c_noise = vpred_scalings(sigma, self.sigma_data)
        if self.noise_input == "log_snr":
            c_noise = log_snr_noise(sigma, self.sigma_data)
        f = self.backbone(append_dims(c_in, x.ndim) * x, c_noise, **cond)
        return append_dims(c_skip, x.ndim) * x + append_dims(c_out, x.ndim) * f.to(x.dtype)


def binary_scalings(sigma: torch.Tensor, sigma_data: float = 1.0):
    """Input scalings of :class:`BinaryDenoiser`: ``(c_in, c_noise)``, each shaped like ``sigma``.

    ``c_in = sigma_data^2 / (sigma^2 + sigma_data^2)``: the network sees the linear
    (Wiener) estimate of ``x0`` from ``x``, which fades to zero as the noise grows;
    ``c_noise = ln(1 + sigma_data^2 / sigma^2) / 4``, a quarter of the log of one plus
    the signal-to-noise ratio (twice the information a Gaussian channel of that SNR
    carries), which is 0 at infinite noise. At infinite noise the network's inputs
    are then exactly the one-step regression's: zeros and ``c_noise = 0``.
    """
    return sigma_data**2 / (sigma**2 + sigma_data**2), log_snr_noise(sigma, sigma_data)


class BinaryDenoiser(nn.Module):
    """Wrap a backbone ``F(x_in, c_noise, **cond)`` into ``D(x; sigma) = tanh(F / 2)`` for data in ``{-1, 1}``.

    ``F`` is the logit of ``P(x0 = 1 | x; sigma)`` per element, from the inputs of
    :func:`binary_scalings`. ``D`` is then the posterior mean
    ``E[x0 | x] = 2 P - 1``, what every EDM sampler integrates. At infinite noise
    the input says nothing and ``F`` is the logit of the conditional mean: the
    one-step regression objective, with the regression's own inputs.
    """

    def __init__(self, backbone: nn.Module, sigma_data: float = 1.0):
        super().__init__()
        self.backbone = backbone
        self.sigma_data = sigma_data  # {-1, 1} data has std 1

    def logits(self, x: torch.Tensor, sigma: torch.Tensor | float, **cond) -> torch.Tensor:
        """The backbone's logits ``F`` of ``P(x0 = 1 | x)``, shaped like ``x`` (what the cross-entropy trains)."""
        sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
        if sigma.ndim == 0:
            sigma = sigma.expand(x.shape[0])
        c_in, c_noise = binary_scalings(sigma, self.sigma_data)
        return self.backbone(append_dims(c_in, x.ndim) * x, c_noise, **cond).to(x.dtype)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor | float, **cond) -> torch.Tensor:
        return torch.tanh(0.5 * self.logits(x, sigma, **cond))
