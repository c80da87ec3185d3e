"""Baselines that any learned method has to beat, with the same input and output as the models.

Each takes an :class:`amodal.Clip` and returns amodal masks ``(K, T, H, W)
bool`` that contain the modal masks:

- :func:`modal_baseline`: the visible mask itself (no hidden part at all). Its
  mIoU is the share of the object that is visible; its occluded IoU is 0.
- :func:`convex_baseline`: the convex hull of the visible mask, frame by
  frame. It closes holes and dents cut by thin occluders, and over-fills
  concave objects.
- :func:`temporal_baseline`: motion-compensated union over neighbouring
  frames, gated by depth. Parts of an object hidden now were often visible a
  few frames before or after; the object's motion between frames is estimated
  by aligning its visible masks, the visible masks of the neighbours are moved
  into the current frame and added, and where depth is known, added pixels are
  kept only where something nearer than the object is seen (a pixel showing a
  surface at the object's depth or farther cannot hide it).

``docs/evaluation.md`` reports what they score.
"""

from __future__ import annotations

import math

import numpy as np

from amodal.clip import Clip

# The temporal baseline's two settings were chosen on a synthetic validation split (40 videos), not on test.
TEMPORAL_RADIUS = 6  # frames on each side the temporal baseline borrows from (13 frames, ~1.6 s at 8 fps)
DEPTH_MARGIN = 0.05  # an added pixel must be 5% nearer (in inverse depth) than the object's median visible surface
ALIGN_MAX_SIDE = 128  # motion is estimated on masks downsampled to at most this many pixels a side


# ----------------------------------------------------------------------------- modal
def modal_baseline(clip: Clip) -> np.ndarray:
    """The modal masks as the amodal prediction: ``(K, T, H, W) bool``."""
    return clip.modal_masks.copy()


