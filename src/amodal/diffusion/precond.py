"""EDM preconditioning with v-prediction, as in Stable Video Diffusion.

``D(x; sigma) = c_skip(sigma) * x + c_out(sigma) * F(c_in(sigma) * x, c_noise(sigma), **cond)``

With ``sigma_data = 1`` (SVD's choice, and a good one for masks in ``[-1, 1]``):
``c_skip = 1 / (sigma^2 + 1)``, ``c_out = -sigma / sqrt(sigma^2 + 1)``,
``c_in = 1 / sqrt(sigma^2 + 1)``, ``c_noise = ln(sigma) / 4``. The network ``F``
then predicts ``v = (sigma * x0 - n) / sqrt(sigma^2 + 1)`` up to sign: the
target that keeps its output at unit variance at every noise level.
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


class Denoiser(nn.Module):
    """Wrap a backbone ``F(x_in, c_noise, **cond)`` into the EDM denoiser ``D(x; sigma, **cond)``.

    The backbone sees the input scaled to unit variance and the noise level as
    ``c_noise``; it knows nothing about sigma schedules. ``sigma`` may be a
    scalar or a ``(B,)`` tensor; ``x`` any rank with batch first.
    """

    def __init__(self, backbone: nn.Module, sigma_data: float = 1.0):
        super().__init__()
        self.backbone = backbone
        self.sigma_data = sigma_data  # std of the clean data; 1.0 for SVD latents and {-1, 1} masks

    def forward(self, x: torch.Tensor, sigma: torch.Tensor | float, **cond) -> torch.Tensor:
        sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
        if sigma.ndim == 0:
            sigma = sigma.expand(x.shape[0])
        c_skip, c_out, c_in, c_noise = vpred_scalings(sigma, self.sigma_data)
        f = self.backbone(append_dims(c_in, x.ndim) * x, c_noise, **cond)
        return append_dims(c_skip, x.ndim) * x + append_dims(c_out, x.ndim) * f.to(x.dtype)
