"""The frame layout every reader and writer of this package shares: what a source holds, and what a frame is.

Frames are ``(H, W, 3) uint8`` RGB arrays. :class:`FramesInfo` describes a source found without
decoding it; :func:`check_frame` checks one frame before a writer takes it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from amodal.errors import InputError


@dataclass(frozen=True)
class FramesInfo:
    """What a frame source holds, found without decoding every frame."""

    num_frames: int  # frames in the folder or video (a video's container count when it has one)
    height: int  # frame height in pixels
    width: int  # frame width in pixels
    fps: float | None  # the video's frame rate; None for a folder, which has no rate



def check_frame(frame: np.ndarray, index: int, size: tuple[int, int] | None, where: str | os.PathLike) -> np.ndarray:
    """``frame`` as an ``(H, W, 3) uint8`` array of size ``size`` (any size when ``None``), for writers.

    ``index`` and ``where`` (the file being written) name the frame in the
    ``InputError`` raised otherwise.
    """
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != np.uint8:
        raise InputError(f"{where}: frame {index} must be (H, W, 3) uint8, got {frame.dtype} {frame.shape}")
    if size is not None and frame.shape[:2] != tuple(size):
        raise InputError(
            f"{where}: frame {index} is {frame.shape[1]}x{frame.shape[0]}, the first was {size[1]}x{size[0]}; "
            "all frames of a video must have one size"
        )
    return frame
