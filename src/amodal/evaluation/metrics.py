"""Amodal segmentation metrics, computed exactly as the published numbers were.

Pure functions on NumPy arrays, vectorised over frames. Masks are ``bool``;
``(T, H, W)`` stacks are scored frame by frame and the per-frame values are
returned so that callers can pool them across clips, shards and methods before
averaging. ``docs/evaluation.md`` states every definition with its quirks.

Three protocols:

- **SAIL-VOS** (``sailvos_frame_scores``, ``sailvos_summary``): mask IoU of the
  prediction (resized to the ground-truth size the way the reference does, then
  unioned with the modal mask) against the amodal mask, pooled over all frames;
  mIoU_occ on the occluded region eroded once with a 5x5 square, in the
  reference reading (frames whose occluded IoU is below 1e-6 are dropped) and
  the strict reading (every frame whose eroded occluded ground truth is
  non-empty counts).
- **TAO-Amodal** (``boxes_from_masks``, ``box_iou_xywh``, ``tao_summary``):
  IoU of ``[x, y, w, h]`` boxes; AP_t is the share of frames with IoU > t. This
  is *not* COCO AP: there are no scores, no matching and no precision-recall curve.
- **MOVi** (``movi_frame_scores``, ``movi_summary``): IoU over the whole frame
  and inside a crop around the modal box enlarged 2x, on visible frames only,
  averaged per object and then over objects (as C2F-Seg and EoRaS report).
"""

from __future__ import annotations

import numpy as np

from amodal.errors import InputError

EPS = 1e-6  # added to every IoU denominator, as the reference does
OCC_MIN_IOU = 1e-6  # the reference drops frames whose occluded IoU is below this
ERODE_SIZE = 5  # side of the square the reference erodes occluded regions with
TAO_THRESHOLDS = (0.25, 0.5, 0.75)  # the IoU thresholds of TAO-Amodal AP25/AP50/AP75
MOVI_CROP_SCALE = 2.0  # the MOVi cropped setting enlarges the modal box 2x around its centre
MOVI_THRESHOLD = 0.5  # soft MOVi predictions are binarised above this

# OpenCV's 8-bit bilinear resize works in fixed point: weights carry 11
# fractional bits (INTER_RESIZE_COEF_BITS), so a weight of 1 is 2048.
_COEF_ONE = 2048


# ----------------------------------------------------------------------------- basics
def _as_stack(masks: np.ndarray, name: str) -> np.ndarray:
    masks = np.asarray(masks)
    if masks.ndim == 2:
        masks = masks[None]
    if masks.ndim != 3:
        raise InputError(f"{name} must be a (T, H, W) mask stack, got shape {masks.shape}")
    if masks.dtype != np.bool_:
        raise InputError(f"{name} must be bool, got {masks.dtype}")
    return masks


def mask_iou(pred: np.ndarray, gt: np.ndarray, eps: float = EPS) -> np.ndarray:
    """Per-frame IoU ``|pred & gt| / (|pred | gt| + eps)``.

    Args:
        pred, gt: ``(T, H, W) bool`` (or ``(H, W)``), same shape.

    Returns:
        ``(T,) float64`` in ``[0, 1)``; a frame where both are empty scores 0.
    """
    pred, gt = _as_stack(pred, "pred"), _as_stack(gt, "gt")
    if pred.shape != gt.shape:
        raise InputError(f"pred shape {pred.shape} does not match ground truth {gt.shape}")
    return frame_counts(pred & gt) / (frame_counts(pred | gt) + eps)


def frame_counts(masks: np.ndarray) -> np.ndarray:
    """``(T,) int64``: set pixels of each frame of a ``(T, H, W) bool`` stack.

    One ``count_nonzero`` per frame: several times faster than counting over
    axes, which NumPy does by summing converted booleans.
    """
    return np.fromiter((np.count_nonzero(frame) for frame in masks), dtype=np.int64, count=len(masks))


