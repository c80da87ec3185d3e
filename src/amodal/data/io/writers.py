"""Writers for masks, RLE JSON, frame folders, GIFs and videos.

Every writer is atomic: it writes to a temporary sibling and renames it into
place once complete (see :mod:`amodal.util.fs`), so an error or an interrupt
midway leaves the previous output or nothing, never half a file. Frame writers
take iterators of ``(H, W, 3) uint8`` RGB frames and hold one frame at a time.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from amodal.errors import InputError
from amodal.util.fs import atomic_dir, atomic_path, write_json
from amodal.data.io import rle as rle_codec
from amodal.data.io.layout import check_frame
from amodal.data.io.video import WRITE_SUFFIXES as VIDEO_WRITE_SUFFIXES

GIF_SUFFIXES = (".gif",)


def _check_masks(masks: np.ndarray, name: str, object_ids: Sequence[int], frame_names: Sequence[str]) -> np.ndarray:
    masks = np.asarray(masks)
    if masks.ndim != 4 or masks.dtype != np.bool_:
        raise InputError(f"{name} must be a (K, T, H, W) bool array, got {masks.dtype} {masks.shape}")
    if masks.shape[0] != len(object_ids):
        raise InputError(f"{name} has {masks.shape[0]} objects but {len(object_ids)} object ids were given")
    if masks.shape[1] != len(frame_names):
        raise InputError(f"{name} has {masks.shape[1]} frames but {len(frame_names)} frame names were given")
    return masks


def write_mask_pngs(
    out: str | os.PathLike,
    masks: np.ndarray,
    object_ids: Sequence[int],
    frame_names: Sequence[str],
) -> list[Path]:
    """Write ``<out>/<object_id>/<frame_name>.png`` masks, 8-bit gray, 0 = background, 255 = object.

    Args:
        out: the output folder; only the subfolders of these objects are replaced.
        masks: ``(K, T, H, W) bool``.
        object_ids: ``K`` ids, the subfolder names.
        frame_names: ``T`` names, the file stems.

    Returns the ``K`` object folders. Each is written whole into a temporary
    folder and moved into place, so a failure leaves no partial object folder.
    ``amodal.data.io.masks.read_mask_folder`` reads this layout back.
    """
    from PIL import Image

    masks = _check_masks(masks, "masks", object_ids, frame_names)
    folders = []
    for k, oid in enumerate(object_ids):
        folder = Path(out) / str(int(oid))
        with atomic_dir(folder) as tmp:
            for t, name in enumerate(frame_names):
                Image.fromarray(masks[k, t].astype(np.uint8) * 255).save(tmp / f"{name}.png")
        folders.append(folder)
    return folders


def rle_json_dict(
    frame_names: Sequence[str],
    object_ids: Sequence[int],
    modal: np.ndarray | None = None,
    amodal: np.ndarray | None = None,
    category_ids: Sequence[int] | None = None,
) -> dict:
    """The per-object RLE JSON document (see :func:`amodal.data.io.masks.read_rle_json`) as a dict.

    ``modal`` and ``amodal`` are ``(K, T, H, W) bool`` (at least one); frames
    where an object's mask is empty are written as ``null``.
    """
    if modal is None and amodal is None:
        raise InputError("rle_json_dict needs modal or amodal masks")
    arrays = {
        key: _check_masks(m, key, object_ids, frame_names)
        for key, m in (("modal", modal), ("amodal", amodal))
        if m is not None
    }
    shapes = {a.shape for a in arrays.values()}
    if len(shapes) != 1:
        raise InputError(f"modal and amodal masks differ in shape: {sorted(shapes)}")
    h, w = next(iter(shapes))[2:]
    categories = list(category_ids) if category_ids is not None else [0] * len(object_ids)
    if len(categories) != len(object_ids):
        raise InputError(f"{len(categories)} category ids for {len(object_ids)} objects")
    objects = []
    for k, oid in enumerate(object_ids):
        obj = {"id": int(oid), "category_id": int(categories[k])}
        for key, masks in arrays.items():
            obj[key] = [rle_codec.encode(m) if m.any() else None for m in masks[k]]
        objects.append(obj)
    return {"size": [int(h), int(w)], "frames": [str(n) for n in frame_names], "objects": objects}


def write_rle_json(
    path: str | os.PathLike,
    frame_names: Sequence[str],
    object_ids: Sequence[int],
    modal: np.ndarray | None = None,
    amodal: np.ndarray | None = None,
    category_ids: Sequence[int] | None = None,
) -> Path:
    """Write masks as per-object COCO RLE JSON (``modal`` / ``amodal`` ``(K, T, H, W) bool``); returns ``path``."""
    document = rle_json_dict(frame_names, object_ids, modal, amodal, category_ids)
    write_json(path, document, indent=None)
    return Path(path)


def write_frame_pngs(out: str | os.PathLike, frames: Iterable[np.ndarray], names: Sequence[str] | None = None) -> int:
    """Write ``(H, W, 3) uint8`` frames as ``<out>/<name>.png`` (default names ``frame_00000`` ...).

    The folder is built aside and replaces ``out`` only when every frame is
    written. Returns the number of frames.
    """
    from PIL import Image

    out = Path(out)
    count = 0
    size = None
    with atomic_dir(out) as tmp:
        for count, frame in enumerate(frames, start=1):
            frame = check_frame(frame, count - 1, size, out)
            size = frame.shape[:2]
            if names is not None and count > len(names):
                raise InputError(f"{out}: more frames than the {len(names)} names given")
            name = names[count - 1] if names is not None else f"frame_{count - 1:05d}"
            Image.fromarray(frame).save(tmp / f"{name}.png")
        if count == 0:
            raise InputError(f"{out}: no frames to write")
    return count


def write_gif(path: str | os.PathLike, frames: Iterable[np.ndarray], fps: float, *, loop: bool = True) -> int:
    """Write ``(H, W, 3) uint8`` RGB frames as an animated GIF, one frame at a time.

    Each frame gets its own 256-colour palette (Pillow's fast octree
    quantizer, no dithering: flat overlay colours stay flat). GIF stores delays
    in hundredths of a second, so the rate is rounded to that. Returns the
    number of frames written.
    """
    from PIL import GifImagePlugin, Image

    path = Path(path)
    if fps <= 0:
        raise InputError(f"{path}: fps must be positive, got {fps}")
    duration_ms = 10 * max(1, round(100 / fps))
    count = 0
    size = None
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        # Pillow's save_all keeps every frame until the end; its frame-level
        # helpers let each frame be encoded and dropped as it arrives.
        for frame in frames:
            frame = check_frame(frame, count, size, path)
            size = frame.shape[:2]
            image = Image.fromarray(frame).quantize(colors=256, method=Image.Quantize.FASTOCTREE)
            if count == 0:
                header, _ = GifImagePlugin.getheader(image, info={"loop": 0} if loop else {})
                f.write(b"".join(header))
            for chunk in GifImagePlugin.getdata(image, duration=duration_ms, include_color_table=True):
                f.write(chunk)
            count += 1
        if count == 0:
            raise InputError(f"{path}: no frames to write")
        f.write(b";")  # GIF trailer
    return count


def write_animation(path: str | os.PathLike, frames: Iterable[np.ndarray], fps: float) -> int:
    """Write frames to a ``.gif`` (Pillow) or a video (``.mp4``, ``.mov``, ``.mkv``, ``.avi``, PyAV) by suffix.

    Returns the number of frames written.
    """
    if check_animation_path(path) in GIF_SUFFIXES:
        return write_gif(path, frames, fps)
    from amodal.data.io.video import write_video

    return write_video(path, frames, fps)


def check_animation_path(path: str | os.PathLike) -> str:
    """The lower-case suffix of ``path`` if :func:`write_animation` can write it, else ``InputError``."""
    suffix = Path(path).suffix.lower()
    if suffix not in GIF_SUFFIXES + VIDEO_WRITE_SUFFIXES:
        known = ", ".join(GIF_SUFFIXES + VIDEO_WRITE_SUFFIXES)
        raise InputError(f"{path}: cannot write '{suffix}' files; use one of {known}")
    return suffix
