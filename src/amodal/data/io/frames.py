"""Reading RGB frames from a folder of images or a video file.

Frames leave this module as ``(H, W, 3) uint8`` RGB arrays, one at a time
(:func:`iter_frames`) or stacked as ``(T, H, W, 3) uint8`` (:func:`read_frames`).
Nothing is ever converted to float here: a long video costs one byte per pixel
per frame at most, and nothing at all when streamed.

A folder holds ``.png``, ``.jpg``, ``.jpeg`` or ``.bmp`` files, taken in natural
order (``frame_2`` before ``frame_10``); other files and hidden files are
ignored. A video file (``.mp4``, ``.mov``, ``.avi``, ``.mkv``, ``.webm``) is
decoded through PyAV (see :mod:`amodal.data.io.video`).
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Iterator

import numpy as np

from amodal.data.io.layout import FramesInfo
from amodal.errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm")


def natural_key(name: str) -> list:
    """Sort key that orders digit runs by value: ``frame_2`` before ``frame_10``."""
    # re.split with a capturing group alternates text and digits, starting with
    # text, so keys of different names compare position by position.
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def list_images(folder: str | os.PathLike, what: str = "frames") -> list[Path]:
    """The image files of ``folder`` in natural order.

    ``what`` names the files in error messages (``frames``, ``masks``, ``depth``).
    Raises ``InputError`` when the folder is missing or holds no image.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: {what} folder not found; pass an existing folder of images")
    files = [
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
    ]
    if not files:
        raise InputError(f"{folder}: no {what} found (looked for {', '.join(IMAGE_SUFFIXES)} files)")
    return sorted(files, key=lambda p: natural_key(p.name))


def is_video_file(path: str | os.PathLike) -> bool:
    """True when ``path`` has one of the video suffixes this module decodes."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def open_image(path: str | os.PathLike):
    """Open an image with Pillow and decode it fully; ``InputError`` naming the file if it is unreadable."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        with warnings.catch_warnings():
            # A header claiming more than Image.MAX_IMAGE_PIXELS pixels is refused before they are allocated.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path)
            image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, *_too_large(Image)) as e:
        raise InputError(f"{path}: cannot read this image ({e}); replace or remove the file") from None
    return image


def _too_large(Image) -> tuple:
    """Pillow's refusals of a header claiming more pixels than ``Image.MAX_IMAGE_PIXELS`` (not ``OSError``)."""
    return Image.DecompressionBombError, Image.DecompressionBombWarning


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """``(H, W)`` of an image, read from its header only."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            w, h = image.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, *_too_large(Image)) as e:
        raise InputError(f"{path}: cannot read this image ({e}); replace or remove the file") from None
    return int(h), int(w)


def to_rgb(image) -> np.ndarray:
    """A Pillow image as ``(H, W, 3) uint8`` RGB.

    Grayscale, palette and RGBA images are converted (alpha is dropped, not
    blended); 16-bit grayscale (Pillow modes ``I;16`` and ``I``) is scaled to
    8 bits (divided by 257), not clipped.
    """
    if image.mode.startswith("I;16") or image.mode == "I":
        wide = np.asarray(image).astype(np.int64)
        gray = np.clip((wide + 128) // 257, 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.asarray(image, dtype=np.uint8)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """One image file as ``(H, W, 3) uint8`` RGB; ``InputError`` naming the file if it is corrupt."""
    image = open_image(path)
    try:
        return to_rgb(image)
    except ValueError as e:  # modes Pillow cannot convert to RGB
        raise InputError(f"{path}: cannot read a {image.mode} image as RGB ({e}); save it as an RGB image") from None


def _check_frames_path(path: Path) -> None:
    if not path.exists():
        raise InputError(f"{path}: not found; pass a folder of images or a video file ({', '.join(VIDEO_SUFFIXES)})")
    if path.is_file() and not is_video_file(path):
        raise InputError(
            f"{path}: not a video file this reader knows ({', '.join(VIDEO_SUFFIXES)}); "
            "pass a video or a folder of images"
        )


def probe_frames(path: str | os.PathLike) -> FramesInfo:
    """Count and size of the frames in a folder or video, without decoding them all.

    A folder's first image header gives the size; a video's container gives
    everything (packets are counted, not decoded, when it states no frame count).
    """
    path = Path(path)
    _check_frames_path(path)
    if path.is_file():
        from amodal.data.io.video import probe_video

        return probe_video(path)
    files = list_images(path)
    h, w = image_size(files[0])
    return FramesInfo(num_frames=len(files), height=h, width=w, fps=None)


def frame_names(path: str | os.PathLike, start: int = 0, stop: int | None = None) -> tuple[str, ...]:
    """One name per frame of ``path[start:stop]``: the file stems of a folder, ``frame_00000`` ... for a video.

    A video's names count from its first frame, so a window keeps the names it
    has in the whole video.
    """
    path = Path(path)
    _check_frames_path(path)
    if path.is_dir():
        return tuple(p.stem for p in list_images(path)[start:stop])
    count = probe_frames(path).num_frames
    return tuple(f"frame_{i:05d}" for i in range(count)[start:stop])


def iter_frames(path: str | os.PathLike, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
    """Yield the frames ``[start, stop)`` of a folder or video, each ``(H, W, 3) uint8`` RGB.

    Only one frame is decoded at a time. Raises ``InputError`` naming the file
    for a corrupt image, a frame whose size differs from the first one, an
    empty folder or a video without frames.
    """
    path = Path(path)
    _check_frames_path(path)
    _check_range(start, stop, path)
    if path.is_file():
        from amodal.data.io.video import iter_video

        yield from iter_video(path, start, stop)
        return
    files = list_images(path)[start:stop]
    if not files:
        raise InputError(f"{path}: no frames in the range [{start}, {stop})")
    first_size = None
    for file in files:
        frame = read_image(file)
        if first_size is None:
            first_size = frame.shape[:2]
        elif frame.shape[:2] != first_size:
            raise InputError(
                f"{file}: frame size {frame.shape[1]}x{frame.shape[0]} differs from the first frame's "
                f"{first_size[1]}x{first_size[0]} ({files[0].name}); all frames must have one size"
            )
        yield frame


def read_frames(path: str | os.PathLike, start: int = 0, stop: int | None = None) -> np.ndarray:
    """The frames ``[start, stop)`` of a folder or video as ``(T, H, W, 3) uint8`` RGB.

    Same checks as :func:`iter_frames`; a progress bar shows on a terminal.
    """
    from tqdm import tqdm

    path = Path(path)
    _check_frames_path(path)
    _check_range(start, stop, path)
    total = probe_frames(path).num_frames
    total = len(range(total)[start:stop])
    frames = list(
        tqdm(
            iter_frames(path, start, stop),
            total=total,
            desc=f"reading {path.name}",
            unit="frame",
            leave=False,
            disable=None,  # shown on a terminal only
        )
    )
    if not frames:
        raise InputError(f"{path}: no frames in the range [{start}, {stop})")
    return np.stack(frames)


def _check_range(start: int, stop: int | None, path: Path) -> None:
    if start < 0 or (stop is not None and stop <= start):
        raise InputError(f"{path}: bad frame range [{start}, {stop}); need 0 <= start < stop")