# ----------------------------------------------------------------------------- convex hull
def _fill_hull(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``(H, W) bool``: pixels whose centres lie in the convex hull of integer ``points`` ``(N, 2)`` as ``(x, y)``."""
    from scipy.spatial import ConvexHull, QhullError

    out = np.zeros(shape, dtype=bool)
    x0, y0 = points.min(axis=0)
    x1, y1 = points.max(axis=0)
    ys = np.arange(y0, y1 + 1)
    xs = np.arange(x0, x1 + 1)
    try:
        hull = points[ConvexHull(points).vertices] if x1 > x0 and y1 > y0 else None
    except QhullError:  # all points on one line
        hull = None
    if hull is None:
        # Degenerate hull: the segment between the extreme points, pixels exactly on it.
        a, b = points[np.lexsort((points[:, 1], points[:, 0]))][[0, -1]]
        e = b - a
        on = e[0] * (ys[:, None] - a[1]) - e[1] * (xs[None, :] - a[0]) == 0
        out[y0 : y1 + 1, x0 : x1 + 1] = on
        return out
    # Orient the vertices so the interior is left of every edge (in x-right, y-down coordinates).
    nxt = np.roll(hull, -1, axis=0)
    if np.sum(hull[:, 0] * nxt[:, 1] - nxt[:, 0] * hull[:, 1]) < 0:
        hull = hull[::-1]
        nxt = np.roll(hull, -1, axis=0)
    e = (nxt - hull).astype(np.int64)  # (E, 2) edge vectors
    # Inside: e_x * (y - p_y) - e_y * (x - p_x) >= 0 for every edge, i.e. e_y * x <= bound.
    bound = e[:, 0] * (ys[:, None] - hull[:, 1]) + e[:, 1] * hull[:, 0]  # (R, E) exact integers
    right = np.full(ys.size, x1, dtype=np.int64)
    left = np.full(ys.size, x0, dtype=np.int64)
    down, up = e[:, 1] > 0, e[:, 1] < 0
    if down.any():  # e_y > 0: x <= floor(bound / e_y)
        right = np.minimum(right, (bound[:, down] // e[down, 1]).min(axis=1))
    if up.any():  # e_y < 0: x >= ceil(bound / e_y) = -floor(-bound / e_y)
        left = np.maximum(left, (-(-bound[:, up] // e[up, 1])).max(axis=1))
    out[y0 : y1 + 1, x0 : x1 + 1] = (xs[None, :] >= left[:, None]) & (xs[None, :] <= right[:, None])
    return out


def convex_hull_masks(masks: np.ndarray) -> np.ndarray:
    """Per-frame convex hull of each mask, rasterised.

    A pixel is set when its centre lies in the convex hull of the centres of
    the mask's pixels (so the hull always contains the mask). Only the first
    and last pixel of each row enter the hull computation; empty masks stay empty.

    Args:
        masks: ``(..., H, W) bool``.

    Returns:
        ``(..., H, W) bool``, same shape.
    """
    masks = np.asarray(masks, dtype=bool)
    shape = masks.shape
    flat = masks.reshape(-1, *shape[-2:])
    out = np.zeros_like(flat)
    width = shape[-1]
    for i, mask in enumerate(flat):
        rows = np.flatnonzero(mask.any(axis=1))
        if rows.size == 0:
            continue
        sub = mask[rows]
        first = sub.argmax(axis=1)
        last = width - 1 - sub[:, ::-1].argmax(axis=1)
        points = np.concatenate([np.stack([first, rows], 1), np.stack([last, rows], 1)])
        out[i] = _fill_hull(points.astype(np.int64), shape[-2:])
    return out.reshape(shape)


def convex_baseline(clip: Clip) -> np.ndarray:
    """Convex hull of each visible mask, frame by frame: ``(K, T, H, W) bool``."""
    return convex_hull_masks(clip.modal_masks) | clip.modal_masks


# ----------------------------------------------------------------------------- temporal
def _downsample_any(mask: np.ndarray, factor: int) -> np.ndarray:
    """``(h, w) bool`` with each ``factor x factor`` block set when any of its pixels is (thin parts survive)."""
    if factor == 1:
        return mask
    h, w = mask.shape
    hp, wp = -(-h // factor) * factor, -(-w // factor) * factor
    padded = np.zeros((hp, wp), dtype=bool)
    padded[:h, :w] = mask
    return padded.reshape(hp // factor, factor, wp // factor, factor).any(axis=(1, 3))


def align_masks(
    source: np.ndarray,
    target: np.ndarray,
    prior: tuple[float, float] = (0.0, 0.0),
    radius: float | None = None,
    max_side: int = ALIGN_MAX_SIDE,
) -> tuple[int, int]:
    """The shift ``(dy, dx)`` in pixels that moves ``source`` onto ``target`` with the largest overlap.

    Overlap is counted for every shift at once by FFT cross-correlation, on
    masks cropped to their joint box and block-downsampled to at most
    ``max_side`` pixels a side (the shift is then a multiple of the block
    size). Only shifts within ``radius`` of ``prior`` compete (all when
    ``radius`` is ``None``), and among equal overlaps the one nearest
    ``prior`` wins: when an object slides behind an occluder its visible part
    fits inside the previous one for a whole range of shifts, and when the
    visible parts of two frames do not overlap at all, only the prior is left
    (the object keeps its velocity).

    Args:
        source, target: ``(H, W) bool``, both non-empty.
        prior: the expected shift (e.g. the previous frame's).
        radius: how far from ``prior`` the shift may be, in pixels.

    Returns:
        ``(dy, dx)`` integers.
    """
    both = source | target
    rows, cols = np.flatnonzero(both.any(axis=1)), np.flatnonzero(both.any(axis=0))
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    factor = max(1, math.ceil(max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1) / max_side))
    a = _downsample_any(source[box], factor).astype(np.float64)
    b = _downsample_any(target[box], factor).astype(np.float64)
    h, w = a.shape
    size = (2 * h, 2 * w)  # zero padding: shifts do not wrap around
    corr = np.fft.irfft2(np.fft.rfft2(b, size) * np.conj(np.fft.rfft2(a, size)), size)
    overlap = np.rint(corr)  # pixel counts, exact once rounded
    dy = np.fft.fftfreq(size[0], 1 / size[0])[:, None] * factor  # the shift each entry of corr stands for
    dx = np.fft.fftfreq(size[1], 1 / size[1])[None, :] * factor
    distance = (dy - prior[0]) ** 2 + (dx - prior[1]) ** 2
    if radius is not None:
        overlap = np.where(distance <= max(radius, factor) ** 2, overlap, -1.0)
    cost = np.where(overlap == overlap.max(), distance, np.inf)
    iy, ix = np.unravel_index(np.argmin(cost), cost.shape)
    return int(dy[iy, 0]), int(dx[0, ix])


def object_track(modal: np.ndarray, max_side: int = ALIGN_MAX_SIDE) -> np.ndarray:
    """Position of one object in each frame, relative to its first visible frame.

    Consecutive visible frames are aligned with :func:`align_masks`, each
    shift searched near the previous one (within a quarter of the object's
    size; the first unrestricted), and the shifts are summed. Frames where the
    object is not visible get positions interpolated linearly in time (held
    constant before the first and after the last visible frame).

    Args:
        modal: ``(T, H, W) bool`` visible masks of one object.

    Returns:
        ``(T, 2) float64`` positions ``(y, x)`` in pixels; zeros when never visible.
    """
    t = modal.shape[0]
    visible = np.flatnonzero(modal.any(axis=(1, 2)))
    positions = np.zeros((t, 2))
    if visible.size == 0:
        return positions
    known = np.zeros((visible.size, 2))
    velocity, radius = (0.0, 0.0), None
    for j in range(1, visible.size):
        a, b = visible[j - 1], visible[j]
        step = align_masks(
            modal[a], modal[b], prior=tuple(v * (b - a) for v in velocity), radius=radius, max_side=max_side
        )
        known[j] = known[j - 1] + step
        velocity = (step[0] / (b - a), step[1] / (b - a))
        ys, xs = np.nonzero(modal[b])
        radius = 0.25 * max(ys.max() - ys.min() + 1, xs.max() - xs.min() + 1) * (b - a)
    frames = np.arange(t)
    for axis in range(2):
        positions[:, axis] = np.interp(frames, visible, known[:, axis])
    return positions


def shift_mask(mask: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``(H, W) bool`` moved by ``(dy, dx)`` pixels; what leaves the frame is lost, what enters is empty."""
    h, w = mask.shape
    out = np.zeros_like(mask)
    if abs(dy) >= h or abs(dx) >= w:
        return out
    out[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = mask[
        max(-dy, 0) : h - max(dy, 0), max(-dx, 0) : w - max(dx, 0)
    ]
    return out


def temporal_union(
    modal: np.ndarray,
    depth: np.ndarray | None = None,
    radius: int = TEMPORAL_RADIUS,
    depth_margin: float = DEPTH_MARGIN,
) -> np.ndarray:
    """Motion-compensated union of one object's visible masks over ``2 * radius + 1`` frames, depth-gated.

    For frame ``t``, the visible masks of frames ``t - radius .. t + radius``
    are moved by the object's motion between that frame and ``t`` (from
    :func:`object_track`) and added to the visible mask of ``t``. With depth,
    an added pixel is kept only where the inverse depth is at least
    ``(1 + depth_margin)`` times the object's median visible inverse depth
    (taken from the nearest frame where it is visible): the pixel shows
    something nearer than the object, which may hide it.

    Args:
        modal: ``(T, H, W) bool`` visible masks of one object.
        depth: ``(T, H, W) float32`` inverse depth (larger is nearer), or ``None``.

    Returns:
        ``(T, H, W) bool`` containing ``modal``.
    """
    t = modal.shape[0]
    track = object_track(modal)
    visible = np.flatnonzero(modal.any(axis=(1, 2)))
    out = modal.copy()
    if visible.size == 0:
        return out
    nearness = None
    if depth is not None:
        medians = np.array([np.median(depth[f][modal[f]]) for f in visible])
        # The object's nearness in every frame: from the nearest frame where it is visible.
        nearest = visible[np.abs(np.arange(t)[:, None] - visible[None, :]).argmin(axis=1)]
        nearness = medians[np.searchsorted(visible, nearest)]
    for f in range(t):
        added = np.zeros_like(modal[f])
        for s in range(max(0, f - radius), min(t, f + radius + 1)):
            if s == f or not modal[s].any():
                continue
            dy, dx = np.rint(track[f] - track[s]).astype(int)
            added |= shift_mask(modal[s], int(dy), int(dx))
        if nearness is not None:
            added &= depth[f] >= (1.0 + depth_margin) * nearness[f]
        out[f] |= added
    return out


def temporal_baseline(clip: Clip, radius: int = TEMPORAL_RADIUS) -> np.ndarray:
    """:func:`temporal_union` of each object of ``clip`` (with its depth when it has one): ``(K, T, H, W) bool``."""
    return np.stack([temporal_union(m, clip.depth, radius) for m in clip.modal_masks])
