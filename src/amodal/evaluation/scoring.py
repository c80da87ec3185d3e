"""Scoring predictions of one clip into frame-table rows, and frame tables into reported numbers.

Each dataset kind has one protocol (see :mod:`amodal.evaluation.metrics`):

- ``synthetic``, ``sailvos``: the SAIL-VOS protocol (``miou``, ``miou_occ``,
  ``miou_occ_strict``), every frame of every clip pooled. ``sailvos`` scores
  every annotated frame, as the reference does; ``synthetic`` skips frames
  where the object is entirely out of view (empty amodal mask), which the
  curated SAIL-VOS set does not have and where every method would score 0.
- ``tao-amodal``: box IoU (``miou``, ``ap25``, ``ap50``, ``ap75``), frames pooled.
- ``movi``: whole-frame (``miou``, ``miou_occ``, ``miou_occ_strict``) and
  cropped (the same with ``_cropped``) IoU on visible frames, per object then
  over objects.
"""

from __future__ import annotations

import numpy as np

from amodal.evaluation import metrics
from amodal.data.datasets.base import Annotation
from amodal.errors import InputError
from amodal.evaluation.table import FrameTable

# Visible-fraction bin edges of the report; fully visible frames (1.0) get a row of their own.
VISIBLE_BINS = (0.0, 0.25, 0.5, 0.75, 1.0)


def protocol_of(kind: str) -> str:
    """``"sailvos"``, ``"tao"`` or ``"movi"``: the protocol a dataset kind is scored with."""
    return {"synthetic": "sailvos", "sailvos": "sailvos", "tao-amodal": "tao", "movi": "movi"}[kind]


def _visible_fraction(annotation: Annotation) -> np.ndarray:
    """``(K, T) float64``: modal area over amodal area (over amodal box area for TAO-Amodal), ``nan`` if undefined."""
    modal = np.stack([metrics.frame_counts(m) for m in annotation.modal_masks]).astype(np.float64)
    if annotation.amodal_masks is not None:
        full = np.stack([metrics.frame_counts(m) for m in annotation.amodal_masks]).astype(np.float64)
    else:
        full = annotation.amodal_boxes[..., 2] * annotation.amodal_boxes[..., 3]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(full > 0, np.minimum(modal / np.where(full > 0, full, 1), 1.0), np.nan)


def _scored(kind: str, annotation: Annotation, frames: range) -> np.ndarray:
    """``(K * n,) bool``: the rows the protocol averages over (see the module docstring)."""
    sel = slice(frames.start, frames.stop)
    if kind == "movi":
        masks = annotation.modal_masks[:, sel]
    elif kind == "synthetic":
        masks = annotation.amodal_masks[:, sel]
    else:
        return np.ones(len(annotation.object_ids) * len(frames), dtype=bool)
    return masks.any(axis=(2, 3)).reshape(-1)


def _id_columns(kind: str, annotation: Annotation, clip_index: int, frame_offset: int, frames: range) -> dict:
    k = len(annotation.object_ids)
    n = len(frames)
    fraction = _visible_fraction(annotation)[:, frames.start : frames.stop]
    return {
        "scored": _scored(kind, annotation, frames),
        "clip": np.full(k * n, clip_index, dtype=np.int64),
        "video": np.full(k * n, annotation.video, dtype=object),
        "object_id": np.repeat(np.asarray(annotation.object_ids, dtype=np.int64), n),
        "category_id": np.repeat(np.asarray(annotation.category_ids, dtype=np.int64), n),
        "frame": np.tile(np.arange(frames.start, frames.stop, dtype=np.int64) + frame_offset, k),
        "visible_fraction": fraction.reshape(-1),
    }


