"""TAO-Amodal in the curated track format of the Diffusion-VAS evaluation.

The annotation file is a JSON list of object tracks::

    [{"track_id": 66, "category_id": 587, "video_id": 1324,
      "file_names": ["val/DATASET/vid1324/frame0000.jpg", ...],  # T paths under the frame root
      "rles": ["<counts>", ...],            # T modal masks: COCO compressed counts of size (height, width)
      "height": 720, "width": 1280,
      "amodal_bboxes": [[x, y, w, h], ...]}, # T amodal boxes: the only amodal ground truth
     ...]

plus a **track offsets** file ``{"<video_id>": first_track_id}``. Predictions
name a track by its id relative to its video, ``track_id - offset + 1`` (so
the first track of a video is ``"1"``), and a frame by its file basename:
``"(1324, 'frame0000.jpg', '3')"``.

Tracks of one video that share their frame list become one clip. There are no
amodal masks: :class:`~amodal.data.datasets.base.Annotation` carries the boxes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from amodal.data.datasets.base import Annotation, DatasetItem, RleStack, check_size, stack_objects, to_int
from amodal.errors import InputError
from amodal.util.fs import load_json
from amodal.evaluation.metrics import union_box

REQUIRED_KEYS = ("track_id", "video_id", "file_names", "rles", "height", "width", "amodal_bboxes")
OFFSETS_NAME = "track_ids_abs2rel.json"  # default track offsets file, beside the annotations
DEFAULT_FPS = 8.0  # the curated tracks carry no rate


def relative_track_id(track_id: int, first_track_id: int) -> str:
    """The id a prediction file uses for a track: 1 for the first track of its video."""
    return str(int(track_id) - int(first_track_id) + 1)


def _parse_track(raw: Any, position: int, path: Path, offsets: dict, offsets_path: Path) -> dict:
    where = f"{path}: entry [{position}]"
    if not isinstance(raw, dict):
        raise InputError(f"{where} is not a JSON object; expected a TAO-Amodal track with {', '.join(REQUIRED_KEYS)}")
    missing = [k for k in REQUIRED_KEYS if k not in raw]
    if missing:
        raise InputError(f"{where} lacks {', '.join(missing)}; every track needs {', '.join(REQUIRED_KEYS)}")
    files = raw["file_names"]
    if not isinstance(files, list) or not files or not all(isinstance(f, str) for f in files):
        raise InputError(f"{where}: 'file_names' must be a non-empty list of paths")
    t = len(files)
    for key in ("rles", "amodal_bboxes"):
        if not isinstance(raw[key], list) or len(raw[key]) != t:
            raise InputError(f"{where}: '{key}' must list one value per frame ({t} frames)")
    try:
        boxes = np.asarray(raw["amodal_bboxes"], dtype=np.float64)
    except (TypeError, ValueError):
        boxes = np.zeros(0)
    if boxes.shape != (t, 4) or not np.isfinite(boxes).all():
        raise InputError(f"{where}: 'amodal_bboxes' must be {t} finite [x, y, w, h] boxes")
    video = to_int(raw["video_id"], f"{where} 'video_id'")
    if str(video) not in offsets:
        raise InputError(
            f"{offsets_path}: no first track id for video {video} (needed by {where}); "
            "use the offsets file of these annotations"
        )
    track = to_int(raw["track_id"], f"{where} 'track_id'")
    return {
        "position": position,
        "video": video,
        "track": track,
        "relative": relative_track_id(track, to_int(offsets[str(video)], f"{offsets_path} '{video}'")),
        "category": to_int(raw.get("category_id", 0), f"{where} 'category_id'"),
        "files": tuple(files),
        "rles": raw["rles"],
        "size": (to_int(raw["height"], f"{where} 'height'"), to_int(raw["width"], f"{where} 'width'")),
        "boxes": boxes,
    }


class TaoAmodalIndex:
    """A curated TAO-Amodal annotation file with its track offsets, one clip per video frame list.

    Args:
        annotations: the annotation JSON.
        track_offsets: ``{video_id: first track id}`` JSON; default
            ``track_ids_abs2rel.json`` beside ``annotations``.
        frame_root: the folder ``file_names`` are relative to; ``None`` when
            only ground truth is needed.
    """

    kind = "tao-amodal"

    def __init__(
        self,
        annotations: str | os.PathLike,
        track_offsets: str | os.PathLike | None = None,
        frame_root: str | os.PathLike | None = None,
    ):
        self.path = Path(annotations)
        self.offsets_path = Path(track_offsets) if track_offsets is not None else self.path.parent / OFFSETS_NAME
        self.frame_root = None if frame_root is None else Path(frame_root)
        data = load_json(self.path, "TAO-Amodal annotation file")
        if not isinstance(data, list) or not data:
            raise InputError(f"{self.path}: expected a non-empty JSON list of TAO-Amodal tracks")
        if not self.offsets_path.is_file():
            raise InputError(f"{self.offsets_path}: track offsets file not found; pass --track-offsets")
        offsets = load_json(self.offsets_path, "track offsets file")
        if not isinstance(offsets, dict):
            raise InputError(f"{self.offsets_path}: expected a JSON object {{video_id: first track id}}")
        tracks = [_parse_track(raw, i, self.path, offsets, self.offsets_path) for i, raw in enumerate(data)]
        groups: dict[tuple, list[dict]] = {}
        for track in tracks:
            groups.setdefault((track["video"], track["files"]), []).append(track)
        self._groups = list(groups.values())
        for group in self._groups:
            ids = [t["track"] for t in group]
            if len(set(ids)) != len(ids):
                raise InputError(
                    f"{self.path}: track_id repeats in video {group[0]['video']} "
                    f"(entries {[t['position'] for t in group]})"
                )

    def __len__(self) -> int:
        return len(self._groups)

    def positions(self, index: int) -> tuple[int, ...]:
        """The places in the annotation list of clip ``index``'s tracks, one per object row."""
        return tuple(t["position"] for t in self._groups[index])

    def annotation(self, index: int, cropped: bool = False) -> Annotation:
        group = self._groups[index]
        first = group[0]
        size = first["size"]
        stacks = []
        for t in group:
            if t["size"] != size:
                raise InputError(
                    f"{self.path}: entry [{t['position']}] is {t['size']} but other tracks of its video are {size}"
                )
            rles = [{"size": list(size), "counts": c} for c in t["rles"]]
            stacks.append(RleStack.parse(rles, size, f"{self.path}: entry [{t['position']}] 'rles'"))
        window = None
        if cropped:
            box = union_box([stack.box() for stack in stacks])
            window = box if box is not None else (0, 1, 0, 1)
        return Annotation(
            video=str(first["video"]),
            modal_masks=stack_objects([stack.decode(window) for stack in stacks]),
            amodal_masks=None,
            amodal_boxes=np.stack([t["boxes"] for t in group]),
            object_ids=tuple(t["track"] for t in group),
            category_ids=tuple(t["category"] for t in group),
            object_keys=tuple(t["relative"] for t in group),
            frame_keys=tuple(Path(f).name for f in first["files"]),
            frame_names=tuple(Path(f).stem for f in first["files"]),
            fps=DEFAULT_FPS,
            source=f"{self.path}: entry [{first['position']}]",
            origin=(0, 0) if window is None else (window[0], window[2]),
            frame_size=None if window is None else size,
        )

    def item(self, index: int) -> DatasetItem:
        from amodal.data.io.frames import read_image

        if self.frame_root is None:
            raise InputError(
                f"{self.path}: no frame folder given; pass --data with the folder the file_names are relative to"
            )
        annotation = self.annotation(index)
        files = [self.frame_root / f for f in self._groups[index][0]["files"]]
        frames = np.stack([check_size(read_image(f), annotation.size, f) for f in files])
        return DatasetItem(annotation.to_clip(frames), annotation)
