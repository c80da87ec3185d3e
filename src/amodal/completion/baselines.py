"""Non-learned content completion: what any stage-2 model has to beat, with the same input and output.

Each takes an :class:`amodal.Clip` (frames and modal masks) and the objects'
amodal masks ``(K, T, H, W) bool`` (ground truth, or a stage-1 prediction) and
returns each object's appearance on white, ``(K, T, H, W, 3) uint8`` (the
layout of :attr:`amodal.Clip.amodal_rgb`):

- :func:`copy_modal`: the visible pixels of the object, nothing invented;
  hidden pixels stay white.
- :func:`temporal`: each hidden pixel copied from the nearest frame in which
  the same point of the object was visible, following the object's motion,
  estimated from its amodal mask's bounding box (known at this stage, unlike
  in stage 1 where the baselines align visible masks).

:func:`propagate` is that copying with the mask of the pixels it could fill: the
learned pipeline (``PipelineConfig.propagate``) conditions its model on it, so the
model paints only what no frame shows.

``docs/evaluation.md`` (section *Completion*) reports what they score.
"""

from __future__ import annotations

import numpy as np

from amodal.clip import Clip
from amodal.errors import InputError

WHITE = 255  # the background of every completion


def _check_masks(clip: Clip, amodal_masks: np.ndarray) -> np.ndarray:
    amodal_masks = np.asarray(amodal_masks)
    if amodal_masks.shape != clip.modal_masks.shape or amodal_masks.dtype != np.bool_:
        raise InputError(
            f"{clip.source or 'clip'}: amodal masks must be bool {clip.modal_masks.shape}, got "
            f"{amodal_masks.dtype} {amodal_masks.shape}"
        )
    return amodal_masks


def copy_modal(clip: Clip, amodal_masks: np.ndarray) -> np.ndarray:
    """Each object's visible pixels on white: ``(K, T, H, W, 3) uint8``.

    Pixels of the modal mask keep the frame's colour; hidden pixels (amodal
    minus modal) and the background are white.
    """
    _check_masks(clip, amodal_masks)
    out = np.full((clip.num_objects, *clip.frames.shape), WHITE, np.uint8)
    for k, modal in enumerate(clip.modal_masks):
        out[k][modal] = clip.frames[modal]
    return out


def mask_positions(amodal: np.ndarray) -> np.ndarray:
    """Where one object is in each frame, from its amodal mask's bounding box: ``(T, 2) float64`` ``(y, x)``.

    Per axis, the position is the box's centre; when the box touches the frame's
    edge on one side (the object is partly out of view, so that side is cut),
    it is the box's other side offset by the object's extent on that axis in
    the nearest frame where neither side touches (the box's own extent when
    none does). ``nan`` where the mask is empty.

    Args:
        amodal: ``(T, H, W) bool`` one object's amodal masks.
    """
    t = amodal.shape[0]
    size = amodal.shape[1:]
    lo = np.full((t, 2), np.nan)
    hi = np.full((t, 2), np.nan)
    for f in range(t):
        for axis in range(2):
            line = np.flatnonzero(amodal[f].any(axis=1 - axis))
            if line.size:
                lo[f, axis], hi[f, axis] = line[0], line[-1]
    out = np.full((t, 2), np.nan)
    for axis in range(2):
        cut_lo = lo[:, axis] <= 0
        cut_hi = hi[:, axis] >= size[axis] - 1
        extent = hi[:, axis] - lo[:, axis]
        whole = np.flatnonzero(np.isfinite(extent) & ~cut_lo & ~cut_hi)
        for f in np.flatnonzero(np.isfinite(extent)):
            if not (cut_lo[f] or cut_hi[f]) or whole.size == 0:
                out[f, axis] = (lo[f, axis] + hi[f, axis]) / 2
                continue
            span = extent[whole[np.abs(whole - f).argmin()]]
            if cut_lo[f] and cut_hi[f]:
                out[f, axis] = (lo[f, axis] + hi[f, axis]) / 2
            elif cut_lo[f]:
                out[f, axis] = hi[f, axis] - span / 2
            else:
                out[f, axis] = lo[f, axis] + span / 2
    return out


def temporal(clip: Clip, amodal_masks: np.ndarray) -> np.ndarray:
    """Hidden pixels borrowed from the nearest frame where they were visible: ``(K, T, H, W, 3) uint8``.

    The pixels of :func:`propagate`; pixels no frame shows stay white, as does everything
    outside the amodal masks.
    """
    return propagate(clip, amodal_masks)[0]


def propagate(clip: Clip, amodal_masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each object's visible pixels, and its hidden ones that another frame shows, carried along its motion.

    Visible pixels are the frame's (as :func:`copy_modal`). For a hidden pixel
    ``p`` of frame ``t``, the other frames ``s`` are tried from the nearest
    (``|s - t|``, the earlier first on ties): ``p`` moved by the object's motion
    from ``t`` to ``s`` (:func:`mask_positions`, rounded to whole pixels) is
    taken when it lies in the object's modal mask in ``s``.

    Returns:
        ``pixels (K, T, H, W, 3) uint8`` (white where nothing is known) and
        ``known (K, T, H, W) bool``: the modal masks plus the hidden pixels filled.
    """
    amodal_masks = _check_masks(clip, amodal_masks)
    out = copy_modal(clip, amodal_masks)
    known = clip.modal_masks.copy()
    h, w = clip.size
    t = clip.num_frames
    for k in range(clip.num_objects):
        modal, amodal = clip.modal_masks[k], amodal_masks[k] | clip.modal_masks[k]
        positions = mask_positions(amodal)
        sources = [s for s in range(t) if modal[s].any() and np.isfinite(positions[s]).all()]
        for f in range(t):
            hidden = amodal[f] & ~modal[f]
            if not hidden.any() or not np.isfinite(positions[f]).all():
                continue
            ys, xs = np.nonzero(hidden)
            todo = np.ones(ys.size, bool)
            for s in sorted((s for s in sources if s != f), key=lambda s: (abs(s - f), s)):
                dy, dx = np.rint(positions[s] - positions[f]).astype(int)
                qy, qx = ys[todo] + dy, xs[todo] + dx
                inside = (qy >= 0) & (qy < h) & (qx >= 0) & (qx < w)
                seen = np.zeros(qy.size, bool)
                seen[inside] = modal[s][qy[inside], qx[inside]]
                if seen.any():
                    rows = np.flatnonzero(todo)[seen]
                    out[k, f, ys[rows], xs[rows]] = clip.frames[s, qy[seen], qx[seen]]
                    known[k, f, ys[rows], xs[rows]] = True
                    todo[rows] = False
                if not todo.any():
                    break
    return out, known