def score_masks(
    kind: str,
    annotation: Annotation,
    samples: np.ndarray,
    clip_index: int,
    frame_offset: int = 0,
    frames: range | None = None,
) -> FrameTable:
    """Rows of predicted masks ``(S, K, T, h, w) bool`` scored against ``annotation``.

    Args:
        kind: the dataset kind (chooses the protocol).
        annotation: ground truth of the clip (or window).
        samples: predictions; any ``(h, w)`` under the SAIL-VOS protocol (resized
            as the reference does), the ground-truth size for MOVi. (TAO-Amodal
            is scored on boxes: see :func:`mask_boxes` and :func:`score_boxes`.)
        clip_index: the clip's index in the dataset (first column).
        frame_offset: index of the window's first frame in the dataset clip.
        frames: the frames of the window to score (default all).

    Returns:
        One row per object and scored frame, objects outer.
    """
    s, k, t = samples.shape[:3]
    frames = frames if frames is not None else range(annotation.num_frames)
    if (k, t) != annotation.modal_masks.shape[:2]:
        raise InputError(
            f"{annotation.source}: prediction has {k} objects x {t} frames, "
            f"ground truth {annotation.modal_masks.shape[:2]}"
        )
    protocol = protocol_of(kind)
    if protocol != "sailvos" and (samples.shape[3:] != annotation.size or annotation.cropped):
        raise InputError(
            f"{annotation.source}: predicted masks are {samples.shape[4]}x{samples.shape[3]}, "
            f"ground truth {annotation.size[1]}x{annotation.size[0]}"
        )
    if protocol == "tao":
        raise InputError("TAO-Amodal is scored on boxes: turn masks into boxes with mask_boxes, then score_boxes")
    cols = _id_columns(kind, annotation, clip_index, frame_offset, frames)
    sel = slice(frames.start, frames.stop)
    modal, amodal = annotation.modal_masks[:, sel], annotation.amodal_masks[:, sel]
    if protocol == "sailvos":
        iou, occ = np.zeros((k, len(frames), s)), np.zeros((k, len(frames), s))
        occ_gt = np.zeros((k, len(frames)), dtype=bool)
        for j in range(k):
            for i in range(s):
                iou[j, :, i], occ[j, :, i], occ_gt[j] = metrics.sailvos_frame_scores(
                    samples[i, j, sel], amodal[j], modal[j], origin=annotation.origin, size=annotation.size
                )
        cols.update(iou=iou.reshape(-1, s), occ_iou=occ.reshape(-1, s), occ_gt=occ_gt.reshape(-1))
        return FrameTable(cols)
    # MOVi: whole frame and cropped.
    for suffix, cropped in (("", False), ("_cropped", True)):
        iou, occ = np.zeros((k, len(frames), s)), np.zeros((k, len(frames), s))
        visible, occluded = np.zeros((k, len(frames)), bool), np.zeros((k, len(frames)), bool)
        for j in range(k):
            for i in range(s):
                out = metrics.movi_frame_scores(samples[i, j, sel], amodal[j], modal[j], cropped=cropped)
                iou[j, :, i], occ[j, :, i] = out["iou"], out["occ_iou"]
                visible[j], occluded[j] = out["visible"], out["occluded"]
        cols[f"iou{suffix}"] = iou.reshape(-1, s)
        cols[f"occ_iou{suffix}"] = occ.reshape(-1, s)
        cols[f"occluded{suffix}"] = occluded.reshape(-1)
        cols["visible"] = visible.reshape(-1)
    return FrameTable(cols)


def mask_boxes(samples: np.ndarray, modal: np.ndarray) -> np.ndarray:
    """TAO-Amodal boxes of predicted masks: ``(S, K, T, 4) float64`` ``[x, y, w, h]``.

    Each box is the union of the predicted mask's box and the modal mask's box,
    as the reference's prediction script makes it (``nan`` when both are empty).

    Args:
        samples: ``(S, K, T, H, W) bool`` predicted masks.
        modal: ``(K, T, H, W) bool`` modal masks.
    """
    return np.stack([[metrics.boxes_from_masks(sample[j] | modal[j]) for j in range(len(modal))] for sample in samples])


def score_boxes(
    annotation: Annotation, boxes: np.ndarray, clip_index: int, frame_offset: int = 0, frames: range | None = None
) -> FrameTable:
    """Rows of predicted TAO-Amodal boxes ``(S, K, T, 4)`` ``[x, y, w, h]`` scored against the amodal boxes.

    Ground-truth boxes are taken as float32, as the reference loads them.
    """
    if annotation.amodal_boxes is None:
        raise InputError(f"{annotation.source}: no amodal boxes to score boxes against")
    frames = frames if frames is not None else range(annotation.num_frames)
    s = boxes.shape[0]
    gt = annotation.amodal_boxes.astype(np.float32)[:, frames.start : frames.stop]
    pred = boxes[:, :, frames.start : frames.stop]
    iou = np.stack(
        [
            metrics.box_iou_xywh(np.broadcast_to(gt, pred[i].shape).reshape(-1, 4), pred[i].reshape(-1, 4))
            for i in range(s)
        ],
        1,
    )
    cols = _id_columns("tao-amodal", annotation, clip_index, frame_offset, frames)
    cols["iou"] = iou
    return FrameTable(cols)


