"""Curriculum surgery: turn a trained ``lite`` model into the start of the next stage without changing what it computes.

Each function maps backbone state dicts; the training loops' ``init_from`` is their only caller
(:func:`amodal.training.loop.initial_state` for stage 1, ``amodal.training.completion`` for
stage 2), and each is tested to compute what the old model did at the point where the new model
starts.
"""

from __future__ import annotations

import dataclasses

import torch

from amodal.backbones.lite import LiteConfig
from amodal.errors import InputError

def widen_condition(state: dict[str, torch.Tensor], old: LiteConfig, new: LiteConfig) -> dict[str, torch.Tensor]:
    """Backbone weights of ``old`` for ``new``, which has more condition channels and is otherwise equal.

    The added channels come last in the raw input, so they add the last input
    columns of the stem (``patch**2`` each, after pixel-unshuffle) and of the
    full-resolution head; those start at zero, and the widened network computes
    exactly what the old one did until training moves them.
    """
    extra = new.cond_channels - old.cond_channels
    if extra < 0 or dataclasses.replace(old, cond_channels=new.cond_channels) != new:
        raise InputError("widen_condition: the configs may differ only by more condition channels in the new one")
    out = dict(state)
    for key, per_channel in (("stem.weight", new.patch**2), ("head.weight", 1)):
        w = state[key]
        pad = w.new_zeros((w.shape[0], extra * per_channel, *w.shape[2:]))
        out[key] = torch.cat([w, pad], dim=1)
    return out


def diffusion_from_regression(state: dict[str, torch.Tensor], old: LiteConfig, new: LiteConfig) -> dict[str, torch.Tensor]:
    """Backbone weights of a regression twin (``old``) as the start of a diffusion model (``new``).

    The regression net was fed zeros on its sample channel, so its input weights
    there never learned anything: they are set to zero, and so is the output
    gate on the sample (it never got a gradient). With the ``"logit"``
    parameterisation the diffusion model then starts out as the regression,
    ignoring the noisy input: the denoiser's limit at infinite noise, from which
    training goes on to every noise level. Condition channels the new config
    adds (self-conditioning) start at zero, as in :func:`widen_condition`.
    """
    out = widen_condition(state, old, new)
    sample = new.in_channels
    stem = out["stem.weight"].clone()
    stem[:, : sample * new.patch**2] = 0.0  # pixel-unshuffle puts input channel c at columns c*p^2 ... (c+1)*p^2 - 1
    head = out["head.weight"].clone()
    head[:, new.head_channels : new.head_channels + sample] = 0.0  # the head sees [features, sample, condition]
    gate_w, gate_b = out["head_out.weight"].clone(), out["head_out.bias"].clone()
    gate_w[new.out_channels :], gate_b[new.out_channels :] = 0.0, 0.0  # outputs [f, g]: no gate on the sample
    out["stem.weight"], out["head.weight"], out["head_out.weight"], out["head_out.bias"] = stem, head, gate_w, gate_b
    return out


def completer_from_regression(state: dict[str, torch.Tensor], config: LiteConfig, sigma_data: float) -> dict[str, torch.Tensor]:
    """Backbone weights of a stage-2 regression twin as the start of a v-prediction diffusion completer.

    The completer's denoiser is ``D = c_skip x + c_out F`` (:class:`amodal.diffusion.Denoiser`),
    and at infinite noise ``c_skip -> 0``, ``c_out -> -sigma_data``. The twin's output ``f``
    (its sample input was zeros) becomes ``F = -f / sigma_data``: its ``f`` rows of ``head_out``
    are scaled by that factor. The sample's input columns (stem and head) and the gate ``g`` are
    zeroed, since the twin never saw a sample. With ``noise_input="log_snr"``, whose ``c_noise``
    is the twin's 0 at infinite noise, the diffusion completer then starts out computing the twin
    there, whatever the noisy sample; training goes on to every noise level.
    """
    if sigma_data <= 0:
        raise InputError(f"completer_from_regression: sigma_data must be > 0, got {sigma_data}")
    out = dict(state)
    sample, width = config.in_channels, config.out_channels
    stem = state["stem.weight"].clone()
    stem[:, : sample * config.patch**2] = 0.0  # pixel-unshuffle puts input channel c at columns c*p^2 ... (c+1)*p^2 - 1
    head = state["head.weight"].clone()
    head[:, config.head_channels : config.head_channels + sample] = 0.0  # the head sees [features, sample, condition]
    out_w, out_b = state["head_out.weight"].clone(), state["head_out.bias"].clone()
    out_w[:width], out_b[:width] = out_w[:width] * (-1.0 / sigma_data), out_b[:width] * (-1.0 / sigma_data)
    out_w[width:], out_b[width:] = 0.0, 0.0  # outputs [f, g]: no gate on the sample
    out["stem.weight"], out["head.weight"], out["head_out.weight"], out["head_out.bias"] = stem, head, out_w, out_b
    return out
