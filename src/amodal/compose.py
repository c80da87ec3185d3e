"""Scene re-composition: move, scale and re-order completed objects in a video without exposing holes.

With every object completed (stage 2), a video splits into layers: a background plate and one
RGBA layer per object. :func:`recompose` edits the layers and composites them again:

1. **Plate.** Every object's visible pixels (dilated by ``hole_margin``) are holes in the frames.
   A hole pixel takes the colour of the same pixel in the nearest frame where no object covers
   it (a static camera); what no frame shows is filled from the hole's border inwards
   (:func:`fill_from_border`).
2. **Layers.** Each object's completed RGBA is moved by ``(dx, dy)`` and scaled by ``scale``
   about the centre of its amodal box, per frame, as the edit's keyframes say (linear between
   keyframes, held before the first and after the last).
3. **Order.** Layers are pasted back to front: by the per-frame order inferred from the clip
   (:func:`depth_order`), with objects that the edit gives a ``depth`` moved to that place
   (0 = front); removed objects are left out.

Layout: frames ``(T, H, W, 3) uint8``; masks ``(K, T, H, W) bool``; layers ``(K, T, H, W, 4)
uint8``, straight (not premultiplied) alpha.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from amodal.errors import InputError


@dataclass(frozen=True)
class Keyframe:
    """Where an object is at one frame: moved by ``(dx, dy)`` pixels and scaled by ``scale``."""

    frame: int
    dx: float = 0.0
    dy: float = 0.0
    scale: float = 1.0


@dataclass(frozen=True)
class ObjectEdit:
    """What happens to one object."""

    object_id: int
    keyframes: tuple[Keyframe, ...] = ()  # none: it stays where it is
    depth: int | None = None  # its place front to back (0 = front) in every frame; None: as in the clip
    remove: bool = False  # leave it out: the plate shows through


@dataclass(frozen=True)
class Edit:
    """A re-composition: one entry per edited object (others stay as they are)."""

    objects: tuple[ObjectEdit, ...] = field(default_factory=tuple)


@dataclass
class Composition:
    """The edited video and its masks."""

    frames: np.ndarray  # (T, H, W, 3) uint8
    modal_masks: np.ndarray  # (K, T, H, W) bool: what of each object shows after the edit
    amodal_masks: np.ndarray  # (K, T, H, W) bool: each object's full extent after the edit
    plate: np.ndarray  # (T, H, W, 3) uint8: the background with every object taken out
    never_seen: np.ndarray  # (T, H, W) bool: plate pixels no frame showed (filled from their border)


def read_edit(path: str | Path, object_ids: tuple[int, ...], num_frames: int) -> Edit:
    """Read an edit JSON file (docs/applications.md); errors name the file and the entry.

    ``{"objects": {"<id>": {"keyframes": [{"frame": 0, "dx": 0, "dy": 0, "scale": 1}, ...],
    "depth": 0, "remove": false}, ...}}``
    """
    from amodal.util.fs import load_json

    path = Path(path)
    raw = load_json(path, "--edit file")
    if not isinstance(raw, dict) or not isinstance(raw.get("objects"), dict):
        raise InputError(f'--edit {path}: expected {{"objects": {{"<object id>": {{...}}}}}}')
    edits = []
    for key, spec in raw["objects"].items():
        where = f"--edit {path}: object {key}"
        if not key.isdigit() or int(key) not in object_ids:
            raise InputError(f"{where}: not an object of the clip (ids: {', '.join(map(str, object_ids))})")
        if not isinstance(spec, dict) or set(spec) - {"keyframes", "depth", "remove"}:
            raise InputError(f"{where}: expected keys keyframes, depth and remove")
        keyframes = []
        for n, frame in enumerate(spec.get("keyframes", [])):
            if not isinstance(frame, dict) or "frame" not in frame or set(frame) - {"frame", "dx", "dy", "scale"}:
                raise InputError(f"{where}, keyframe {n}: expected {{\"frame\": F, \"dx\": X, \"dy\": Y, \"scale\": S}}")
            try:
                key_frame = Keyframe(int(frame["frame"]), float(frame.get("dx", 0)), float(frame.get("dy", 0)),
                                     float(frame.get("scale", 1)))
            except (TypeError, ValueError):
                raise InputError(f"{where}, keyframe {n}: frame must be an integer, dx, dy and scale numbers") from None
            if not 0 <= key_frame.frame < num_frames:
                raise InputError(f"{where}, keyframe {n}: frame {key_frame.frame} is outside the clip (0..{num_frames - 1})")
            if not 0.05 <= key_frame.scale <= 20:
                raise InputError(f"{where}, keyframe {n}: scale must be in [0.05, 20], got {key_frame.scale}")
            keyframes.append(key_frame)
        frames = [k.frame for k in keyframes]
        if len(set(frames)) != len(frames):
            raise InputError(f"{where}: two keyframes at one frame")
        depth = spec.get("depth")
        if depth is not None and (not isinstance(depth, int) or depth < 0):
            raise InputError(f"{where}: depth must be an integer >= 0 (0 = front), got {depth!r}")
        edits.append(ObjectEdit(int(key), tuple(sorted(keyframes, key=lambda k: k.frame)), depth,
                                bool(spec.get("remove", False))))
    return Edit(tuple(edits))


def motion(edit: ObjectEdit | None, num_frames: int) -> np.ndarray:
    """``(T, 3)`` per frame ``dx, dy, scale``: the keyframes interpolated linearly, held at both ends."""
    if edit is None or not edit.keyframes:
        return np.tile([0.0, 0.0, 1.0], (num_frames, 1))
    at = np.array([k.frame for k in edit.keyframes], dtype=np.float64)
    values = np.array([[k.dx, k.dy, k.scale] for k in edit.keyframes])
    t = np.arange(num_frames, dtype=np.float64)
    return np.stack([np.interp(t, at, values[:, i]) for i in range(3)], axis=1)


def dilate(masks: np.ndarray, pixels: int) -> np.ndarray:
    """``(..., H, W) bool`` grown by ``pixels`` (a square structuring element)."""
    if pixels <= 0:
        return masks
    x = torch.from_numpy(masks).float().reshape(-1, 1, *masks.shape[-2:])
    return (F.max_pool2d(x, 2 * pixels + 1, 1, pixels) > 0).reshape(masks.shape).numpy()


def fill_from_border(image: np.ndarray, hole: np.ndarray, iterations: int = 400) -> np.ndarray:
    """Fill ``hole`` (``(H, W) bool``) of ``(H, W, 3)`` from its border inwards (a membrane: repeated neighbour means)."""
    if not hole.any():
        return image
    known = torch.from_numpy(~hole).float()[None, None]
    x = torch.from_numpy(image.astype(np.float32)).permute(2, 0, 1)[None] * known
    kernel = torch.ones(1, 1, 3, 3)
    weight = known.clone()
    # Grow: each pass gives hole pixels next to known ones the mean of those neighbours.
    while (weight == 0).any():
        total = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel.expand(3, 1, 3, 3), groups=3)
        count = F.conv2d(F.pad(weight, (1, 1, 1, 1), mode="replicate"), kernel)
        fresh = (weight == 0) & (count > 0)
        if not fresh.any():
            break
        x = torch.where(fresh.expand_as(x), total / count.clamp(min=1), x)
        weight = torch.where(fresh, torch.ones_like(weight), weight)
    # Smooth: relax the filled pixels toward the mean of their neighbours, the border held fixed.
    hole_t = torch.from_numpy(hole)[None, None].expand_as(x)
    for _ in range(iterations):
        mean = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, 1)
        x = torch.where(hole_t, mean, x)
    return x[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


def make_plate(frames: np.ndarray, holes: np.ndarray, covered: np.ndarray, paint=None) -> tuple[np.ndarray, np.ndarray]:
    """The background plate and the pixels no frame showed.

    ``holes`` ``(T, H, W)``: pixels to replace; ``covered`` ``(T, H, W)``: pixels where any object
    is (amodal), never a source. Each hole pixel takes the nearest frame in time where the pixel
    is not covered; the rest is filled from the border, frame by frame, or by ``paint(plate,
    never) -> plate`` when given (a completion model: see ``benchmarks/compose_synthetic.py``).
    """
    t = len(frames)
    plate = frames.copy()
    free = ~covered
    never = np.zeros_like(holes)
    frame_index = np.arange(t)
    seen_any = free.any(axis=0)
    for f in range(t):
        ys, xs = np.nonzero(holes[f] & seen_any)
        if len(ys):
            # nearest free frame per pixel: distance in time, inf where covered
            dist = np.where(free[:, ys, xs], np.abs(frame_index - f)[:, None], np.inf)
            source = dist.argmin(axis=0)
            plate[f, ys, xs] = frames[source, ys, xs]
        never[f] = holes[f] & ~seen_any
        if never[f].any() and paint is None:
            plate[f] = fill_from_border(plate[f], never[f])
    if paint is not None and never.any():
        plate = np.where(never[..., None], paint(plate, never), plate)
    return plate, never


def completion_painter(pipeline):
    """A ``paint`` for :func:`make_plate` from a stage-2 pipeline: the plate as a one-object clip.

    The visible background is the object's visible part and the whole frame its amodal mask, so
    the pipeline copies what other frames show and its model paints the rest. Measured against
    the border fill in docs/applications.md (the bundled completion model, trained on objects on
    white, is the worse of the two).
    """
    from amodal.clip import Clip

    def paint(plate: np.ndarray, never: np.ndarray) -> np.ndarray:
        clip = Clip(frames=np.where(never[..., None], 255, plate).astype(np.uint8), modal_masks=~never[None])
        return pipeline(clip, np.ones_like(never)[None]).rgb[0]

    return paint


def transform_layer(layer: np.ndarray, centre: tuple[float, float], dx: float, dy: float, scale: float) -> np.ndarray:
    """``(H, W, 4) uint8`` RGBA moved by ``(dx, dy)`` and scaled by ``scale`` about ``centre`` ``(x, y)``."""
    if dx == 0 and dy == 0 and scale == 1:
        return layer
    h, w = layer.shape[:2]
    rgba = torch.from_numpy(layer).float().permute(2, 0, 1)[None] / 255
    premultiplied = torch.cat([rgba[:, :3] * rgba[:, 3:], rgba[:, 3:]], dim=1)
    cx, cy = centre
    # Output pixel (x, y) reads input ((x - cx - dx) / s + cx, (y - cy - dy) / s + cy), in normalised coordinates.
    xs = (torch.arange(w, dtype=torch.float32) + 0.5 - cx - dx) / scale + cx
    ys = (torch.arange(h, dtype=torch.float32) + 0.5 - cy - dy) / scale + cy
    grid = torch.stack(torch.meshgrid(xs / w * 2 - 1, ys / h * 2 - 1, indexing="xy"), dim=-1)[None]
    out = F.grid_sample(premultiplied, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    alpha = out[:, 3:]
    color = torch.where(alpha > 1e-6, out[:, :3] / alpha.clamp(min=1e-6), torch.zeros_like(out[:, :3]))
    out = torch.cat([color, alpha], dim=1)[0].permute(1, 2, 0)
    return (out * 255).round().clamp(0, 255).to(torch.uint8).numpy()


def box_centre(mask: np.ndarray) -> tuple[float, float]:
    """``(x, y)`` centre of a ``(H, W) bool`` mask's box (the frame's centre when empty)."""
    ys, xs = np.nonzero(mask)
    if not len(ys):
        return mask.shape[1] / 2, mask.shape[0] / 2
    return (xs.min() + xs.max() + 1) / 2, (ys.min() + ys.max() + 1) / 2


def depth_order(modal: np.ndarray, amodal: np.ndarray, depth: np.ndarray | None) -> list[list[int]]:
    """Per frame the object indices front to back, from ``(K, T, H, W)`` masks and optional ``(T, H, W)`` depth."""
    k, t = modal.shape[:2]
    hidden = amodal & ~modal
    # Whole-clip occlusion evidence: in_front[i, j] = pixels where i is seen over j's hidden part.
    in_front = np.array([[(modal[i] & hidden[j]).sum() if i != j else 0 for j in range(k)] for i in range(k)])
    evidence = (in_front - in_front.T).sum(axis=1)
    out = []
    for f in range(t):
        if depth is not None:
            near = [np.median(depth[f][modal[i, f]]) if modal[i, f].any() else -np.inf for i in range(k)]
            order = sorted(range(k), key=lambda i: (-near[i], -evidence[i], i))
        else:
            order = sorted(range(k), key=lambda i: (-evidence[i], i))
        out.append(order)
    return out


def recompose(
    frames: np.ndarray,
    modal: np.ndarray,
    layers: np.ndarray,
    object_ids: tuple[int, ...],
    edit: Edit,
    depth: np.ndarray | None = None,
    hole_margin: int = 1,
    paint=None,
) -> Composition:
    """Apply ``edit`` to a clip whose objects are completed (module docstring).

    Args:
        frames: ``(T, H, W, 3) uint8``.
        modal: ``(K, T, H, W) bool`` visible masks.
        layers: ``(K, T, H, W, 4) uint8`` completed objects (``amodal complete``'s ``rgba``).
        object_ids: one id per row.
        edit: what to change.
        depth: ``(T, H, W)`` inverse depth for the inferred order, or ``None`` (occlusion evidence).
        hole_margin: pixels each visible mask grows by before it is cut out of the plate.
        paint: fills what no frame shows, ``(plate, never) -> plate``; ``None``: from the border.
    """
    t = modal.shape[1]
    if layers.shape[:4] != modal.shape or layers.shape[4] != 4:
        raise InputError(f"completed objects are {layers.shape}, expected {(*modal.shape, 4)} for the masks")
    amodal = (layers[..., 3] > 127) | modal
    edits = {e.object_id: e for e in edit.objects}
    holes = dilate(modal.any(axis=0), hole_margin)
    plate, never = make_plate(frames, holes, dilate(amodal.any(axis=0), hole_margin), paint)
    order = depth_order(modal, amodal, depth)
    placed = {i: edits[oid].depth for i, oid in enumerate(object_ids) if oid in edits and edits[oid].depth is not None}
    moves = [motion(edits.get(oid), t) for oid in object_ids]
    removed = {i for i, oid in enumerate(object_ids) if oid in edits and edits[oid].remove}
    out = plate.astype(np.float32)
    new_amodal = np.zeros_like(amodal)
    new_modal = np.zeros_like(amodal)
    for f in range(t):
        front_to_back = [i for i in order[f] if i not in placed]
        for i, rank in sorted(placed.items(), key=lambda item: item[1]):
            front_to_back.insert(min(rank, len(front_to_back)), i)
        front_to_back = [i for i in front_to_back if i not in removed]
        for i in reversed(front_to_back):  # back to front
            dx, dy, scale = moves[i][f]
            layer = transform_layer(layers[i, f], box_centre(amodal[i, f]), dx, dy, scale)
            alpha = layer[..., 3:].astype(np.float32) / 255
            out[f] = out[f] * (1 - alpha) + layer[..., :3].astype(np.float32) * alpha
            new_amodal[i, f] = layer[..., 3] > 127
        covered = np.zeros(frames.shape[1:3], bool)
        for i in front_to_back:
            new_modal[i, f] = new_amodal[i, f] & ~covered
            covered |= new_amodal[i, f]
    return Composition(out.round().clip(0, 255).astype(np.uint8), new_modal, new_amodal, plate, never)