# ----------------------------------------------------------------------------- summaries
def choose_samples(table: FrameTable, k: int) -> np.ndarray:
    """``(N,) int64`` sample scored for each row.

    Sample 0 for ``k = 1`` (Top-1), else the best of the first ``k`` per (video, object).
    """
    if k <= 1 or table.num_samples == 1:
        return np.zeros(len(table), dtype=np.int64)
    return metrics.best_of_k(table["iou"], table.group_ids(), k, table["scored"])


def _pick(column: np.ndarray, choice: np.ndarray) -> np.ndarray:
    return column[np.arange(len(column)), choice]


def summarize(kind: str, table: FrameTable, k: int = 1) -> dict:
    """The reported numbers of a frame table (Top-1 for ``k = 1``, Top-k otherwise), over its scored rows."""
    protocol = protocol_of(kind)
    if not len(table) or not table["scored"].any():
        raise InputError("nothing to score: the dataset has no annotated frames the protocol scores")
    choice = choose_samples(table, k)[table["scored"]]
    table = table.take(table["scored"])
    if protocol == "sailvos":
        iou = _pick(table["iou"], choice)
        return {**metrics.sailvos_summary(iou, _pick(table["occ_iou"], choice), table["occ_gt"]),
                **metrics.visible_harm(iou, table["visible_fraction"] >= 1.0)}
    if protocol == "tao":
        return metrics.tao_summary(_pick(table["iou"], choice))
    groups = table.group_ids()
    out = {}
    for suffix in ("", "_cropped"):
        part = metrics.movi_summary(
            _pick(table[f"iou{suffix}"], choice),
            _pick(table[f"occ_iou{suffix}"], choice),
            table["visible"],
            table[f"occluded{suffix}"],
            groups,
        )
        out.update({f"{name}{suffix}" if name.startswith("miou") else name: v for name, v in part.items()})
    return out


def breakdown(table: FrameTable, column: str = "iou", rows: np.ndarray | None = None) -> dict:
    """Top-1 mIoU (or the Top-1 mean of another per-sample ``column``) by visible-fraction bin and by category.

    Frame-pooled over ``rows`` (default: the scored rows).

    Returns:
        ``{"visible_fraction": [(label, frames, miou), ...], "category": [(id, frames, miou), ...]}``;
        the category list is empty when every category is 0 (unknown).
    """
    rows = table["scored"] if rows is None else rows
    iou = table[column][:, 0]
    fraction = table["visible_fraction"]
    bins = []
    edges = VISIBLE_BINS
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        sel = rows & (fraction >= lo) & (fraction < hi)
        bins.append((f"[{lo:.2f}, {hi:.2f})", int(sel.sum()), float(iou[sel].mean()) if sel.any() else float("nan")))
    sel = rows & (fraction >= 1.0)
    bins.append(("1.00 (fully visible)", int(sel.sum()), float(iou[sel].mean()) if sel.any() else float("nan")))
    categories = []
    cats = table["category_id"]
    if (cats != 0).any():
        for c in np.unique(cats):
            sel = rows & (cats == c)
            categories.append((int(c), int(sel.sum()), float(iou[sel].mean()) if sel.any() else float("nan")))
    return {"visible_fraction": bins, "category": categories}


