"""Videos on disk read one frame at a time: the streaming counterpart of :func:`amodal.data.io.loader.load_clip`.

A :class:`VideoSource` checks everything it can up front (paths, counts, sizes
of the first files, object ids) and then yields per-frame arrays, so a
1,000-frame video costs the memory of one frame. Per-frame files are still
checked as they are read: a corrupt or mis-sized file raises ``InputError``
naming it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from amodal.errors import InputError
from amodal.data.io.frames import (
    IMAGE_SUFFIXES,
    iter_frames,
    list_images,
    natural_key,
    probe_frames,
)
from amodal.data.io.frames import frame_names as list_frame_names
from amodal.data.io.loader import DEFAULT_FPS, _read_depth_file
from amodal.data.io.masks import (
    MASK_MODES,
    match_to_frames,
    read_index_mask,
    read_luminance_mask,
    read_rle_json,
)
from amodal.data.io.masks import _select_ids as select_ids


@dataclass(frozen=True)
class VideoSource:
    """Frames, modal masks and optional depth of one video, read lazily.

    Attributes:
        frames: a folder of images or a video file.
        frame_names: one name per frame (file stems, or ``frame_00000`` ...).
        size: ``(H, W)`` of the frames.
        fps: frame rate (the video's own, else 8).
        object_ids: the ids of the objects whose masks are read, in row order.
        category_ids: one category per object (0 when the source has none).
    """

    frames: Path
    frame_names: tuple[str, ...]
    size: tuple[int, int]
    fps: float
    object_ids: tuple[int, ...]
    category_ids: tuple[int, ...]
    _mask_plan: tuple  # how to read the masks of frame t (private)
    _depth_files: tuple[Path, ...] | None  # one depth file per frame, or None

    @property
    def num_frames(self) -> int:
        return len(self.frame_names)

    def iter_frames(self) -> Iterator[np.ndarray]:
        """Yield ``(H, W, 3) uint8`` RGB frames."""
        return iter_frames(self.frames)

    def iter_modal(self) -> Iterator[np.ndarray]:
        """Yield ``(K, H, W) bool`` modal masks, one array per frame."""
        kind = self._mask_plan[0]
        if kind == "luminance":
            for path in self._mask_plan[1]:
                yield read_luminance_mask(path, self.size)[None]
        elif kind == "index":
            ids = np.asarray(self.object_ids)[:, None, None]
            for path in self._mask_plan[1]:
                yield read_index_mask(path, self.size)[None] == ids
        elif kind == "subfolders":
            for paths in zip(*self._mask_plan[1]):
                yield np.stack([read_luminance_mask(p, self.size) for p in paths])
        else:  # decoded RLE JSON: (K, T, H, W) held in memory, one bit per pixel
            packed, shape = self._mask_plan[1], self._mask_plan[2]
            for t in range(self.num_frames):
                yield np.unpackbits(packed[:, t], axis=-1, count=shape[-1]).astype(bool)

    def iter_depth(self) -> Iterator[np.ndarray] | None:
        """Yield ``(H, W) float32`` inverse depth per frame, or ``None`` when the source has no depth."""
        if self._depth_files is None:
            return None
        return self._iter_depth()

    def _iter_depth(self) -> Iterator[np.ndarray]:
        for path in self._depth_files:
            depth = _read_depth_file(path)
            if depth.shape != self.size:
                raise InputError(
                    f"{path}: depth is {depth.shape[1]}x{depth.shape[0]} but the frames are "
                    f"{self.size[1]}x{self.size[0]}; resize the depth maps to the frames"
                )
            if not np.isfinite(depth).all():
                raise InputError(f"{path}: depth holds NaN or infinite values; fill or drop them")
            yield depth


def _mask_files(folder: Path, names: Sequence[str]) -> list[Path]:
    files = list_images(folder, "masks")
    order = match_to_frames(names, [f.stem for f in files], str(folder))
    return [files[i] for i in order]


def open_video(
    frames: str | os.PathLike,
    masks: str | os.PathLike,
    mask_mode: str = "luminance",
    object_ids: Sequence[int] | None = None,
    depth: str | os.PathLike | None = None,
    fps: float | None = None,
) -> VideoSource:
    """Open a video (a frame folder or a video file) with its modal masks for streaming.

    Args:
        frames: a folder of images or a video file.
        masks: a folder of mask images (``mask_mode`` luminance or index, or one
            numbered subfolder per object) or a COCO RLE JSON file (see ``docs/io.md``).
        mask_mode: ``"luminance"`` (one object: luminance > 128) or ``"index"``
            (pixel value = object id, 0 = background).
        object_ids: keep only these objects, in this order.
        depth: a folder of per-frame inverse-depth maps (PNG or ``.npy``), or ``None``.
        fps: frame rate; ``None`` takes the video's own rate, or 8 for a folder.
    """
    frames, masks = Path(frames), Path(masks)
    if mask_mode not in MASK_MODES:
        raise InputError(f"--mask-mode must be one of {MASK_MODES}, got {mask_mode!r}")
    info = probe_frames(frames)  # raises InputError naming the path when missing or empty
    names = list_frame_names(frames)
    size = (info.height, info.width)
    if not masks.exists():
        raise InputError(f"{masks}: masks not found; pass a folder of mask images or an RLE JSON file")
    wanted = None if object_ids is None else tuple(int(i) for i in object_ids)
    categories: tuple[int, ...] | None = None

    if masks.is_file() and masks.suffix.lower() in IMAGE_SUFFIXES:
        raise InputError(
            f"{masks}: is one image; masks are a folder of mask images (one per frame) or a COCO RLE JSON file"
        )
    if masks.is_file():
        found = read_rle_json(masks, names, size, wanted, frames if frames.is_dir() else None, require_visible=False)
        if found.modal is None:
            raise InputError(f"{masks}: holds no modal masks (only amodal ones); pass the visible masks")
        packed = np.packbits(found.modal, axis=-1)
        plan = ("rle", packed, found.modal.shape)
        ids, categories = found.object_ids, found.category_ids
    else:
        subfolders = sorted(
            (p for p in masks.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: natural_key(p.name)
        )
        has_images = any(p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES for p in masks.iterdir())
        if subfolders and not has_images:
            by_id = {int(p.name): p for p in subfolders}
            ids = select_ids(list(by_id), wanted, str(masks))
            plan = ("subfolders", tuple(tuple(_mask_files(by_id[i], names)) for i in ids))
            read_luminance_mask(plan[1][0][0], size)
        elif mask_mode == "luminance":
            if wanted is not None and wanted != (1,):
                raise InputError(
                    f"{masks}: luminance masks hold one object (id 1), asked for ids {list(wanted)}; "
                    "use --mask-mode index for label images with several objects"
                )
            files = _mask_files(masks, names)
            read_luminance_mask(files[0], size)  # fail early on the size
            plan, ids = ("luminance", tuple(files)), (1,)
        else:
            files = _mask_files(masks, names)
            present: set[int] = set()
            for path in files:  # one pass to find the ids; masks are small next to frames
                present.update(int(v) for v in np.unique(read_index_mask(path, size)) if v != 0)
            if not present:
                raise InputError(f"{masks}: every label image is 0 (background); index mode needs object ids > 0")
            ids = select_ids(sorted(present), wanted, str(masks))
            plan = ("index", tuple(files))

    depth_files = None
    if depth is not None:
        depth = Path(depth)
        if not depth.is_dir():
            raise InputError(f"{depth}: --depth takes a folder of per-frame PNG or .npy inverse-depth maps")
        files = sorted((p for p in depth.iterdir() if p.suffix.lower() == ".npy"), key=lambda p: natural_key(p.name))
        files = files or list_images(depth, "depth maps")
        order = match_to_frames(names, [f.stem for f in files], str(depth), "depth maps")
        depth_files = tuple(files[i] for i in order)

    return VideoSource(
        frames=frames,
        frame_names=tuple(names),
        size=size,
        fps=float(fps) if fps is not None else (info.fps or DEFAULT_FPS),
        object_ids=tuple(ids),
        category_ids=tuple(categories) if categories is not None else (0,) * len(ids),
        _mask_plan=plan,
        _depth_files=depth_files,
    )

