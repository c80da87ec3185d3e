"""SAIL-VOS in the curated clip format of the Diffusion-VAS evaluation (and our synthetic sets).

The annotation file is a JSON list of one-object clips::

    [{"obj_id": 24, "category_id": 4,
      "image_ids": [100000, ...],                          # T ids, keys of the prediction format
      "image_file_names": ["video000/images/000000.png", ...],  # T paths under the frame root
      "segmentation": [RLE, ...],                          # T amodal masks (COCO RLE, null = empty)
      "visible_mask": [RLE, ...],                          # T modal masks
      "bbox": [[x, y, w, h], ...]},                        # T amodal boxes (optional; --amodal-boxes gt)
     ...]

Our synthetic sets add ``video_id``, ``height``, ``width``, ``fps``,
``depth_file_names`` (16-bit PNGs of camera z-depth in millimetres; inverse
depth is ``1000 / value``, 0 where the value is 0) and
``amodal_rgb_file_names`` (the object unoccluded, on white).

**One clip per video.** Entries that share their frame list (same
``image_file_names`` and ``image_ids``) are the objects of one video window and
become one :class:`amodal.Clip` with one row per entry, in file order. The
video is named by ``video_id`` when present, else by the folder of its first
frame (``video000/images``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from amodal.data.datasets.base import Annotation, DatasetItem, RleStack, check_size, stack_objects, to_int
from amodal.errors import InputError
from amodal.util.fs import load_json
from amodal.evaluation.metrics import union_box

REQUIRED_KEYS = ("obj_id", "image_ids", "image_file_names", "segmentation", "visible_mask")
DEPTH_SCALE_MM = 1000.0  # synthetic depth PNGs hold z in millimetres; inverse depth = 1000 / value (1 / metres)
DEFAULT_FPS = 8.0  # SAIL-VOS clips carry no rate; 8 fps is what the video models were conditioned on


@dataclass(frozen=True)
class _Entry:
    """One object track of the annotation file, validated but not decoded."""

    position: int  # index in the annotation list, for error messages
    obj_id: int
    category_id: int
    image_ids: tuple[int, ...]
    files: tuple[str, ...]
    amodal: list
    modal: list
    video: str
    size: tuple[int, int] | None
    fps: float
    depth_files: tuple[str, ...] | None
    amodal_rgb_files: tuple[str, ...] | None
    boxes: np.ndarray | None = None  # (T, 4) amodal [x, y, w, h] from "bbox", nan for null; None without one


def _parse_entry(raw: Any, position: int, path: Path) -> _Entry:
    where = f"{path}: entry [{position}]"
    if not isinstance(raw, dict):
        raise InputError(f"{where} is not a JSON object; expected a SAIL-VOS clip with {', '.join(REQUIRED_KEYS)}")
    missing = [k for k in REQUIRED_KEYS if k not in raw]
    if missing:
        raise InputError(f"{where} lacks {', '.join(missing)}; every clip needs {', '.join(REQUIRED_KEYS)}")
    files = raw["image_file_names"]
    if not isinstance(files, list) or not files or not all(isinstance(f, str) for f in files):
        raise InputError(f"{where}: 'image_file_names' must be a non-empty list of paths")
    t = len(files)
    for key in ("image_ids", "segmentation", "visible_mask", "depth_file_names", "amodal_rgb_file_names"):
        if key in raw and (not isinstance(raw[key], list) or len(raw[key]) != t):
            raise InputError(f"{where}: '{key}' must list one value per frame ({t} frames)")
    size = None
    if "height" in raw or "width" in raw:
        size = (to_int(raw.get("height"), f"{where} 'height'"), to_int(raw.get("width"), f"{where} 'width'"))
    video = raw.get("video_id")
    boxes = None
    if raw.get("bbox") is not None:
        bbox = raw["bbox"]
        try:
            boxes = np.array([[np.nan] * 4 if b is None else b for b in bbox], dtype=np.float64) if isinstance(bbox, list) else None
        except (TypeError, ValueError):
            boxes = None
        if boxes is None or boxes.shape != (t, 4) or np.isinf(boxes).any() or (boxes[:, 2:] < 0).any():
            raise InputError(f"{where}: 'bbox' must list one [x, y, w, h] (w, h >= 0) or null per frame ({t} frames)")
    return _Entry(
        position=position,
        obj_id=to_int(raw["obj_id"], f"{where} 'obj_id'"),
        category_id=to_int(raw.get("category_id", 0), f"{where} 'category_id'"),
        image_ids=tuple(to_int(i, f"{where} 'image_ids'") for i in raw["image_ids"]),
        files=tuple(files),
        amodal=raw["segmentation"],
        modal=raw["visible_mask"],
        video=str(video) if video is not None else str(Path(files[0]).parent),
        size=size,
        fps=float(raw.get("fps", DEFAULT_FPS)),
        depth_files=tuple(raw["depth_file_names"]) if "depth_file_names" in raw else None,
        amodal_rgb_files=tuple(raw["amodal_rgb_file_names"]) if "amodal_rgb_file_names" in raw else None,
        boxes=boxes,
    )


def read_entries(path: str | os.PathLike) -> list[_Entry]:
    """Read and validate a SAIL-VOS-format annotation file (nothing decoded)."""
    path = Path(path)
    data = load_json(path, "SAIL-VOS annotation file")
    if not isinstance(data, list):
        raise InputError(f"{path}: expected a JSON list of SAIL-VOS clips, got a {type(data).__name__}")
    if not data:
        raise InputError(f"{path}: the annotation list is empty")
    return [_parse_entry(raw, i, path) for i, raw in enumerate(data)]


def _boxes(group: list[_Entry], window) -> np.ndarray | None:
    """``(K, T, 4)`` amodal boxes of a clip's entries from their ``bbox`` (``nan`` rows for entries without), moved
    into ``window``; ``None`` when no entry has one."""
    if all(e.boxes is None for e in group):
        return None
    t = len(group[0].files)
    boxes = np.stack([e.boxes if e.boxes is not None else np.full((t, 4), np.nan) for e in group])
    if window is not None:
        boxes = boxes - np.array([window[2], window[0], 0, 0], dtype=np.float64)
    return boxes


class SailvosIndex:
    """A SAIL-VOS-format annotation file (curated SAIL-VOS or our synthetic sets), one clip per video.

    Args:
        annotations: the annotation JSON.
        frame_root: the folder ``image_file_names`` (and depth, amodal RGB
            names) are relative to; ``None`` when only ground truth is needed.
        kind: ``"sailvos"`` or ``"synthetic"`` (only reported).
    """

    def __init__(
        self, annotations: str | os.PathLike, frame_root: str | os.PathLike | None = None, kind: str = "sailvos"
    ):
        self.kind = kind
        self.path = Path(annotations)
        self.frame_root = None if frame_root is None else Path(frame_root)
        entries = read_entries(self.path)
        groups: dict[tuple, list[_Entry]] = {}
        for e in entries:
            groups.setdefault((e.video, e.files, e.image_ids), []).append(e)
        self._groups = list(groups.values())
        for group in self._groups:
            ids = [e.obj_id for e in group]
            if len(set(ids)) != len(ids):
                first = group[0]
                raise InputError(
                    f"{self.path}: obj_id repeats among the clips of video {first.video} "
                    f"(entries {[e.position for e in group]}); each object of a video needs its own obj_id"
                )

    def __len__(self) -> int:
        return len(self._groups)

    def positions(self, index: int) -> tuple[int, ...]:
        """The places in the annotation list of clip ``index``'s entries, one per object row."""
        return tuple(e.position for e in self._groups[index])

    def annotation(self, index: int, cropped: bool = False) -> Annotation:
        group = self._groups[index]
        first = group[0]
        size = first.size
        stacks = []  # (amodal, modal) per object, validated
        for e in group:
            at = f"{self.path}: entry [{e.position}]"
            amodal = RleStack.parse(e.amodal, size, f"{at} 'segmentation'")
            size = amodal.size
            stacks.append((amodal, RleStack.parse(e.modal, size, f"{at} 'visible_mask'")))
        window = None
        if cropped:
            box = union_box([stack.box() for pair in stacks for stack in pair])
            window = box if box is not None else (0, 1, 0, 1)
        return Annotation(
            video=first.video,
            modal_masks=stack_objects([modal.decode(window) for _, modal in stacks]),
            amodal_masks=stack_objects([amodal.decode(window) for amodal, _ in stacks]),
            amodal_boxes=_boxes(group, window),
            object_ids=tuple(e.obj_id for e in group),
            category_ids=tuple(e.category_id for e in group),
            object_keys=tuple(e.obj_id for e in group),
            frame_keys=first.image_ids,
            frame_names=tuple(Path(f).stem for f in first.files),
            fps=first.fps,
            source=f"{self.path}: entry [{first.position}]",
            origin=(0, 0) if window is None else (window[0], window[2]),
            frame_size=None if window is None else size,
        )

    def item(self, index: int) -> DatasetItem:
        from amodal.data.io.frames import read_image

        if self.frame_root is None:
            raise InputError(
                f"{self.path}: no frame folder given; pass --data with the folder the image_file_names are relative to"
            )
        annotation = self.annotation(index)
        group = self._groups[index]
        size = annotation.size
        frames = np.stack([check_size(read_image(self._file(f)), size, self._file(f)) for f in group[0].files])
        depth = None
        if group[0].depth_files is not None:
            depth = np.stack([self._read_depth(f, size) for f in group[0].depth_files])
        amodal_rgb = None
        if all(e.amodal_rgb_files is not None for e in group):
            amodal_rgb = np.stack(
                [
                    np.stack([check_size(read_image(self._file(f)), size, self._file(f)) for f in e.amodal_rgb_files])
                    for e in group
                ]
            )
        return DatasetItem(annotation.to_clip(frames, depth=depth, amodal_rgb=amodal_rgb), annotation)

    def _file(self, name: str) -> Path:
        return self.frame_root / name

    def _read_depth(self, name: str, size: tuple[int, int]) -> np.ndarray:
        from amodal.data.io.frames import open_image

        path = self._file(name)
        image = open_image(path)
        z = np.asarray(image)
        if z.dtype != np.uint16 and not (z.dtype == np.int32 and image.mode == "I"):
            raise InputError(f"{path}: depth must be a 16-bit PNG of z in millimetres, got mode {image.mode}")
        check_size(z, size, path)
        z = z.astype(np.float32)
        with np.errstate(divide="ignore"):
            return np.where(z > 0, DEPTH_SCALE_MM / np.maximum(z, 1), 0).astype(np.float32)
