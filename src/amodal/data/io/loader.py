"""``load_clip``: the front door from files on disk to an :class:`amodal.Clip`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from amodal.clip import Clip
from amodal.errors import InputError
from amodal.data.io.frames import frame_names as list_frame_names
from amodal.data.io.frames import (
    VIDEO_SUFFIXES,
    is_video_file,
    list_images,
    natural_key,
    open_image,
    probe_frames,
    read_frames,
)
from amodal.data.io.masks import ObjectMasks, match_to_frames, read_mask_folder, read_rle_json

DEFAULT_FPS = 8.0  # a folder has no rate; 8 fps is what the video diffusion models were conditioned on


def read_depth(
    path: str | os.PathLike, frame_names: Sequence[str], size: tuple[int, int] | None = None
) -> np.ndarray:
    """Read per-frame inverse depth as ``(T, H, W) float32``: larger values are nearer.

    ``path`` is a folder of single-channel 8-bit or 16-bit PNGs or of ``.npy``
    files (one ``(H, W)`` array per frame, matched to ``frame_names`` like
    masks), or one ``.npy`` file holding a ``(T, H, W)`` array. Values are kept
    as stored (no rescaling: the models normalise depth per clip); they must be
    finite. Metric depth (larger = farther) must be inverted before use.
    """
    path = Path(path)
    if path.is_file() and path.suffix.lower() == ".npy":
        depth = _load_npy(path)
        if depth.ndim != 3 or depth.shape[0] != len(frame_names):
            raise InputError(
                f"{path}: depth must be a (T, H, W) array with T = {len(frame_names)} frames, got shape {depth.shape}"
            )
        layers = [(path, depth)]
    elif path.is_dir():
        files = sorted((p for p in path.iterdir() if p.suffix.lower() == ".npy"), key=lambda p: natural_key(p.name))
        files = files or list_images(path, "depth maps")
        order = match_to_frames(frame_names, [f.stem for f in files], str(path), "depth maps")
        layers = [(files[i], _read_depth_file(files[i])[None]) for i in order]
    else:
        raise InputError(f"{path}: depth not found; pass a folder of PNG or .npy depth maps, or a (T, H, W) .npy file")
    for where, layer in layers:
        if size is not None and layer.shape[1:] != tuple(size):
            raise InputError(
                f"{where}: depth is {layer.shape[2]}x{layer.shape[1]} but the frames are {size[1]}x{size[0]} "
                "(width x height); resize the depth maps to the frames"
            )
        if not np.isfinite(layer).all():
            raise InputError(f"{where}: depth holds NaN or infinite values; fill or drop them")
    return np.concatenate([layer for _, layer in layers]).astype(np.float32, copy=False)


def _load_npy(path: Path) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: cannot read this .npy file ({e})") from None
    if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise InputError(f"{path}: depth must be a real numeric array, got {array.dtype}")
    return array.astype(np.float32)


def _read_depth_file(path: Path) -> np.ndarray:
    if path.suffix.lower() == ".npy":
        depth = _load_npy(path)
        if depth.ndim != 2:
            raise InputError(f"{path}: a per-frame depth file must be (H, W), got shape {depth.shape}")
        return depth
    image = open_image(path)
    if image.mode in ("L", "I", "F") or image.mode.startswith("I;16"):
        return np.asarray(image).astype(np.float32)
    if image.mode == "RGB":
        rgb = np.asarray(image)
        if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]):
            return rgb[..., 0].astype(np.float32)
    raise InputError(
        f"{path}: depth PNGs must be single-channel 8-bit or 16-bit gray, got {image.mode} "
        "(a colour-mapped depth picture cannot be read back as depth)"
    )


def load_clip(
    frames: str | os.PathLike | None = None,
    video: str | os.PathLike | None = None,
    masks: str | os.PathLike | None = None,
    rle: str | os.PathLike | None = None,
    mask_mode: str = "luminance",
    object_ids: Sequence[int] | None = None,
    depth: str | os.PathLike | None = None,
    fps: float | None = None,
    amodal: str | os.PathLike | None = None,
) -> Clip:
    """Load frames, modal masks and optional depth / amodal ground truth into a :class:`Clip`.

    Args:
        frames: a folder of ``.png`` / ``.jpg`` / ``.jpeg`` / ``.bmp`` frames
            (natural order), or ``None`` when ``video`` is given.
        video: a video file (``.mp4``, ``.mov``, ``.avi``, ``.mkv``, ``.webm``),
            or ``None`` when ``frames`` is given.
        masks: a folder of modal masks (see ``mask_mode``), or ``None`` when
            ``rle`` is given.
        rle: a COCO RLE JSON file, per-object or SAIL-VOS format (see
            :func:`amodal.data.io.masks.read_rle_json`); a SAIL-VOS file also gives
            the amodal ground truth.
        mask_mode: ``"luminance"``: one object where luminance > 128;
            ``"index"``: the palette index / gray value is the object id.
        object_ids: keep only these objects, in this order.
        depth: inverse depth (larger = nearer): a folder of 8/16-bit PNGs or
            ``.npy`` files, or one ``(T, H, W)`` ``.npy`` file.
        fps: frame rate; ``None`` takes the video's own rate, or 8 for a folder.
        amodal: amodal ground-truth masks, a folder (read with ``mask_mode``)
            or an RLE JSON (its ``amodal`` masks, or its only masks), matched
            to the same objects.

    Returns:
        A ``Clip`` with ``frames (T, H, W, 3) uint8``, ``modal_masks
        (K, T, H, W) bool``, and ``depth (T, H, W) float32`` /
        ``amodal_masks (K, T, H, W) bool`` when given.
    """
    if (frames is None) == (video is None):
        raise InputError("give exactly one of frames= (a folder of images) or video= (a video file)")
    if (masks is None) == (rle is None):
        raise InputError("give exactly one of masks= (a folder of mask images) or rle= (a COCO RLE JSON file)")
    source = Path(frames if frames is not None else video)
    if frames is not None and source.is_file():
        raise InputError(f"{source}: frames= takes a folder of images; pass a video file as video=")
    if video is not None and not (source.is_file() and is_video_file(source)):
        raise InputError(f"{source}: video= takes a video file ({', '.join(VIDEO_SUFFIXES)})")
    for given, what in ((masks, "masks"), (rle, "rle"), (depth, "depth"), (amodal, "amodal")):
        if given is not None and not Path(given).exists():  # fail before decoding a long video
            raise InputError(f"{given}: not found (given as {what}=)")

    pixels = read_frames(source)
    names = list_frame_names(source) if frames is not None else tuple(f"frame_{i:05d}" for i in range(len(pixels)))
    size = pixels.shape[1:3]
    frames_dir = source if frames is not None else None

    if masks is not None:
        found = read_masks(masks, names, size, mask_mode, object_ids, frames_dir)
    else:
        found = read_rle_json(rle, names, size, object_ids, frames_dir)
    if found.modal is None:
        raise InputError(f"{masks or rle}: holds no modal masks (only amodal ones); pass the visible masks")

    amodal_masks = found.amodal
    if amodal is not None:
        amodal_masks = read_amodal_masks(amodal, names, size, mask_mode, found.object_ids, frames_dir)

    return Clip(
        frames=pixels,
        modal_masks=found.modal,
        amodal_masks=amodal_masks,
        depth=None if depth is None else read_depth(depth, names, size),
        object_ids=found.object_ids,
        category_ids=found.category_ids,
        fps=float(fps) if fps is not None else (probe_frames(source).fps or DEFAULT_FPS),
        source=str(source),
        frame_names=names,
    )


def read_masks(
    path: str | os.PathLike,
    frame_names: Sequence[str],
    size: tuple[int, int] | None,
    mask_mode: str = "luminance",
    object_ids: Sequence[int] | None = None,
    frames_dir: str | os.PathLike | None = None,
    require_visible: bool = True,
) -> ObjectMasks:
    """Masks from a folder (:func:`~amodal.data.io.masks.read_mask_folder`) or a ``.json`` file
    (:func:`~amodal.data.io.masks.read_rle_json`), matched to frames named ``frame_names`` of size ``(H, W)``."""
    path = Path(path)
    if path.is_file() and path.suffix.lower() == ".json":
        return read_rle_json(path, frame_names, size, object_ids, frames_dir, require_visible=require_visible)
    return read_mask_folder(path, frame_names, size, mask_mode, object_ids, require_visible=require_visible)


def read_amodal_masks(
    path: str | os.PathLike,
    frame_names: Sequence[str],
    size: tuple[int, int] | None,
    mask_mode: str,
    object_ids: Sequence[int],
    frames_dir: str | os.PathLike | None = None,
) -> np.ndarray:
    """``(K, T, H, W) bool`` amodal masks of the objects ``object_ids`` from a folder or RLE JSON.

    A JSON's ``amodal`` masks are taken, or its only masks; a folder's masks
    are read with ``mask_mode``. Objects may be empty in every frame.
    """
    found = read_masks(path, frame_names, size, mask_mode, object_ids, frames_dir, require_visible=False)
    return found.amodal if found.amodal is not None else found.modal
