"""Prediction files in the formats of the reference evaluation, read and written.

- **SAIL-VOS** (and our synthetic sets): ``{"(image_id, obj_id)": {"diffvas_res_rle": RLE}}``,
  one COCO RLE per object and frame, at any resolution (the scorer resizes to
  the ground truth as the reference does). Written at the ground-truth size.
- **TAO-Amodal**: ``{"(video_id, 'frame basename', 'relative track id')": {"diffvas_res_bbox": [x, y, w, h]}}``.
- **MOVi** (no reference file exists; same style): ``{"('video', frame, object)": {"diffvas_res_rle": RLE}}``.

Keys are Python ``str()`` of the tuples, exactly as the reference writes them.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from amodal.data.datasets.base import Annotation, decode_rles, stack_objects
from amodal.errors import InputError
from amodal.util.fs import load_json

MASK_FIELD = "diffvas_res_rle"  # the reference's key for a predicted amodal mask
BOX_FIELD = "diffvas_res_bbox"  # the reference's key for a predicted amodal box


def prediction_key(kind: str, annotation: Annotation, obj: int, frame: int) -> str:
    """The reference key of object row ``obj`` in frame ``frame`` of ``annotation``."""
    frame_key, object_key = annotation.frame_keys[frame], annotation.object_keys[obj]
    if kind == "tao-amodal":
        return str((int(annotation.video), str(frame_key), str(object_key)))
    if kind == "movi":
        return str((annotation.video, int(frame_key), int(object_key)))
    return str((int(frame_key), int(object_key)))


def mask_entries(kind: str, annotation: Annotation, masks: np.ndarray, frames: range) -> dict:
    """Reference-format entries of predicted masks ``(K, T, H, W) bool`` for the frames ``frames``."""
    from amodal.data.io import rle

    return {
        prediction_key(kind, annotation, k, f): {MASK_FIELD: rle.encode(masks[k, f])}
        for k in range(masks.shape[0])
        for f in frames
    }


def box_entries(annotation: Annotation, boxes: np.ndarray, frames: range) -> dict:
    """TAO-Amodal entries of predicted boxes ``(K, T, 4)`` (``nan`` rows, no box, become zero-area boxes)."""
    boxes = np.nan_to_num(np.asarray(boxes, np.float64), nan=0.0)
    return {
        prediction_key("tao-amodal", annotation, k, f): {BOX_FIELD: [float(v) for v in boxes[k, f]]}
        for k in range(boxes.shape[0])
        for f in frames
    }


def read_predictions(path: str | os.PathLike) -> dict:
    """A reference-format prediction file as a dict; ``InputError`` when it is not a JSON object."""
    path = Path(path)
    data = load_json(path, "prediction file")
    if not isinstance(data, dict) or not data:
        raise InputError(
            f'{path}: expected a non-empty JSON object mapping reference keys such as "(image_id, obj_id)" to '
            f'{{"{MASK_FIELD}": RLE}} or {{"{BOX_FIELD}": [x, y, w, h]}}'
        )
    return data


def _entry(predictions: dict, key: str, field: str, path: Path, annotation: Annotation):
    if key not in predictions:
        raise InputError(
            f"{path}: no prediction for {key} ({annotation.source}); every annotated object and frame needs one"
        )
    entry = predictions[key]
    if not isinstance(entry, dict) or field not in entry:
        raise InputError(f'{path}: entry {key} must be an object with a "{field}" field')
    return entry[field]


def predicted_masks(kind: str, predictions: dict, path: str | os.PathLike, annotation: Annotation) -> np.ndarray:
    """The masks a prediction file gives for ``annotation``: ``(1, K, T, h, w) bool``.

    All frames of one object must share one size (any size: the SAIL-VOS
    scorer resizes to the ground truth). Missing keys, malformed or corrupt
    RLEs raise ``InputError`` naming the first bad key.
    """
    from amodal.data.io import rle

    path = Path(path)
    objects, size = [], None
    for k in range(len(annotation.object_ids)):
        keys = [prediction_key(kind, annotation, k, f) for f in range(annotation.num_frames)]
        rles = [_entry(predictions, key, MASK_FIELD, path, annotation) for key in keys]
        for key, entry in zip(keys, rles):
            if entry is not None:  # sizes and types first: a few characters of counts can claim gigabytes
                rle.check(entry, f"{path}: {key}")
        masks = decode_rles(rles, size, f"{path}:", names=keys)
        if size is not None and masks.shape[1:] != size:
            raise InputError(
                f"{path}: {keys[0]} is {masks.shape[2]}x{masks.shape[1]} "
                f"but other objects of the clip are {size[1]}x{size[0]}"
            )
        size = masks.shape[1:]
        objects.append(masks)
    return stack_objects(objects)[None]


def predicted_boxes(predictions: dict, path: str | os.PathLike, annotation: Annotation) -> np.ndarray:
    """The boxes a TAO-Amodal prediction file gives for ``annotation``: ``(1, K, T, 4) float64``."""
    path = Path(path)
    out = np.zeros((1, len(annotation.object_ids), annotation.num_frames, 4))
    for k in range(out.shape[1]):
        for f in range(out.shape[2]):
            key = prediction_key("tao-amodal", annotation, k, f)
            box = _entry(predictions, key, BOX_FIELD, path, annotation)
            if (
                not isinstance(box, list)
                or len(box) != 4
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in box)
            ):
                raise InputError(
                    f'{path}: entry {key} "{BOX_FIELD}" must be 4 finite numbers [x, y, w, h], got {box!r}'
                )
            out[0, k, f] = box
    return out
