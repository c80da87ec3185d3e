"""Object layers for 4D reconstruction (``--export layers`` of ``amodal run`` and ``amodal complete``).

Models that reconstruct one object in 4D (SV4D takes 576x576 object-centred frames on white)
need each completed object alone, centred, at one scale. Per object ``<id>``:

- ``layers/<id>/rgb/<frame>.png``: the completed object on white, a square crop resized to
  ``size x size``;
- ``layers/<id>/rgba/<frame>.png``: the same crop as RGBA (transparent off the object);
- ``layers/<id>/boxes.json``: per frame the crop ``[x, y, side, side]`` in input pixels (it may
  reach past the frame, filled white / transparent there), so results map back.

and ``layers/depth_order.json``: per frame the object ids from front to back.

The crop of a frame is centred on that frame's amodal mask; its side is one for the whole clip,
the largest side of the object's amodal boxes over the clip plus ``margin`` per side, so the
object keeps its scale from frame to frame. The depth order uses the median inverse depth of each
object's visible pixels when depth is known (larger is nearer), else occlusion evidence: an object
whose visible pixels lie in another's hidden part is in front of it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from amodal.errors import InputError

SV4D_SIZE = 576  # the frame size SV4D takes


def check_layer_size(size: int) -> None:
    """``--layer-size``: at least 8 pixels, checked before any work."""
    if size < 8:
        raise InputError(f"--layer-size must be >= 8, got {size}")


def crop_side(amodal: np.ndarray, margin: float) -> int:
    """``(T, H, W) bool`` amodal masks of one object -> the side of its square crops (>= 1)."""
    rows, cols = amodal.any(axis=2), amodal.any(axis=1)
    side = 1
    for r, c in zip(rows, cols):
        ys, xs = np.flatnonzero(r), np.flatnonzero(c)
        if len(ys):
            side = max(side, ys[-1] + 1 - ys[0], xs[-1] + 1 - xs[0])
    return int(np.ceil(side * (1 + 2 * margin)))


def crop_boxes(amodal: np.ndarray, margin: float) -> list[list[int] | None]:
    """Per frame ``[x, y, side, side]`` centred on the amodal mask, ``None`` where it is empty."""
    side = crop_side(amodal, margin)
    out = []
    for mask in amodal:
        ys, xs = np.nonzero(mask)
        if not len(ys):
            out.append(None)
            continue
        cy, cx = (ys.min() + ys.max() + 1) / 2, (xs.min() + xs.max() + 1) / 2
        out.append([int(round(cx - side / 2)), int(round(cy - side / 2)), side, side])
    return out


def cut(image: np.ndarray, box: list[int], fill) -> np.ndarray:
    """``(H, W, C)`` image -> its ``[x, y, w, h]`` crop, ``fill`` past the frame."""
    x, y, w, h = box
    height, width = image.shape[:2]
    out = np.empty((h, w, image.shape[2]), image.dtype)
    out[...] = fill
    top, left = max(0, y), max(0, x)
    bottom, right = min(height, y + h), min(width, x + w)
    if bottom > top and right > left:
        out[top - y : bottom - y, left - x : right - x] = image[top:bottom, left:right]
    return out


def write_layers(
    out: str | Path,
    rgb: np.ndarray,
    rgba: np.ndarray,
    modal: np.ndarray,
    amodal: np.ndarray,
    object_ids: tuple[int, ...],
    frame_names: tuple[str, ...],
    depth: np.ndarray | None = None,
    size: int = SV4D_SIZE,
    margin: float = 0.1,
) -> Path:
    """Write the layers of every object into ``out`` (a folder inside a run's temporary folder).

    ``rgb``: ``(K, T, H, W, 3) uint8`` completed objects on white; ``rgba``: ``(K, T, H, W, 4)``;
    ``modal``, ``amodal``: ``(K, T, H, W) bool``; ``depth``: ``(T, H, W)`` inverse depth or ``None``.
    """
    from PIL import Image

    check_layer_size(size)
    out = Path(out)
    for k, oid in enumerate(object_ids):
        boxes = crop_boxes(amodal[k], margin)
        for kind in ("rgb", "rgba"):
            (out / str(oid) / kind).mkdir(parents=True)
        for t, (name, box) in enumerate(zip(frame_names, boxes)):
            if box is None:  # nothing of the object in this frame: a blank layer keeps the frame count
                white = np.full((size, size, 3), 255, np.uint8)
                Image.fromarray(white).save(out / str(oid) / "rgb" / f"{name}.png")
                Image.fromarray(np.zeros((size, size, 4), np.uint8)).save(out / str(oid) / "rgba" / f"{name}.png")
                continue
            for kind, image, fill in (("rgb", rgb[k, t], 255), ("rgba", rgba[k, t], 0)):
                tile = Image.fromarray(cut(image, box, fill)).resize((size, size), Image.Resampling.LANCZOS)
                tile.save(out / str(oid) / kind / f"{name}.png")
        record = {"size": size, "margin": margin, "frames": {n: b for n, b in zip(frame_names, boxes)}}
        (out / str(oid) / "boxes.json").write_text(json.dumps(record, indent=1) + "\n")
    from amodal.compose import depth_order

    order = depth_order(modal, amodal, depth)
    (out / "depth_order.json").write_text(json.dumps({
        "front_to_back": {n: [object_ids[i] for i in o] for n, o in zip(frame_names, order)},
        "from": "depth" if depth is not None else "occlusion",
    }, indent=1) + "\n")
    return out
