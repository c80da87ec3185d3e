"""Letterbox geometry: fit any frame size into a model's native size without stretching.

A frame of ``(H, W)`` is (optionally) padded by ``pad`` of its size on every
side, scaled by one factor so that it fits inside the model's ``(h, w)``, and
centred with zero padding. :func:`to_model` and :func:`from_model` apply the
mapping and its exact inverse, so predictions line up with the input pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Letterbox:
    """The mapping between a (padded) frame and a model's native canvas."""

    src_size: tuple[int, int]  # (H, W) of the input frames
    dst_size: tuple[int, int]  # (h, w) of the model canvas
    border: tuple[int, int]  # extra room (top/bottom, left/right) added around the frame, in input pixels
    scaled_size: tuple[int, int]  # (h', w') of the padded frame after scaling, <= dst_size
    offset: tuple[int, int]  # (top, left) of the scaled frame on the canvas

    @property
    def padded_size(self) -> tuple[int, int]:
        """``(H, W)`` of the input frame plus its border: the size predictions map back to."""
        return self.src_size[0] + 2 * self.border[0], self.src_size[1] + 2 * self.border[1]


def letterbox(src_size: tuple[int, int], dst_size: tuple[int, int], pad: float = 0.0) -> Letterbox:
    """Plan the fit of ``src_size`` frames into ``dst_size`` with ``pad`` extra room on each side.

    ``pad = 0.25`` adds a quarter of the height above and below and a quarter of
    the width left and right, as the reference TAO-Amodal evaluation does, so
    objects cut by the frame border can extend past it.
    """
    if pad < 0:
        raise ValueError(f"pad must be >= 0, got {pad}")
    border = (int(round(src_size[0] * pad)), int(round(src_size[1] * pad)))
    ph, pw = src_size[0] + 2 * border[0], src_size[1] + 2 * border[1]
    scale = min(dst_size[0] / ph, dst_size[1] / pw)
    sh = min(dst_size[0], max(1, int(round(ph * scale))))
    sw = min(dst_size[1], max(1, int(round(pw * scale))))
    return Letterbox(
        src_size=tuple(src_size),
        dst_size=tuple(dst_size),
        border=border,
        scaled_size=(sh, sw),
        offset=((dst_size[0] - sh) // 2, (dst_size[1] - sw) // 2),
    )


def to_model(x: torch.Tensor, box: Letterbox, fill: float = 0.0) -> torch.Tensor:
    """Map ``(..., H, W)`` float maps onto the ``(..., h, w)`` model canvas.

    Downscaling uses antialiased bilinear interpolation (area-like, so thin
    structures survive); the border and letterbox margins get ``fill``.
    """
    lead = x.shape[:-2]
    x = x.reshape(-1, 1, *x.shape[-2:]).float()
    bh, bw = box.border
    if bh or bw:
        x = F.pad(x, (bw, bw, bh, bh), value=fill)
    if tuple(x.shape[-2:]) != box.scaled_size:
        shrink = box.scaled_size[0] < x.shape[-2] or box.scaled_size[1] < x.shape[-1]
        x = F.interpolate(x, size=box.scaled_size, mode="bilinear", align_corners=False, antialias=shrink)
    top, left = box.offset
    bottom = box.dst_size[0] - box.scaled_size[0] - top
    right = box.dst_size[1] - box.scaled_size[1] - left
    x = F.pad(x, (left, right, top, bottom), value=fill)
    return x.reshape(*lead, *box.dst_size)


def from_model(y: torch.Tensor, box: Letterbox) -> torch.Tensor:
    """Map ``(..., h, w)`` soft maps from the model canvas back to the padded input size.

    Returns ``(..., H + 2 * border_h, W + 2 * border_w)``; crop ``box.border`` to
    get the input frame's own pixels.
    """
    lead = y.shape[:-2]
    top, left = box.offset
    y = y.reshape(-1, 1, *y.shape[-2:]).float()
    y = y[..., top : top + box.scaled_size[0], left : left + box.scaled_size[1]]
    if tuple(y.shape[-2:]) != box.padded_size:
        y = F.interpolate(y, size=box.padded_size, mode="bilinear", align_corners=False)
    return y.reshape(*lead, *box.padded_size)


def crop_border(y: torch.Tensor, box: Letterbox) -> torch.Tensor:
    """Drop the extra room added by ``pad``: ``(..., H + 2bh, W + 2bw) -> (..., H, W)``."""
    bh, bw = box.border
    return y[..., bh : bh + box.src_size[0], bw : bw + box.src_size[1]]