# ----------------------------------------------------------------------------- content completion (stage 2)
def score_completion(annotation: Annotation, truth: np.ndarray, samples: np.ndarray, clip_index: int,
                     lpips=None) -> FrameTable:
    """Rows of completed objects ``(S, K, T, H, W, 3) uint8`` scored against their true appearance.

    Args:
        annotation: ground truth of the clip (whole frames, amodal masks required).
        truth: ``(K, T, H, W, 3) uint8`` true unoccluded appearance on white (``Clip.amodal_rgb``).
        samples: the method's completions, ``S`` hypotheses.
        clip_index: the clip's index in the dataset (first column).
        lpips: an :class:`amodal.evaluation.lpips.LPIPS` model to add ``lpips_occ``
            (mean LPIPS over the hidden region), or ``None``.

    Returns:
        One row per object and frame, objects outer: the id columns (``scored``:
        the true amodal mask is non-empty), ``occluded`` (something is hidden),
        and ``(N, S)`` columns :data:`amodal.evaluation.completion.FRAME_METRICS`
        (and ``lpips_occ`` with ``lpips``).
    """
    from amodal.evaluation import completion

    s, k, t = samples.shape[:3]
    if annotation.amodal_masks is None or annotation.cropped:
        raise InputError(f"{annotation.source}: completion is scored on whole-frame amodal masks")
    if samples.shape[1:] != truth.shape or truth.shape[:-1] != annotation.amodal_masks.shape:
        raise InputError(
            f"{annotation.source}: completions {samples.shape[1:]}, truth {truth.shape} and masks "
            f"{annotation.amodal_masks.shape} do not match"
        )
    cols = _id_columns("synthetic", annotation, clip_index, 0, range(t))
    modal, amodal = annotation.modal_masks, annotation.amodal_masks
    cols["occluded"] = (amodal & ~modal).any(axis=(2, 3)).reshape(-1)
    names = completion.FRAME_METRICS + (("lpips_occ",) if lpips is not None else ())
    scores = {name: np.full((k, t, s), np.nan) for name in names}
    for j in range(k):
        for i in range(s):
            for name, values in completion.frame_scores(samples[i, j], truth[j], amodal[j], modal[j]).items():
                scores[name][j, :, i] = values
            if lpips is not None:
                from amodal.evaluation.lpips import lpips_region

                scores["lpips_occ"][j, :, i] = lpips_region(lpips, samples[i, j], truth[j], amodal[j] & ~modal[j])
    cols.update({name: v.reshape(-1, s) for name, v in scores.items()})
    return FrameTable(cols)


def choose_completion_samples(table: FrameTable, k: int) -> np.ndarray:
    """``(N,) int64`` sample scored for each row: 0 for Top-1, else the best of the first ``k`` per
    (video, object) on mean ``psnr_occ`` over its scored occluded frames."""
    s = table["psnr_occ"].shape[1]
    if k <= 1 or s == 1:
        return np.zeros(len(table), dtype=np.int64)
    valid = table["scored"] & table["occluded"]
    return metrics.best_of_k(np.nan_to_num(table["psnr_occ"]), table.group_ids(), k, valid)


def _finite_mean(values: np.ndarray) -> float:
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else float("nan")


def summarize_completion(table: FrameTable, k: int = 1) -> dict:
    """The reported completion numbers of a frame table (Top-1 for ``k = 1``, Top-k otherwise).

    ``psnr``, ``ssim``, ``silhouette_iou``: mean over scored frames;
    ``psnr_occ``, ``ssim_occ``, ``mae_occ``: mean over scored frames with a hidden part;
    ``temporal_occ``: per (video, object) the mean of its pair errors, then the mean over objects.
    """
    if not len(table) or not table["scored"].any():
        raise InputError("nothing to score: no frame of the dataset shows an object")
    choice = choose_completion_samples(table, k)
    pick = {name: _pick(table[name], choice) for name in ("psnr_occ", "ssim_occ", "mae_occ", "psnr", "ssim",
                                                            "silhouette_iou", "temporal_occ")}
    scored = table["scored"]
    occluded = scored & table["occluded"]
    out = {name: _finite_mean(pick[name][occluded]) for name in ("psnr_occ", "ssim_occ", "mae_occ")}
    if "lpips_occ" in table.columns:
        out["lpips_occ"] = _finite_mean(_pick(table["lpips_occ"], choice)[occluded])
    out.update({name: _finite_mean(pick[name][scored]) for name in ("psnr", "ssim", "silhouette_iou")})
    groups = table.group_ids()
    pairs = np.isfinite(pick["temporal_occ"])
    per_object = [pick["temporal_occ"][pairs & (groups == g)].mean() for g in np.unique(groups[pairs])]
    out["temporal_occ"] = float(np.mean(per_object)) if per_object else float("nan")
    out["frames"] = int(scored.sum())
    out["occluded_frames"] = int(occluded.sum())
    out["objects"] = int(np.unique(groups[scored]).size)
    return out
