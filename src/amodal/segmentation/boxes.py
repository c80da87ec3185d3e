"""Amodal boxes as a prior for stage 1: crop each object's window to its boxes, keep the output inside them.

A TAO-Amodal annotation gives each object's amodal *box* per frame, not its mask. Knowing the
box fixes how far the hidden part extends; the pipeline uses it in two ways
(:class:`BoxPrior`):

- ``"clip"`` (the default): the model sees the whole frame as without boxes;
- ``"crop"``: the model sees, per object and window, the union of the window's boxes (plus
  ``box_margin`` of context, widened to the model canvas's aspect ratio) instead of the whole frame, so a small
  object fills the canvas, and the soft masks are mapped back from that crop.

Either way the binary output is cut to each frame's box, then unioned with the modal mask (the
visible part is always kept, even where an annotation's box misses it).

Boxes: ``(K, T, 4) float64`` ``[x, y, w, h]`` in input pixels (COCO order, ``x, y`` the top-left
corner), one row per object in the clip's object order; a frame without a box holds ``nan``
(nothing is cut there). A box may reach past the frame border; one of zero width or height says
the object has no extent in that frame (only its visible pixels, if any, are kept).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from amodal.errors import InputError

BOX_MODES = ("crop", "clip")


@dataclass(frozen=True)
class Region:
    """A crop of a frame in input pixels; it may reach past the frame (filled there)."""

    top: int
    left: int
    height: int
    width: int


def check_boxes(boxes: np.ndarray, num_objects: int, where: str = "amodal boxes") -> np.ndarray:
    """``boxes`` as ``(K, T, 4) float64``; raises naming ``where`` when its shape or values are wrong."""
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.ndim != 3 or boxes.shape[2] != 4 or boxes.shape[0] != num_objects:
        raise InputError(f"{where}: expected ({num_objects}, T, 4) [x, y, w, h] boxes, got shape {boxes.shape}")
    given = ~np.isnan(boxes).any(axis=2)
    if np.isinf(boxes).any() or (boxes[given][:, 2:] < 0).any():
        raise InputError(f"{where}: every box needs finite x, y and a width and height >= 0")
    return boxes


def window_region(boxes: np.ndarray, canvas: tuple[int, int], margin: float) -> Region | None:
    """The crop of one object's window: the union of its ``(T, 4)`` boxes, ``margin`` of context, the canvas's aspect.

    ``None`` when no frame of the window has a box.
    """
    given = boxes[~np.isnan(boxes).any(axis=1)]
    given = given[(given[:, 2] > 0) & (given[:, 3] > 0)]  # a zero-size box: the object is not there
    if not len(given):
        return None
    x0, y0 = given[:, 0].min(), given[:, 1].min()
    x1, y1 = (given[:, 0] + given[:, 2]).max(), (given[:, 1] + given[:, 3]).max()
    w, h = (x1 - x0) * (1 + 2 * margin), (y1 - y0) * (1 + 2 * margin)
    aspect = canvas[1] / canvas[0]
    if w / h < aspect:
        w = h * aspect
    else:
        h = w / aspect
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    width, height = max(1, math.ceil(w)), max(1, math.ceil(h))
    return Region(int(round(cy - height / 2)), int(round(cx - width / 2)), height, width)


def frame_region(size: tuple[int, int], border: tuple[int, int], canvas: tuple[int, int]) -> Region:
    """The crop that shows the whole frame plus ``border`` at the canvas's aspect (what a letterbox shows)."""
    h, w = size[0] + 2 * border[0], size[1] + 2 * border[1]
    return window_region(np.array([[-border[1], -border[0], w, h]], dtype=np.float64), canvas, 0.0)


def crop(x: torch.Tensor, region: Region, size: tuple[int, int], fill: float = 0.0) -> torch.Tensor:
    """``(..., H, W)`` maps -> ``(..., h, w)``: ``region`` of them (``fill`` past the frame) resized to ``size``."""
    lead, (height, width) = x.shape[:-2], x.shape[-2:]
    x = x.reshape(-1, 1, height, width).float()
    pad = (
        max(0, -region.left),
        max(0, region.left + region.width - width),
        max(0, -region.top),
        max(0, region.top + region.height - height),
    )
    if any(pad):
        x = F.pad(x, pad, value=fill)
    top, left = region.top + pad[2], region.left + pad[0]
    x = x[..., top : top + region.height, left : left + region.width]
    if (region.height, region.width) != tuple(size):
        shrink = size[0] < region.height or size[1] < region.width
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=shrink)
    return x.reshape(*lead, *size)


