"""DAVIS-style label images: one palette PNG per frame, pixel value = object index, 0 = background.

Other tools (DAVIS and YouTube-VOS evaluation code, video object segmentation viewers, CVAT's
mask import) read a video's objects as one such image per frame. The palette is DAVIS's (the
PASCAL VOC colour map: index 1 dark red, 2 green, 3 olive, 4 navy, ...).

Where amodal masks overlap, a pixel gets one object, by :func:`label_image`'s rule:

1. an object visible there (its modal mask) wins; of several visible ones, the smaller index;
2. elsewhere, of the objects whose amodal mask covers the pixel (all hidden there), the
   smaller index;
3. no object: 0.

So reading the images back by index gives each object's visible part plus those of its hidden
parts that no visible object and no smaller index claims.
"""

from __future__ import annotations

import functools
import os

import numpy as np

from amodal.errors import InputError

MAX_LABELS = 255  # an 8-bit palette image holds indices 1..255 besides the background


@functools.lru_cache(maxsize=1)
def davis_palette() -> tuple[int, ...]:
    """The DAVIS (PASCAL VOC) palette as 768 ints ``r0, g0, b0, r1, ...`` for ``Image.putpalette``.

    Index ``i`` spreads its bits over the high bits of the three channels: 0 black, 1
    ``(128, 0, 0)``, 2 ``(0, 128, 0)``, 3 ``(128, 128, 0)``, 4 ``(0, 0, 128)``, ...
    """
    palette = []
    for index in range(256):
        r = g = b = 0
        c = index
        for shift in range(7, -1, -1):
            r |= (c & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        palette += [r, g, b]
    return tuple(palette)


def label_image(modal: np.ndarray, amodal: np.ndarray) -> np.ndarray:
    """One frame's objects as a ``(H, W) uint8`` label image (module docstring: the overlap rule).

    Args:
        modal: ``(K, H, W) bool`` visible masks, object ``k`` gets value ``k + 1``.
        amodal: ``(K, H, W) bool`` full masks (each containing its modal mask).
    """
    modal, amodal = np.asarray(modal, dtype=bool), np.asarray(amodal, dtype=bool)
    if modal.shape != amodal.shape or modal.ndim != 3:
        raise InputError(f"modal and amodal must both be (K, H, W), got {modal.shape} and {amodal.shape}")
    if len(modal) > MAX_LABELS:
        raise InputError(f"{len(modal)} objects: a palette label image holds at most {MAX_LABELS}")
    labels = np.zeros(modal.shape[1:], dtype=np.uint8)
    # Later writes win: hidden parts first, then visible ones; within each, larger indices first.
    for masks in (amodal, modal):
        for k in range(len(masks) - 1, -1, -1):
            labels[masks[k]] = k + 1
    return labels


def write_label_png(path: str | os.PathLike, labels: np.ndarray) -> None:
    """Save a ``(H, W) uint8`` label image as a palette PNG with :func:`davis_palette`."""
    from PIL import Image

    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.dtype != np.uint8:
        raise InputError(f"labels must be (H, W) uint8, got {labels.dtype} {labels.shape}")
    image = Image.frombytes("P", labels.shape[::-1], np.ascontiguousarray(labels).tobytes())
    image.putpalette(davis_palette())
    image.save(path)