def erode(masks: np.ndarray, size: int = ERODE_SIZE) -> np.ndarray:
    """Binary erosion of each frame with a ``size x size`` square.

    The image border does not erode: pixels outside the frame count as set,
    which is OpenCV's default for ``cv2.erode`` (the reference's call). So a
    mask touching the frame edge keeps its pixels along that edge.

    Args:
        masks: ``(T, H, W) bool``.

    Returns:
        ``(T, H, W) bool``.
    """
    masks = _as_stack(masks, "masks")
    if size < 1 or size % 2 == 0:
        raise InputError(f"erosion size must be odd and >= 1, got {size}")
    radius = size // 2
    out = masks
    for axis in (1, 2):  # a square erodes separably: along rows, then along columns
        pad = [(0, 0)] * 3
        pad[axis] = (radius, radius)
        padded = np.pad(out, pad, constant_values=True)
        n = out.shape[axis]

        def window(start: int, axis: int = axis, n: int = n) -> tuple:
            return tuple(slice(start, start + n) if a == axis else slice(None) for a in range(3))

        out = padded[window(0)].copy()
        for shift in range(1, size):
            out &= padded[window(shift)]
    return out


def _bbox(masks: np.ndarray) -> tuple[int, int, int, int] | None:
    """``(y0, y1, x0, x1)`` half-open box around the set pixels of all frames, or ``None``."""
    rows = np.flatnonzero(masks.any(axis=(0, 2)))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(masks.any(axis=(0, 1)))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def union_box(boxes) -> tuple[int, int, int, int] | None:
    """Smallest half-open ``(y0, y1, x0, x1)`` holding every box (``None`` entries skipped); ``None`` if none."""
    boxes = [b for b in boxes if b is not None]
    if not boxes:
        return None
    return min(b[0] for b in boxes), max(b[1] for b in boxes), min(b[2] for b in boxes), max(b[3] for b in boxes)