def uncrop(y: torch.Tensor, region: Region, size: tuple[int, int]) -> torch.Tensor:
    """The inverse of :func:`crop`: ``(..., h, w)`` soft maps -> ``(..., H, W)``, zero outside ``region``."""
    lead = y.shape[:-2]
    y = y.reshape(-1, 1, *y.shape[-2:]).float()
    y = F.interpolate(y, size=(region.height, region.width), mode="bilinear", align_corners=False)
    out = torch.zeros(y.shape[0], 1, *size)
    top, left = max(0, region.top), max(0, region.left)
    bottom, right = min(size[0], region.top + region.height), min(size[1], region.left + region.width)
    if bottom > top and right > left:
        out[..., top:bottom, left:right] = y[
            ..., top - region.top : bottom - region.top, left - region.left : right - region.left
        ]
    return out.reshape(*lead, *size)


def rasterize(boxes: np.ndarray, size: tuple[int, int], border: tuple[int, int] = (0, 0)) -> np.ndarray:
    """``(K, 4)`` boxes of one frame -> ``(K, H', W') bool``, True inside each box (everywhere for ``nan``).

    ``size`` is the output ``(H', W')``; ``border`` the frame's offset in it (``pad``). A box covers
    the pixels whose centres it contains.
    """
    out = np.ones((len(boxes), *size), dtype=bool)
    rows, cols = np.arange(size[0]) + 0.5, np.arange(size[1]) + 0.5  # pixel centres
    for k, (x, y, w, h) in enumerate(boxes):
        if np.isnan([x, y, w, h]).any():
            continue
        x0, y0 = x + border[1], y + border[0]
        out[k] = ((rows >= y0) & (rows <= y0 + h))[:, None] & ((cols >= x0) & (cols <= x0 + w))[None, :]
    return out


def boxes_of_masks(masks: np.ndarray) -> np.ndarray:
    """``(K, T, H, W) bool`` masks -> ``(K, T, 4)`` tight ``[x, y, w, h]`` boxes, ``nan`` where a mask is empty."""
    k, t = masks.shape[:2]
    out = np.full((k, t, 4), np.nan)
    rows, cols = masks.any(axis=3), masks.any(axis=2)
    for i in range(k):
        for j in range(t):
            ys, xs = np.flatnonzero(rows[i, j]), np.flatnonzero(cols[i, j])
            if len(ys):
                out[i, j] = (xs[0], ys[0], xs[-1] + 1 - xs[0], ys[-1] + 1 - ys[0])
    return out


def with_mask_boxes(boxes: np.ndarray | None, masks: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray:
    """``(K, T, 4)`` boxes where objects without any (``None``, or a row all ``nan``) take their masks' boxes.

    ``masks``: ``(K, T, H, W) bool`` or ``None``; ``shape``: ``(K, T)``. Rows neither gives stay ``nan``.
    """
    out = np.full((*shape, 4), np.nan) if boxes is None else np.array(boxes, dtype=np.float64)
    if masks is not None:
        missing = np.isnan(out).all(axis=(1, 2))
        if missing.any():
            out[missing] = boxes_of_masks(masks[missing])
    return out


def read_boxes(path: str | Path, object_ids: tuple[int, ...], num_frames: int) -> np.ndarray:
    """Read an ``--amodal-boxes`` JSON file: ``{"<object id>": [[x, y, w, h] or null, ...one per frame]}``.

    Objects the file does not name get no boxes (nothing is cut); ids it names that the clip does
    not have, or a frame count that is not the clip's, are errors naming the file.
    """
    from amodal.util.fs import load_json

    path = Path(path)
    raw = load_json(path, "--amodal-boxes file")
    if not isinstance(raw, dict):
        raise InputError(f'--amodal-boxes {path}: expected {{"<object id>": [[x, y, w, h] or null, ...]}}')
    known = {str(i): n for n, i in enumerate(object_ids)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise InputError(f"--amodal-boxes {path}: object id(s) {', '.join(unknown)} are not in the masks (ids: {', '.join(known)})")
    out = np.full((len(object_ids), num_frames, 4), np.nan)
    for key, frames in raw.items():
        if not isinstance(frames, list) or len(frames) != num_frames:
            got = len(frames) if isinstance(frames, list) else type(frames).__name__
            raise InputError(f"--amodal-boxes {path}: object {key} needs one entry per frame ({num_frames}), got {got}")
        for t, box in enumerate(frames):
            if box is None:
                continue
            if not (isinstance(box, list) and len(box) == 4 and all(isinstance(v, (int, float)) for v in box)):
                raise InputError(f"--amodal-boxes {path}: object {key}, frame {t}: expected [x, y, w, h] or null, got {box!r}")
            out[known[key], t] = box
    return check_boxes(out, len(object_ids), f"--amodal-boxes {path}")
