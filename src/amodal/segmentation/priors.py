"""Geometric priors: cheap amodal guesses from the modal masks alone, given to a model as condition channels.

A model trained from scratch on a few thousand synthetic windows has no prior
knowledge of shape or motion. Two hand-made guesses carry some, and they cost
milliseconds:

- ``temporal``: :func:`amodal.segmentation.baselines.temporal_union` over the window (no
  depth gating; the model sees depth itself), the object's visible masks of
  nearby frames moved into the current frame;
- ``convex``: the convex hull of each frame's visible mask.

Both are computed inside the model's window from its own modal input, in
training and at inference alike, so a model never depends on anything outside
the window it is given.
"""

from __future__ import annotations

import numpy as np
import torch

from amodal.segmentation.baselines import convex_hull_masks, temporal_union


def temporal_prior(modal: np.ndarray) -> np.ndarray:
    """``(T, H, W) bool`` modal masks -> motion-compensated union over the window, ``(T, H, W) bool``."""
    return temporal_union(modal, None)


def convex_prior(modal: np.ndarray) -> np.ndarray:
    """``(T, H, W) bool`` modal masks -> per-frame convex hull (containing the mask), ``(T, H, W) bool``."""
    return convex_hull_masks(modal) | modal


PRIORS = {"temporal": temporal_prior, "convex": convex_prior}


def prior_masks(modal: torch.Tensor, names: tuple[str, ...]) -> torch.Tensor:
    """The named priors of each window.

    Args:
        modal: ``(B, T, H, W)`` in ``{0, 1}`` (any float dtype, any device).
        names: keys of :data:`PRIORS`, in channel order.

    Returns:
        ``(B, T, P, H, W)`` in ``{0, 1}``, ``modal``'s dtype and device.
    """
    masks = modal.detach().cpu().numpy() > 0.5
    out = np.zeros((masks.shape[0], masks.shape[1], len(names), *masks.shape[2:]), dtype=np.float32)
    for b, window in enumerate(masks):
        for p, name in enumerate(names):
            out[b, :, p] = PRIORS[name](window)
    return torch.from_numpy(out).to(device=modal.device, dtype=modal.dtype)
