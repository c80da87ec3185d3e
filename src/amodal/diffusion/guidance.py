"""Denoiser wrappers that work with any sampler: classifier-free guidance and self-conditioning."""

from __future__ import annotations

from typing import Callable, Mapping

import torch

from amodal.diffusion.precond import append_dims


class CFGDenoiser:
    """``D = D_uncond + scale * (D_cond - D_uncond)``, evaluated in one batched call.

    Args:
        denoiser: ``denoiser(x, sigma, **cond) -> D``; ``x`` is ``(B, T, ...)``.
        cond: keyword tensors for the conditional branch (batch first).
        uncond: the same keys for the unconditional branch.
        scale: a float, or a ``(T,)`` tensor of per-frame scales (the frame axis
            is axis 1 of the library's ``(B, T, ...)`` layout).

    A scalar scale of exactly 1 skips the unconditional branch (same result,
    half the cost). Non-tensor condition values (flags, ints) must be equal in
    both branches and are passed through once. Keyword tensors given to the
    call itself (``shared``, such as a self-conditioning estimate that changes
    every step) go to both branches.
    """

    def __init__(
        self,
        denoiser: Callable[..., torch.Tensor],
        cond: Mapping[str, object],
        uncond: Mapping[str, object],
        scale: float | torch.Tensor,
    ):
        if set(cond) != set(uncond):
            raise ValueError(f"cond and uncond need the same keys, got {sorted(cond)} and {sorted(uncond)}")
        self.denoiser = denoiser
        self.cond = dict(cond)
        self.uncond = dict(uncond)
        self.scale = scale

    def _scale(self, x: torch.Tensor) -> torch.Tensor:
        scale = torch.as_tensor(self.scale, dtype=x.dtype, device=x.device)
        if scale.ndim == 0:
            return scale
        if scale.ndim != 1 or scale.shape[0] != x.shape[1]:
            raise ValueError(f"per-frame guidance needs shape ({x.shape[1]},), got {tuple(scale.shape)}")
        return append_dims(scale[None], x.ndim)  # (1, T, 1, ...)

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor, **shared: torch.Tensor) -> torch.Tensor:
        if not isinstance(self.scale, torch.Tensor) and float(self.scale) == 1.0:
            return self.denoiser(x, sigma, **self.cond, **shared)
        both = {key: torch.cat([value, value]) for key, value in shared.items()}
        for key, value in self.cond.items():
            if isinstance(value, torch.Tensor):
                both[key] = torch.cat([self.uncond[key], value])
            else:
                if value != self.uncond[key]:
                    raise ValueError(f"non-tensor condition {key!r} differs between branches")
                both[key] = value
        denoised = self.denoiser(torch.cat([x, x]), torch.cat([sigma, sigma]), **both)
        d_uncond, d_cond = denoised.chunk(2)
        return d_uncond + self._scale(x) * (d_cond - d_uncond)


class SelfConditioning:
    """Give each denoiser call the previous call's estimate (zeros at the first call), as ``self_cond``.

    Self-conditioning (Chen et al., "Analog Bits", 2022): the network refines its
    own last estimate of the clean sample instead of starting from the noisy
    input alone at every step. Wraps ``denoiser(x, sigma, self_cond=...)`` into
    the ``denoiser(x, sigma)`` the samplers call; one wrapper per sampling run
    (it holds the last estimate).
    """

    def __init__(self, denoiser: Callable[..., torch.Tensor]):
        self.denoiser = denoiser
        self.previous: torch.Tensor | None = None

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        previous = torch.zeros_like(x) if self.previous is None else self.previous
        denoised = self.denoiser(x, sigma, self_cond=previous)
        self.previous = denoised
        return denoised
