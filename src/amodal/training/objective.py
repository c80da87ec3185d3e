"""Training losses of the two stage-1 objectives, with the condition augmentations they share."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from amodal.diffusion import append_dims, sample_training_sigmas
from amodal.diffusion.loss import loss_weight
from amodal.segmentation.model import build_condition, null_condition
from amodal.segmentation.priors import prior_masks
from amodal.training.config import INFINITE_SIGMA, TrainConfig
from amodal.training.data import Batch


def augment_condition(
    batch: Batch,
    config: TrainConfig,
    generator: torch.Generator,
    drop_condition: bool,
) -> torch.Tensor:
    """The model condition of a batch with depth dropout, condition noise and (optionally) condition dropout.

    Returns ``(B, T, C, H, W) float32`` (see :func:`amodal.segmentation.model.build_condition`).
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


def pixel_weights(batch: Batch, config: TrainConfig) -> torch.Tensor:
    """``(B, T, 1, H, W)`` per-pixel loss weights: 1, plus ``hidden_weight`` on hidden pixels (amodal,
    not modal), plus ``false_fill_weight`` where a prior channel marks a pixel the amodal truth leaves out."""
    hidden = batch.amodal * (1.0 - batch.modal)
    weights = 1.0 + config.hidden_weight * hidden
    if config.false_fill_weight > 0 and config.model.priors:
        claimed = prior_masks(batch.modal, tuple(config.model.priors)).amax(dim=2)  # (B, T, H, W)
        weights = weights + config.false_fill_weight * claimed * (1.0 - batch.amodal)
    return weights[:, :, None]


def _noised(batch: Batch, cond: torch.Tensor, config: TrainConfig, generator: torch.Generator, device):
    """The training noise of one batch, in a fixed order of draws: ``(x0, sigma, x, cond, weights)`` on ``device``.

    ``x0`` the amodal mask in ``{-1, 1}``, ``sigma`` log-normal (a share ``config.infinite_share``
    at ``INFINITE_SIGMA``), ``x = x0 + sigma * noise``, ``weights`` the per-pixel loss weights.
    """
    x0 = batch.amodal[:, :, None] * 2.0 - 1.0  # (B, T, 1, H, W) in {-1, 1}
    sigma = sample_training_sigmas(x0.shape[0], config.p_mean, config.p_std, generator=generator)
    if config.infinite_share > 0:
        sigma = torch.where(torch.rand(x0.shape[0], generator=generator) < config.infinite_share, INFINITE_SIGMA, sigma)
    noise = torch.randn(x0.shape, generator=generator)
    weights = pixel_weights(batch, config)
    x0, sigma, noise, cond, weights = (t.to(device) for t in (x0, sigma, noise, cond, weights))
    return x0, sigma, x0 + append_dims(sigma, x0.ndim) * noise, cond, weights


def diffusion_loss(model, batch: Batch, config: TrainConfig, generator: torch.Generator) -> torch.Tensor:
    """Mean diffusion loss of one batch: log-normal sigma, condition dropout, optional self-conditioning.

    A share ``config.infinite_share`` of the windows is trained at ``INFINITE_SIGMA`` instead.

    ``model(x, sigma, cond, self_cond, logits=...)`` is the (possibly wrapped)
    :class:`DiffusionSegmenter`. The ``"vpred"`` parameterisation is trained with
    the EDM-weighted squared error of the denoised estimate, ``"logit"`` with the
    binary cross-entropy of its logits against the amodal mask. With
    self-conditioning, a share ``config.self_condition_rate`` of the windows
    first get the model's estimate without it (no gradient) as their
    ``self_cond`` input, the rest zeros: what the sampler gives the first step.
    Returns a scalar tensor.
    """
    device = next(model.parameters()).device
    mcfg = config.model
    cond = augment_condition(batch, config, generator, drop_condition=True)
    x0, sigma, x, cond, weights = _noised(batch, cond, config, generator, device)
    self_cond = None
    if mcfg.self_condition:
        chosen = torch.nonzero(torch.rand(x0.shape[0], generator=generator) < config.self_condition_rate)[:, 0].to(device)
        self_cond = torch.zeros_like(x)
        if chosen.numel():
            with torch.no_grad():
                self_cond[chosen] = model(x[chosen], sigma[chosen], cond[chosen]).float().detach()
    if mcfg.parameterization == "logit":
        logits = model(x, sigma, cond, self_cond, logits=True).float()
        loss = F.binary_cross_entropy_with_logits(logits, batch.amodal[:, :, None].to(device), reduction="none")
    else:
        denoised = model(x, sigma, cond, self_cond)
        loss = append_dims(loss_weight(sigma, mcfg.sigma_data), x0.ndim) * (denoised.float() - x0) ** 2
    return (loss * weights).mean()


def distillation_loss(model, teacher, batch: Batch, config: TrainConfig, generator: torch.Generator) -> torch.Tensor:
    """Mean guidance-distillation loss of one batch: the model's logits against the teacher's guided estimate.

    The noise levels, noisy inputs, condition augmentations and self-conditioning are those of
    :func:`diffusion_loss`, except that the condition is never dropped (the distilled model has
    no unconditional branch to serve). ``teacher`` (frozen) gives, on the same inputs,
    ``D = D_uncond + w (D_cond - D_uncond)`` with ``w = config.distill_guidance``, each branch
    seeing the same self-conditioning input; the target probability is ``(D + 1) / 2`` clipped to
    ``[0, 1]`` (guidance may overshoot the mask range; the clip changes no binarised answer of a
    one-step sample), and the loss is the binary cross-entropy of the model's logits against it.
    Returns a scalar tensor.
    """
    device = next(model.parameters()).device
    cond = augment_condition(batch, config, generator, drop_condition=False)
    x0, sigma, x, cond, weights = _noised(batch, cond, config, generator, device)
    self_cond = torch.zeros_like(x)
    if config.model.self_condition:
        chosen = torch.nonzero(torch.rand(x0.shape[0], generator=generator) < config.self_condition_rate)[:, 0].to(device)
        if chosen.numel():
            with torch.no_grad():
                self_cond[chosen] = model(x[chosen], sigma[chosen], cond[chosen]).float().detach()
    with torch.no_grad():
        both = teacher(
            torch.cat([x, x]), torch.cat([sigma, sigma]), torch.cat([null_condition(cond), cond]),
            torch.cat([self_cond, self_cond]) if teacher.config.self_condition else None,
        ).float()
        d_uncond, d_cond = both.chunk(2)
        target = ((d_uncond + config.distill_guidance * (d_cond - d_uncond) + 1.0) / 2.0).clamp(0.0, 1.0)
    logits = model(x, sigma, cond, self_cond if config.model.self_condition else None, logits=True).float()
    loss = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return (loss * weights).mean()


def regression_loss(model, batch: Batch, config: TrainConfig, generator: torch.Generator) -> torch.Tensor:
    """Mean binary cross-entropy of the one-step twin's logits against the amodal mask.

    ``model(cond) -> logits (B, T, H, W)`` is the (possibly wrapped)
    :class:`RegressionSegmenter`. The condition gets the same depth dropout and
    noise as the diffusion model's, but is never dropped (no guidance to train).
    """
    device = next(model.parameters()).device
    cond = augment_condition(batch, config, generator, drop_condition=False)
    weights = pixel_weights(batch, config)[:, :, 0]
    cond, target, weights = cond.to(device), batch.amodal.to(device), weights.to(device)
    logits = model(cond).float()
    return (F.binary_cross_entropy_with_logits(logits, target, reduction="none") * weights).mean()


LOSSES = {"diffusion": diffusion_loss, "regression": regression_loss}
