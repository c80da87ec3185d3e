"""Training objective: the EDM loss with a log-normal noise distribution."""

from __future__ import annotations

import torch

from amodal.diffusion.precond import append_dims


def sample_training_sigmas(
    batch: int,
    p_mean: float,  # mean of ln(sigma); SVD fine-tuning uses 0.7
    p_std: float,  # std of ln(sigma); SVD fine-tuning uses 1.6
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Draw ``(batch,)`` training noise levels with ``ln(sigma) ~ N(p_mean, p_std^2)``."""
    return (torch.randn(batch, generator=generator, device=device) * p_std + p_mean).exp()


def loss_weight(sigma: torch.Tensor, sigma_data: float = 1.0) -> torch.Tensor:
    """EDM's ``lambda(sigma) = (sigma^2 + sigma_data^2) / (sigma * sigma_data)^2``: equalises the loss across noise levels."""
    return (sigma**2 + sigma_data**2) / (sigma * sigma_data) ** 2


def edm_loss(
    denoiser,
    x0: torch.Tensor,
    sigma: torch.Tensor,
    noise: torch.Tensor,
    sigma_data: float = 1.0,
    **cond,
) -> torch.Tensor:
    """The unreduced EDM loss ``lambda(sigma) * (D(x0 + sigma n; sigma) - x0)^2``, shaped like ``x0``.

    Args:
        denoiser: ``denoiser(x, sigma, **cond) -> D``.
        x0: clean samples ``(B, ...)``.
        sigma: ``(B,)`` noise levels (see :func:`sample_training_sigmas`).
        noise: standard normal noise shaped like ``x0``.
    """
    sigma_b = append_dims(sigma, x0.ndim)
    denoised = denoiser(x0 + sigma_b * noise, sigma, **cond)
    return append_dims(loss_weight(sigma, sigma_data), x0.ndim) * (denoised - x0) ** 2
