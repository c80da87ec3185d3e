"""Training losses of the two stage-1 objectives, with the condition augmentations they share."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from amodal.diffusion import append_dims, sample_training_sigmas
from amodal.diffusion.loss import loss_weight
from amodal.models.segmenter import build_condition
from amodal.training.config import TrainConfig
from amodal.training.data import Batch


def augment_condition(
    batch: Batch,
    config: TrainConfig,
    generator: torch.Generator,
    drop_condition: bool,
) -> torch.Tensor:
    """The model condition of a batch with depth dropout, condition noise and (optionally) condition dropout.

    Returns ``(B, T, C, H, W) float32`` (see :func:`amodal.models.segmenter.build_condition`).
    Depth dropout zeroes the depth and flag channels; noise goes on the modal and
    depth channels; the priors are recomputed from the clean modal masks.
    All randomness comes from ``generator`` (CPU), in a fixed order.
    """
    b = batch.modal.shape[0]
    keep_depth = batch.has_depth & (torch.rand(b, generator=generator) >= config.depth_dropout)
    cond = build_condition(batch.modal, batch.depth, config.model.priors)
    cond[:, :, 1:3] *= append_dims(keep_depth.float(), cond.ndim)  # depth and flag to 0
    std = torch.rand(b, generator=generator) * config.cond_noise
    noise = torch.randn(cond[:, :, :2].shape, generator=generator) * append_dims(std, cond.ndim)
    noise[:, :, 1] *= append_dims(keep_depth.float(), noise.ndim - 1)  # no noise on dropped depth
    cond[:, :, :2] += noise
    if drop_condition:
        keep = (torch.rand(b, generator=generator) >= config.cond_dropout).float()
        cond = cond * append_dims(keep, cond.ndim)
    return cond


def pixel_weights(batch: Batch, hidden_weight: float) -> torch.Tensor:
    """``(B, T, 1, H, W)``: ``1 + hidden_weight`` on hidden pixels (amodal, not modal), 1 elsewhere."""
    hidden = batch.amodal * (1.0 - batch.modal)
    return (1.0 + hidden_weight * hidden)[:, :, None]


def diffusion_loss(model, batch: Batch, config: TrainConfig, generator: torch.Generator) -> torch.Tensor:
    """Mean EDM loss of one batch: log-normal sigma, v-prediction weighting, condition dropout.

    ``model(x, sigma, cond) -> D`` is the (possibly wrapped) :class:`DiffusionSegmenter`.
    Returns a scalar tensor.
    """
    device = next(model.parameters()).device
    cond = augment_condition(batch, config, generator, drop_condition=True)
    x0 = batch.amodal[:, :, None] * 2.0 - 1.0  # (B, T, 1, H, W) in {-1, 1}
    sigma = sample_training_sigmas(x0.shape[0], config.p_mean, config.p_std, generator=generator)
    noise = torch.randn(x0.shape, generator=generator)
    weights = pixel_weights(batch, config.hidden_weight)
    x0, sigma, noise, cond, weights = (t.to(device) for t in (x0, sigma, noise, cond, weights))
    sigma_b = append_dims(sigma, x0.ndim)
    denoised = model(x0 + sigma_b * noise, sigma, cond)
    sigma_data = config.model.sigma_data
    loss = append_dims(loss_weight(sigma, sigma_data), x0.ndim) * (denoised.float() - x0) ** 2
    return (loss * weights).mean()


def regression_loss(model, batch: Batch, config: TrainConfig, generator: torch.Generator) -> torch.Tensor:
    """Mean binary cross-entropy of the one-step twin's logits against the amodal mask.

    ``model(cond) -> logits (B, T, H, W)`` is the (possibly wrapped)
    :class:`RegressionSegmenter`. The condition gets the same depth dropout and
    noise as the diffusion model's, but is never dropped (no guidance to train).
    """
    device = next(model.parameters()).device
    cond = augment_condition(batch, config, generator, drop_condition=False)
    weights = pixel_weights(batch, config.hidden_weight)[:, :, 0]
    cond, target, weights = cond.to(device), batch.amodal.to(device), weights.to(device)
    logits = model(cond).float()
    return (F.binary_cross_entropy_with_logits(logits, target, reduction="none") * weights).mean()


LOSSES = {"diffusion": diffusion_loss, "regression": regression_loss}
