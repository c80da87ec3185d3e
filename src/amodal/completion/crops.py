"""Object-centred crops: how stage 2 sees one object of one window, in training and at inference alike.

A crop is the box around the object's amodal masks over the window's frames, grown by a margin
on every side and widened to the model's aspect ratio, so that the object keeps its shape and
fills the model canvas whatever its size in the frame. :func:`crop_to_model` cuts the box out of
``(T, H, W, ...)`` arrays (pixels outside the frame are white, masks there are empty) and scales
it to the model's ``(h, w)``; :func:`paste_from_model` maps a model output back into the frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

MIN_SIDE = 8  # pixels: a box is never smaller than this, so a speck is not blown up to the whole canvas


@dataclass(frozen=True)
class Box:
    """A crop box in frame pixels; it may extend past the frame."""

    top: int
    left: int
    height: int
    width: int


def object_box(amodal: np.ndarray, margin: float, size: tuple[int, int]) -> Box | None:
    """The crop box of an object over a window, or ``None`` when the object is absent.

    Args:
        amodal: ``(T, H, W) bool`` amodal masks of the window's frames.
        margin: room on each side, as a fraction of the box's height and width.
        size: the model's ``(h, w)``; the box gets its aspect ratio.
    """
    rows = np.flatnonzero(amodal.any(axis=(0, 2)))
    cols = np.flatnonzero(amodal.any(axis=(0, 1)))
    if rows.size == 0:
        return None
    height = (rows[-1] - rows[0] + 1) * (1 + 2 * margin)
    width = (cols[-1] - cols[0] + 1) * (1 + 2 * margin)
    aspect = size[1] / size[0]
    if width < height * aspect:
        width = height * aspect
    else:
        height = width / aspect
    height = max(MIN_SIDE, int(np.ceil(height)))
    width = max(int(round(MIN_SIDE * aspect)), int(np.ceil(width)))
    cy, cx = (rows[0] + rows[-1] + 1) / 2, (cols[0] + cols[-1] + 1) / 2
    return Box(int(round(cy - height / 2)), int(round(cx - width / 2)), height, width)


def _cut(array: np.ndarray, box: Box, fill) -> np.ndarray:
    """``array[:, box]`` for ``(T, H, W, ...)`` arrays, ``fill`` where the box leaves the frame."""
    t, h, w = array.shape[:3]
    out = np.full((t, box.height, box.width, *array.shape[3:]), fill, dtype=array.dtype)
    y0, x0 = max(0, box.top), max(0, box.left)
    y1, x1 = min(h, box.top + box.height), min(w, box.left + box.width)
    if y1 > y0 and x1 > x0:
        out[:, y0 - box.top : y1 - box.top, x0 - box.left : x1 - box.left] = array[:, y0:y1, x0:x1]
    return out


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``(N, C, H, W)`` float resized bilinearly, antialiased when shrinking."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    shrink = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=shrink)


def crop_rgb(rgb: np.ndarray, box: Box, size: tuple[int, int]) -> torch.Tensor:
    """``(T, H, W, 3) uint8`` -> ``(T, 3, h, w) float32`` in ``[0, 1]``; white outside the frame."""
    cut = torch.from_numpy(_cut(rgb, box, 255)).permute(0, 3, 1, 2).float() / 255.0
    return _resize(cut, size).clamp(0.0, 1.0)


def crop_mask(mask: np.ndarray, box: Box, size: tuple[int, int]) -> torch.Tensor:
    """``(T, H, W) bool`` -> ``(T, h, w) float32`` in ``{0, 1}``; empty outside the frame."""
    cut = torch.from_numpy(_cut(mask, box, False)).float()[:, None]
    return (_resize(cut, size)[:, 0] > 0.5).float()


def crop_to_model(frames: np.ndarray, modal: np.ndarray, amodal: np.ndarray, box: Box, size: tuple[int, int]):
    """The model inputs of one object-window: ``(modal_rgb (T, 3, h, w), amodal (T, h, w), modal (T, h, w))``.

    ``modal_rgb`` is the object's visible pixels on white, as stage 2 is conditioned.
    """
    rgb = crop_rgb(frames, box, size)
    modal_c = crop_mask(modal, box, size)
    amodal_c = torch.maximum(crop_mask(amodal, box, size), modal_c)
    modal_rgb = torch.where(modal_c[:, None] > 0.5, rgb, torch.ones_like(rgb))
    return modal_rgb, amodal_c, modal_c


def paste_from_model(rgb: torch.Tensor, box: Box, frame_size: tuple[int, int]) -> np.ndarray:
    """``(T, 3, h, w)`` model output in ``[0, 1]`` -> ``(T, H, W, 3) uint8`` in the frame, white outside the box."""
    out = _resize(rgb.float(), (box.height, box.width)).clamp(0.0, 1.0)
    out = (out.permute(0, 2, 3, 1).numpy() * 255.0).round().astype(np.uint8)
    h, w = frame_size
    canvas = np.full((rgb.shape[0], h, w, 3), 255, np.uint8)
    y0, x0 = max(0, box.top), max(0, box.left)
    y1, x1 = min(h, box.top + box.height), min(w, box.left + box.width)
    if y1 > y0 and x1 > x0:
        canvas[:, y0:y1, x0:x1] = out[:, y0 - box.top : y1 - box.top, x0 - box.left : x1 - box.left]
    return canvas
