"""Samplers: pure functions ``sample_*(denoiser, x, sigmas, callback=None) -> x0``.

``denoiser(x, sigma)`` returns ``D(x; sigma)`` with every condition already bound
(see :class:`amodal.diffusion.CFGDenoiser`); ``sigma`` is passed as a ``(B,)``
tensor. ``x`` is the initial noise already scaled to ``sigmas[0]``.
``sigmas`` is a decreasing ``(n + 1,)`` schedule ending in ``0``.
``callback(i, x, denoised)`` is called after each step (progress bars, previews).
"""

from __future__ import annotations

from typing import Callable

import torch

DenoiserFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _sigma_batch(sigma: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return sigma.to(x.dtype).expand(x.shape[0])


def _to_d(x: torch.Tensor, sigma: torch.Tensor, denoised: torch.Tensor) -> torch.Tensor:
    """The probability-flow ODE derivative ``dx / dsigma``."""
    return (x - denoised) / sigma


@torch.no_grad()
def sample_euler(denoiser: DenoiserFn, x: torch.Tensor, sigmas: torch.Tensor, callback=None) -> torch.Tensor:
    """First-order Euler integration of the probability-flow ODE (EDM Algorithm 1 without the correction)."""
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = denoiser(x, _sigma_batch(sigma, x))
        # Euler step.
        x = x + _to_d(x, sigma, denoised) * (sigma_next - sigma)
        if callback is not None:
            callback(i, x, denoised)
    return x


@torch.no_grad()
def sample_heun(denoiser: DenoiserFn, x: torch.Tensor, sigmas: torch.Tensor, callback=None) -> torch.Tensor:
    """Second-order Heun integration (EDM Algorithm 1): two network calls per step except the last."""
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = denoiser(x, _sigma_batch(sigma, x))
        d = _to_d(x, sigma, denoised)
        # Euler step.
        x_next = x + d * (sigma_next - sigma)
        if sigma_next > 0:
            # Apply 2nd order correction.
            denoised_next = denoiser(x_next, _sigma_batch(sigma_next, x))
            d_next = _to_d(x_next, sigma_next, denoised_next)
            x_next = x + 0.5 * (d + d_next) * (sigma_next - sigma)
        x = x_next
        if callback is not None:
            callback(i, x, denoised)
    return x


@torch.no_grad()
def sample_dpmpp_2m(denoiser: DenoiserFn, x: torch.Tensor, sigmas: torch.Tensor, callback=None) -> torch.Tensor:
    """DPM-Solver++(2M): second order from one network call per step, for few-step sampling.

    Works in ``t = -log(sigma)``; the first and last steps are first order.
    """
    old_denoised = None
    t_prev = None
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = denoiser(x, _sigma_batch(sigma, x))
        if sigma_next == 0:
            # Last step: jump to the denoised sample.
            x = denoised
        else:
            t, t_next = -sigma.log(), -sigma_next.log()
            h = t_next - t
            if old_denoised is None:
                estimate = denoised
            else:
                # Multistep: extrapolate the denoised estimate from the previous step.
                r = (t - t_prev) / h
                estimate = (1 + 1 / (2 * r)) * denoised - (1 / (2 * r)) * old_denoised
            x = (sigma_next / sigma) * x - torch.expm1(-h) * estimate
            t_prev = t
        old_denoised = denoised
        if callback is not None:
            callback(i, x, denoised)
    return x


SAMPLERS = {
    "euler": sample_euler,  # the paper's sampler (25 steps)
    "heun": sample_heun,  # 2 network calls per step; best per step, not per call
    "dpmpp_2m": sample_dpmpp_2m,  # 1 call per step, second order: the few-step choice
}
