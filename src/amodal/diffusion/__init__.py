"""Diffusion core, independent of any backbone, mask, VAE or file.

Notation follows EDM (Karras et al. 2022): the denoiser ``D(x; sigma)`` predicts
the clean sample from ``x = x0 + sigma * n``; samplers integrate the probability
flow ODE ``dx/dsigma = (x - D(x; sigma)) / sigma`` along a decreasing sigma
schedule. Every function here works on tensors of any rank: sigma is broadcast
with :func:`append_dims`, never a fixed reshape.
"""

from amodal.diffusion.guidance import CFGDenoiser, SelfConditioning
from amodal.diffusion.loss import edm_loss, sample_training_sigmas
from amodal.diffusion.precond import (
    NOISE_INPUTS,
    BinaryDenoiser,
    Denoiser,
    append_dims,
    binary_scalings,
    log_snr_noise,
    vpred_scalings,
)
from amodal.diffusion.samplers import SAMPLERS, sample_dpmpp_2m, sample_euler, sample_heun
from amodal.diffusion.schedules import karras_sigmas

__all__ = [
    "BinaryDenoiser",
    "CFGDenoiser",
    "Denoiser",
    "NOISE_INPUTS",
    "SAMPLERS",
    "SelfConditioning",
    "append_dims",
    "binary_scalings",
    "edm_loss",
    "karras_sigmas",
    "log_snr_noise",
    "sample_dpmpp_2m",
    "sample_euler",
    "sample_heun",
    "sample_training_sigmas",
    "vpred_scalings",
]
