"""Noise-level schedules for sampling: functions of the step count, nothing else."""

from __future__ import annotations

import torch


def karras_sigmas(
    n: int,
    sigma_min: float,
    sigma_max: float,
    rho: float = 7.0,  # EDM's choice: spends more steps at low noise, where detail forms
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """The Karras et al. (2022) schedule: ``n`` decreasing sigmas from ``sigma_max`` to ``sigma_min``, then ``0``.

    Returns a ``(n + 1,) float32`` tensor; the trailing zero makes the last step
    land on the denoised sample.
    """
    if n < 1:
        raise ValueError(f"number of sampling steps must be at least 1, got {n}")
    if not 0 < sigma_min < sigma_max:
        raise ValueError(f"need 0 < sigma_min < sigma_max, got {sigma_min}, {sigma_max}")
    ramp = torch.linspace(0, 1, n, dtype=torch.float64)
    min_inv_rho = sigma_min ** (1 / rho)
    max_inv_rho = sigma_max ** (1 / rho)
    sigmas = (max_inv_rho + ramp * (min_inv_rho - max_inv_rho)) ** rho
    if n == 1:
        sigmas = torch.tensor([sigma_max], dtype=torch.float64)
    return torch.cat([sigmas, sigmas.new_zeros(1)]).to(torch.float32).to(device)