# ----------------------------------------------------------------------------- reference resize
def _taps(src: int, dst: int, clamp_weights: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Source indices ``(i0, i1)`` and fixed-point weights ``(w0, w1)`` of OpenCV's bilinear resize on one axis.

    Pixel centres are aligned (``src = (dst + 0.5) * scale - 0.5``), computed in
    float32 like OpenCV. Horizontally OpenCV clamps both index and weight at the
    borders; vertically it clamps only the row index and keeps the weights,
    which matters for its rounding (``clamp_weights=False``).
    """
    scale = 1.0 / (dst / src)
    pos = ((np.arange(dst) + 0.5) * scale - 0.5).astype(np.float32)
    i0 = np.floor(pos).astype(np.int64)
    frac = (pos - i0).astype(np.float32)
    if clamp_weights:
        low, high = i0 < 0, i0 >= src - 1
        frac[low | high] = 0
        i0 = np.clip(i0, 0, src - 1)
    i1 = np.clip(i0 + 1, 0, src - 1)
    i0 = np.clip(i0, 0, src - 1)
    # saturate_cast<short>(w * 2048) rounds half to even, as np.rint does.
    w0 = np.rint((np.float32(1) - frac) * np.float32(_COEF_ONE)).astype(np.int32)
    w1 = np.rint(frac * np.float32(_COEF_ONE)).astype(np.int32)
    return i0, i1, w0, w1


def _resize_window(masks: np.ndarray, size: tuple[int, int], rows: slice, cols: slice) -> np.ndarray:
    """The ``rows x cols`` window of :func:`resize_masks_reference` (computes only that window)."""
    h, w = masks.shape[1:]
    y0, y1, b0, b1 = (a[rows] for a in _taps(h, size[0], clamp_weights=False))
    x0, x1, a0, a1 = (a[cols] for a in _taps(w, size[1], clamp_weights=True))
    # Only the source rows and columns the window reads.
    ys, ye = int(min(y0.min(), y1.min())), int(max(y0.max(), y1.max())) + 1
    xs, xe = int(min(x0.min(), x1.min())), int(max(x0.max(), x1.max())) + 1
    y0, y1, x0, x1 = y0 - ys, y1 - ys, x0 - xs, x1 - xs
    # Horizontal pass, exact in integers (weights in units of 1/2048), then
    # OpenCV's 8-bit vertical pass (VResizeLinearVec_32s8u and its scalar twin):
    # drop 4 bits, multiply by the row weight keeping the high 16 bits, add the
    # two rows, round off 2 more bits. These truncations make it differ from
    # exact bilinear rounding near 0.5, and the reference numbers depend on it.
    # Gathers run along the first axis (whole contiguous blocks), so the
    # columns, then the rows, are moved to the front first.
    by_column = np.ascontiguousarray(masks[:, ys:ye, xs:xe].transpose(2, 0, 1))  # (w', T, h')
    left, right = by_column[x0], by_column[x1]  # (W_out, T, h')
    # A 0/1 source pair gives one of four horizontal values per output column,
    # already shifted by 4 bits: 0, a0 >> 4, a1 >> 4 or (a0 + a1) >> 4 (<= 128).
    only_left, only_right, both = ((v >> 4).astype(np.uint8)[:, None, None] for v in (a0, a1, a0 + a1))
    coarse = np.where(left, np.where(right, both, only_left), np.where(right, only_right, np.uint8(0)))
    by_row = np.ascontiguousarray(coarse.transpose(2, 1, 0))  # (h', T, W_out)

    # Each row term (c * b) >> 16 lies in 0..4 and the output is set when the
    # two terms add up to >= 2 (then (sum + 2) >> 2 >= 1). A term reaches k when
    # c >= ceil(k * 65536 / b), so three comparisons per pixel decide it.
    def reach(b: np.ndarray, k: int) -> np.ndarray:
        need = np.where(b > 0, -(-k * 65536 // np.maximum(b, 1)), 255)
        return np.minimum(need, 255).astype(np.uint8)[:, None, None]  # (H_out, 1, 1); 255 is out of reach

    top, bottom = by_row[y0], by_row[y1]  # (H_out, T, W_out)
    out = top >= reach(b0, 2)
    out |= bottom >= reach(b1, 2)
    either = top >= reach(b0, 1)
    either &= bottom >= reach(b1, 1)
    out |= either
    return np.ascontiguousarray(out.transpose(1, 0, 2))  # (T, H_out, W_out)


def resize_masks_reference(masks: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize masks exactly as the reference evaluation does (OpenCV bilinear on 8-bit 0/1 masks).

    The reference calls ``cv2.resize(mask_uint8, (W, H), interpolation=cv2.INTER_LINEAR)``
    on 0/1 masks and keeps the non-zero output. OpenCV's 8-bit path uses 11-bit
    fixed-point weights and truncating intermediate shifts; this function
    reproduces that integer arithmetic bit for bit (checked against the
    reference numbers in ``tests/test_metrics.py``). It is *not* a float
    bilinear resize thresholded at 0.5: the truncations only lose value, so
    edge pixels whose exact bilinear value lies between 0.5 and about 0.7 stay
    clear. That moves SAIL-VOS mIoU by about 1e-3.

    Args:
        masks: ``(T, h, w) bool``.
        size: output ``(H, W)``.

    Returns:
        ``(T, H, W) bool``.
    """
    masks = _as_stack(masks, "masks")
    height, width = int(size[0]), int(size[1])
    if height < 1 or width < 1:
        raise InputError(f"resize size must be positive, got {size}")
    if masks.shape[1:] == (height, width):
        return masks.copy()
    return _resize_window(masks, (height, width), slice(None), slice(None))


def _upsampled_support(box, src: tuple[int, int], dst: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """Output box that can hold set pixels after :func:`resize_masks_reference` of masks inside ``box``."""
    if box is None:
        return None
    spans = []
    for lo, hi, n_src, n_dst, clamp in (
        (box[0], box[1], src[0], dst[0], False),
        (box[2], box[3], src[1], dst[1], True),
    ):
        i0, i1, _, _ = _taps(n_src, n_dst, clamp_weights=clamp)
        hit = np.flatnonzero(((i0 >= lo) & (i0 < hi)) | ((i1 >= lo) & (i1 < hi)))
        if hit.size == 0:
            return None
        spans.append((int(hit[0]), int(hit[-1]) + 1))
    return spans[0][0], spans[0][1], spans[1][0], spans[1][1]


# ----------------------------------------------------------------------------- SAIL-VOS protocol
def _place(window: np.ndarray, origin: tuple[int, int], rows: slice, cols: slice) -> np.ndarray:
    """The ``rows x cols`` crop of frames whose only set pixels are ``window`` (at ``origin``); a view when it fits."""
    oy, ox = origin
    t, h, w = window.shape
    if oy <= rows.start and rows.stop <= oy + h and ox <= cols.start and cols.stop <= ox + w:
        return window[:, rows.start - oy : rows.stop - oy, cols.start - ox : cols.stop - ox]
    out = np.zeros((t, rows.stop - rows.start, cols.stop - cols.start), dtype=bool)
    y0, y1 = max(rows.start, oy), min(rows.stop, oy + h)
    x0, x1 = max(cols.start, ox), min(cols.stop, ox + w)
    if y0 < y1 and x0 < x1:
        out[:, y0 - rows.start : y1 - rows.start, x0 - cols.start : x1 - cols.start] = window[
            :, y0 - oy : y1 - oy, x0 - ox : x1 - ox
        ]
    return out


def sailvos_frame_scores(
    pred: np.ndarray,
    amodal: np.ndarray,
    modal: np.ndarray,
    eps: float = EPS,
    origin: tuple[int, int] = (0, 0),
    size: tuple[int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-frame scores of one object under the SAIL-VOS reference protocol.

    The prediction is resized to the ground-truth size with
    :func:`resize_masks_reference` when the sizes differ, then unioned with the
    modal mask. Occluded regions (amodal and not modal, for ground truth and
    prediction alike) are eroded once with a 5x5 square before their IoU.

    Args:
        pred: ``(T, h, w) bool`` predicted amodal masks of whole frames, any
            size (the reference scores 256x512 predictions against 800x1280
            ground truth).
        amodal: ``(T, H', W') bool`` ground-truth amodal masks: whole frames,
            or a window of the frames holding every set pixel of ``amodal``
            and ``modal`` (see ``origin`` and ``size``).
        modal: ``(T, H', W') bool`` ground-truth modal (visible) masks, same window.
        origin: ``(y, x)`` of the window's top-left pixel in the frame.
        size: ``(H, W)`` of the frame; default ``(H', W')`` (whole frames).

    Returns:
        ``iou``: ``(T,) float64`` full-mask IoU;
        ``occ_iou``: ``(T,) float64`` IoU of the eroded occluded regions;
        ``occ_gt``: ``(T,) bool``, the eroded occluded ground truth is non-empty
        (the frames the strict mIoU_occ averages over).
    """
    pred, amodal, modal = _as_stack(pred, "pred"), _as_stack(amodal, "amodal"), _as_stack(modal, "modal")
    if amodal.shape != modal.shape:
        raise InputError(f"amodal shape {amodal.shape} does not match modal shape {modal.shape}")
    if pred.shape[0] != amodal.shape[0]:
        raise InputError(f"prediction has {pred.shape[0]} frames, ground truth {amodal.shape[0]}")
    t = amodal.shape[0]
    height, width = (int(size[0]), int(size[1])) if size is not None else amodal.shape[1:]
    oy, ox = int(origin[0]), int(origin[1])
    # Everything outside the box around all masks is empty in every array, so
    # the counts only need that box, grown by the erosion radius so that the
    # erosion of the box equals the box of the erosion.
    gt_box = union_box([_bbox(amodal), _bbox(modal)])
    if gt_box is not None:
        gt_box = (gt_box[0] + oy, gt_box[1] + oy, gt_box[2] + ox, gt_box[3] + ox)
    pred_box = _bbox(pred)
    if pred.shape[1:] != (height, width):
        pred_box = _upsampled_support(pred_box, pred.shape[1:], (height, width))
    box = union_box([gt_box, pred_box])
    if box is None:  # nothing anywhere: IoU 0 / (0 + eps) = 0, as the reference gives
        return np.zeros(t), np.zeros(t), np.zeros(t, dtype=bool)
    r = ERODE_SIZE // 2
    rows = slice(max(box[0] - r, 0), min(box[1] + r, height))
    cols = slice(max(box[2] - r, 0), min(box[3] + r, width))
    amodal, modal = _place(amodal, (oy, ox), rows, cols), _place(modal, (oy, ox), rows, cols)
    if pred.shape[1:] != (height, width):
        pred = _resize_window(pred, (height, width), rows, cols)
    else:
        pred = pred[:, rows, cols]
    pred = pred | modal
    iou = mask_iou(pred, amodal, eps)
    occ_gt, occ_pred = amodal & ~modal, pred & ~modal
    occ_box = union_box([_bbox(occ_gt), _bbox(occ_pred)])
    if occ_box is None:
        return iou, np.zeros(t), np.zeros(t, dtype=bool)
    # The same cropping again, around the (usually much smaller) occluded
    # parts; where the crop meets the image border the no-erosion rule holds.
    h, w = occ_gt.shape[1:]
    occ_rows = slice(max(occ_box[0] - r, 0), min(occ_box[1] + r, h))
    occ_cols = slice(max(occ_box[2] - r, 0), min(occ_box[3] + r, w))
    occ_gt = erode(occ_gt[:, occ_rows, occ_cols])
    occ_pred = erode(occ_pred[:, occ_rows, occ_cols])
    return iou, mask_iou(occ_pred, occ_gt, eps), occ_gt.any(axis=(1, 2))


def sailvos_summary(iou: np.ndarray, occ_iou: np.ndarray, occ_gt: np.ndarray) -> dict:
    """Pool per-frame SAIL-VOS scores of all clips into the reported numbers.

    Args:
        iou, occ_iou: ``(N,) float64`` per-frame scores of every frame of every clip.
        occ_gt: ``(N,) bool``, the eroded occluded ground truth is non-empty.

    Returns:
        ``miou``: mean ``iou`` over all frames;
        ``miou_occ``: the reference reading, mean ``occ_iou`` over frames with
        ``occ_iou >= 1e-6`` (this also drops frames where the prediction misses
        the hidden part entirely, so it rewards a method for abstaining);
        ``miou_occ_strict``: mean ``occ_iou`` over every frame with ``occ_gt``;
        and the frame counts behind each mean. Means of no frames are ``nan``.
    """
    iou, occ_iou, occ_gt = np.asarray(iou, float), np.asarray(occ_iou, float), np.asarray(occ_gt, bool)
    kept = occ_iou >= OCC_MIN_IOU
    return {
        "miou": _mean(iou),
        "miou_occ": _mean(occ_iou[kept]),
        "miou_occ_strict": _mean(occ_iou[occ_gt]),
        "frames": int(iou.size),
        "frames_occ": int(kept.sum()),
        "frames_occ_strict": int(occ_gt.sum()),
    }


def visible_harm(iou: np.ndarray, fully_visible: np.ndarray) -> dict:
    """What a method does to objects that nothing hides ("do no harm"), from SAIL-VOS frame scores.

    On a fully visible frame the amodal truth is the modal mask and the scored prediction
    contains it (the protocol unions it with the modal mask), so the full-mask IoU is
    ``|amodal| / |prediction|`` and the false amodal area, as a share of the object's area, is
    exactly ``1 / iou - 1``.

    Args:
        iou: ``(N,) float64`` per-frame full-mask IoU.
        fully_visible: ``(N,) bool``, frames whose object is entirely visible.

    Returns:
        ``visible_miou``: mean IoU over fully visible frames (1.0 = left alone);
        ``visible_false_area``: mean false amodal area over them (0.0 = left alone); a few tiny
        objects, where a pixel is a large share, can dominate it, so also
        ``visible_false_area_median``;
        ``frames_visible``: how many; means of no frames are ``nan``.
    """
    iou, fully_visible = np.asarray(iou, float), np.asarray(fully_visible, bool)
    seen = iou[fully_visible]
    return {
        "visible_miou": _mean(seen),
        "visible_false_area": _mean(1.0 / np.maximum(seen, EPS) - 1.0),
        "visible_false_area_median": float(np.median(1.0 / np.maximum(seen, EPS) - 1.0)) if seen.size else float("nan"),
        "frames_visible": int(fully_visible.sum()),
    }


def _mean(values: np.ndarray) -> float:
    return float(np.mean(values)) if values.size else float("nan")


# ----------------------------------------------------------------------------- TAO-Amodal protocol
def boxes_from_masks(masks: np.ndarray) -> np.ndarray:
    """Tight ``[x, y, w, h]`` box of each mask, with ``w = x_max - x_min + 1`` (pixel-inclusive).

    Args:
        masks: ``(T, H, W) bool``.

    Returns:
        ``(T, 4) float64``; rows of empty masks are ``nan``.
    """
    masks = _as_stack(masks, "masks")
    rows = masks.any(axis=2)  # (T, H)
    cols = masks.any(axis=1)  # (T, W)
    present = rows.any(axis=1)
    h, w = masks.shape[1:]
    y0 = rows.argmax(axis=1)
    y1 = h - 1 - rows[:, ::-1].argmax(axis=1)
    x0 = cols.argmax(axis=1)
    x1 = w - 1 - cols[:, ::-1].argmax(axis=1)
    boxes = np.stack([x0, y0, x1 - x0 + 1, y1 - y0 + 1], axis=1).astype(np.float64)
    boxes[~present] = np.nan
    return boxes


def box_union_xywh(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Smallest ``[x, y, w, h]`` box holding both boxes, row by row; a ``nan`` row takes the other box.

    Args:
        a, b: ``(N, 4) float64``.

    Returns:
        ``(N, 4) float64``.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    a = np.where(np.isnan(a).any(axis=1, keepdims=True), b, a)
    b = np.where(np.isnan(b).any(axis=1, keepdims=True), a, b)
    x0 = np.minimum(a[:, 0], b[:, 0])
    y0 = np.minimum(a[:, 1], b[:, 1])
    x1 = np.maximum(a[:, 0] + a[:, 2], b[:, 0] + b[:, 2])
    y1 = np.maximum(a[:, 1] + a[:, 3], b[:, 1] + b[:, 3])
    return np.stack([x0, y0, x1 - x0, y1 - y0], axis=1)


def box_iou_xywh(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of ``[x, y, w, h]`` boxes, row by row, in continuous coordinates (no +1).

    Args:
        a, b: ``(N, 4)`` float boxes (``w, h >= 0``); a ``nan`` row scores 0.

    Returns:
        ``(N,) float64`` in ``[0, 1]``.
    """
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    if a.shape != b.shape:
        raise InputError(f"box arrays differ in shape: {a.shape} and {b.shape}")
    iw = np.minimum(a[:, 0] + a[:, 2], b[:, 0] + b[:, 2]) - np.maximum(a[:, 0], b[:, 0])
    ih = np.minimum(a[:, 1] + a[:, 3], b[:, 1] + b[:, 3]) - np.maximum(a[:, 1], b[:, 1])
    inter = np.where((iw > 0) & (ih > 0), iw * ih, 0.0)
    union = a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
    return np.nan_to_num(iou, nan=0.0)


def tao_summary(iou: np.ndarray) -> dict:
    """Pool per-frame TAO-Amodal box IoUs of all tracks into the reported numbers.

    ``ap25``/``ap50``/``ap75`` are the share of frames whose IoU is strictly
    above 0.25/0.5/0.75 (the reference's definition; not COCO AP).

    Args:
        iou: ``(N,) float64`` box IoU of every frame of every track.

    Returns:
        ``{"miou", "ap25", "ap50", "ap75", "frames"}``; ``nan`` for no frames.
    """
    iou = np.asarray(iou, float)
    out = {"miou": _mean(iou)}
    for t in TAO_THRESHOLDS:
        out[f"ap{round(t * 100)}"] = _mean((iou > t).astype(float))
    out["frames"] = int(iou.size)
    return out


# ----------------------------------------------------------------------------- MOVi protocol
def movi_crop_boxes(modal: np.ndarray, scale: float = MOVI_CROP_SCALE) -> np.ndarray:
    """Crop of each frame for the MOVi cropped setting: the modal box enlarged ``scale`` x around its centre.

    The modal box is pixel-inclusive (``w = x_max - x_min + 1``); the enlarged
    box keeps its centre and is clamped to the frame. Frames with an empty
    modal mask get the whole frame (the protocol skips them anyway).

    Args:
        modal: ``(T, H, W) bool``.

    Returns:
        ``(T, 4) int64`` half-open ``[y0, y1, x0, x1]`` per frame.
    """
    modal = _as_stack(modal, "modal")
    h, w = modal.shape[1:]
    boxes = boxes_from_masks(modal)
    empty = np.isnan(boxes).any(axis=1)
    boxes = np.where(empty[:, None], [0.0, 0.0, w, h], boxes)
    cx, cy = boxes[:, 0] + boxes[:, 2] / 2, boxes[:, 1] + boxes[:, 3] / 2
    half_w, half_h = boxes[:, 2] * scale / 2, boxes[:, 3] * scale / 2
    x0 = np.clip(np.floor(cx - half_w), 0, w).astype(np.int64)
    x1 = np.clip(np.ceil(cx + half_w), 0, w).astype(np.int64)
    y0 = np.clip(np.floor(cy - half_h), 0, h).astype(np.int64)
    y1 = np.clip(np.ceil(cy + half_h), 0, h).astype(np.int64)
    out = np.stack([y0, y1, x0, x1], axis=1)
    out[empty] = [0, h, 0, w]
    return out


def movi_frame_scores(
    pred: np.ndarray, amodal: np.ndarray, modal: np.ndarray, cropped: bool = False, eps: float = EPS
) -> dict:
    """Per-frame scores of one object under the MOVi protocol (C2F-Seg / EoRaS style).

    Args:
        pred: ``(T, H, W)`` predicted amodal masks, ``bool`` or soft ``float``
            (binarised ``> 0.5``); not unioned with the modal mask.
        amodal, modal: ``(T, H, W) bool`` ground truth.
        cropped: score inside :func:`movi_crop_boxes` instead of the whole frame.

    Returns:
        ``iou``, ``occ_iou``: ``(T,) float64``, full-mask IoU and IoU of the
        occluded regions (amodal and not modal; no erosion);
        ``visible``: ``(T,) bool``, the modal mask is non-empty (the only frames
        the protocol scores); ``occluded``: ``(T,) bool``, visible and the
        occluded ground truth inside the scored region is non-empty.
    """
    pred = np.asarray(pred)
    if pred.dtype != np.bool_:
        pred = pred > MOVI_THRESHOLD
    pred, amodal, modal = _as_stack(pred, "pred"), _as_stack(amodal, "amodal"), _as_stack(modal, "modal")
    if not pred.shape == amodal.shape == modal.shape:
        raise InputError(f"MOVi masks must share one shape, got {pred.shape}, {amodal.shape}, {modal.shape}")
    if cropped:
        h, w = modal.shape[1:]
        boxes = movi_crop_boxes(modal)
        ys, xs = np.arange(h), np.arange(w)
        in_rows = (ys >= boxes[:, 0:1]) & (ys < boxes[:, 1:2])  # (T, H)
        in_cols = (xs >= boxes[:, 2:3]) & (xs < boxes[:, 3:4])  # (T, W)
        region = in_rows[:, :, None] & in_cols[:, None, :]
        pred, amodal, modal = pred & region, amodal & region, modal & region
    occ_gt = amodal & ~modal
    visible = modal.any(axis=(1, 2))
    return {
        "iou": mask_iou(pred, amodal, eps),
        "occ_iou": mask_iou(pred & ~modal, occ_gt, eps),
        "visible": visible,
        "occluded": visible & occ_gt.any(axis=(1, 2)),
    }


def _group_means(values: np.ndarray, groups: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Mean of ``values[keep]`` within each group that keeps at least one row."""
    values, groups = values[keep], groups[keep]
    if values.size == 0:
        return np.zeros(0)
    ids, inverse = np.unique(groups, return_inverse=True)
    sums = np.bincount(inverse, weights=values, minlength=ids.size)
    counts = np.bincount(inverse, minlength=ids.size)
    return sums / counts


def movi_summary(
    iou: np.ndarray, occ_iou: np.ndarray, visible: np.ndarray, occluded: np.ndarray, groups: np.ndarray
) -> dict:
    """Per-object means over the scored frames, then the mean over objects.

    Args:
        iou, occ_iou: ``(N,) float64`` per-frame scores of every object.
        visible, occluded: ``(N,) bool`` from :func:`movi_frame_scores`.
        groups: ``(N,) int`` one id per (video, object).

    Returns:
        ``miou`` (visible frames); ``miou_occ`` (visible, occluded frames with
        occluded IoU >= 1e-6, the reference reading); ``miou_occ_strict``
        (every visible, occluded frame); object and frame counts.
    """
    iou, occ_iou = np.asarray(iou, float), np.asarray(occ_iou, float)
    visible, occluded, groups = np.asarray(visible, bool), np.asarray(occluded, bool), np.asarray(groups)
    kept = occluded & (occ_iou >= OCC_MIN_IOU)
    per_object = _group_means(iou, groups, visible)
    return {
        "miou": _mean(per_object),
        "miou_occ": _mean(_group_means(occ_iou, groups, kept)),
        "miou_occ_strict": _mean(_group_means(occ_iou, groups, occluded)),
        "objects": int(per_object.size),
        "frames": int(visible.sum()),
        "frames_occ": int(kept.sum()),
        "frames_occ_strict": int(occluded.sum()),
    }


# ----------------------------------------------------------------------------- Top-k
def best_of_k(scores: np.ndarray, groups: np.ndarray, k: int, valid: np.ndarray | None = None) -> np.ndarray:
    """Which of the first ``k`` samples scores best for each group (Top-k, as in the paper).

    Each group (one object of one video) picks the sample with the highest
    mean score over its valid rows; ties go to the lower sample index, groups
    without valid rows take sample 0.

    Args:
        scores: ``(N, S) float64`` per-frame score of each sample.
        groups: ``(N,)`` group id of each row.
        k: how many leading samples compete (``1 <= k``; more than ``S`` means all).
        valid: ``(N,) bool`` rows that count, or ``None`` for all.

    Returns:
        ``(N,) int64`` chosen sample index of each row's group.
    """
    scores = np.asarray(scores, float)
    if scores.ndim != 2:
        raise InputError(f"scores must be (N, S), got shape {scores.shape}")
    if k < 1:
        raise InputError(f"k must be >= 1, got {k}")
    n, s = scores.shape
    k = min(k, s)
    groups = np.asarray(groups)
    valid = np.ones(n, bool) if valid is None else np.asarray(valid, bool)
    ids, inverse = np.unique(groups, return_inverse=True)
    weights = valid.astype(float)
    sums = np.stack([np.bincount(inverse, weights=scores[:, j] * weights, minlength=ids.size) for j in range(k)], 1)
    counts = np.bincount(inverse, weights=weights, minlength=ids.size)[:, None]
    means = np.where(counts > 0, sums / np.maximum(counts, 1), 0.0)
    return means.argmax(axis=1)[inverse].astype(np.int64)
