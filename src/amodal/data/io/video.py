"""Video files through PyAV: probing, streaming decode and streaming encode.

Frames cross this boundary as ``(H, W, 3) uint8`` RGB arrays. Decoding yields
one frame at a time; encoding consumes an iterator, so neither side needs the
whole video in memory.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from amodal.errors import InputError
from amodal.util.fs import atomic_path
from amodal.data.io.layout import FramesInfo, check_frame

# Preferred encoders in order: H.264 plays everywhere; MPEG-4 Part 2 ships with
# every FFmpeg build, so it is the fallback when libx264 is missing.
MP4_CODECS = ("libx264", "mpeg4")
# Containers that take H.264 and MPEG-4 Part 2 streams (WebM takes neither).
WRITE_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi")


def _open_input(path: Path):
    import av

    if not path.is_file():
        raise InputError(f"{path}: video file not found")
    try:
        container = av.open(str(path), mode="r")
    except av.FFmpegError as e:
        raise InputError(f"{path}: cannot open this video ({e}); check the file is a complete video") from None
    if not container.streams.video:
        container.close()
        raise InputError(f"{path}: has no video stream, so no frames to read; pass a video with frames")
    return container


def probe_video(path: str | os.PathLike) -> FramesInfo:
    """Frame count, size and rate of a video file from its container, without decoding frames.

    When the container states no frame count (common for ``.webm`` and
    ``.mkv``), packets are counted instead: that reads the file but decodes
    nothing. Raises ``InputError`` naming the file when it cannot be opened or
    holds no frame.
    """
    import av

    path = Path(path)
    container = _open_input(path)
    with container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        count = int(stream.frames or 0)
        if count == 0:
            try:
                count = sum(1 for packet in container.demux(stream) if packet.size > 0)
            except av.FFmpegError as e:
                raise InputError(f"{path}: cannot read this video ({e}); check the file is a complete video") from None
        info = FramesInfo(
            num_frames=count,
            height=int(stream.codec_context.height),
            width=int(stream.codec_context.width),
            fps=float(rate) if rate else None,
        )
    if info.num_frames == 0:
        raise InputError(f"{path}: the video has no frames")
    return info


def iter_video(path: str | os.PathLike, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
    """Decode frames ``[start, stop)`` of a video, yielding ``(H, W, 3) uint8`` RGB one at a time.

    Frames before ``start`` are decoded and dropped (seeking by timestamp is
    not frame-exact in every container). Raises ``InputError`` naming the file
    for an unreadable video or one without frames.
    """
    import av

    path = Path(path)
    container = _open_input(path)
    with container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # frame-parallel decoding; the output order is unchanged
        index = -1
        try:
            for index, frame in enumerate(container.decode(stream)):
                if stop is not None and index >= stop:
                    break
                if index >= start:
                    yield frame.to_ndarray(format="rgb24")
        except av.FFmpegError as e:
            raise InputError(f"{path}: cannot decode frame {index + 1} ({e}); the video may be truncated") from None
    if index < 0:
        raise InputError(f"{path}: the video has no frames")
    if index < start:
        raise InputError(f"{path}: no frames in the range [{start}, {stop}); the video has {index + 1}")


def _pad_even(frame: np.ndarray) -> np.ndarray:
    """Repeat the last row/column when H or W is odd: yuv420p needs even sizes."""
    h, w = frame.shape[:2]
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge") if h % 2 or w % 2 else frame


def pick_codec(preferred: tuple[str, ...] = MP4_CODECS) -> str:
    """The first encoder of ``preferred`` that this PyAV build has."""
    import av

    for name in preferred:
        if name in av.codecs_available:
            try:
                av.Codec(name, "w")
            except (av.FFmpegError, ValueError):
                continue
            return name
    raise InputError(f"none of the video encoders {preferred} is available in this PyAV build; write a .gif instead")


def write_video(
    path: str | os.PathLike,
    frames: Iterable[np.ndarray],
    fps: float,
    *,
    quality: int = 18,  # x264 CRF: 18 is visually lossless for overlays; lower is larger and closer
    codec: str | None = None,  # None picks libx264 when available, else mpeg4
) -> int:
    """Encode ``(H, W, 3) uint8`` RGB frames into a video file (``.mp4``, ``.mov``, ``.mkv``, ``.avi``).

    Frames are consumed one at a time from the iterator. The pixel format is
    yuv420p, which every player decodes; odd heights or widths are padded by
    repeating the last row or column. The file appears only once complete:
    if the iterator raises, nothing is left at ``path``. Returns the number of
    frames written.
    """
    import av

    path = Path(path)
    if path.suffix.lower() not in WRITE_SUFFIXES:
        raise InputError(f"{path}: cannot write '{path.suffix}' videos; use one of {', '.join(WRITE_SUFFIXES)}")
    if fps <= 0:
        raise InputError(f"{path}: fps must be positive, got {fps}")
    codec = codec or pick_codec()
    count = 0
    with atomic_path(path) as tmp:
        with av.open(str(tmp), mode="w") as container:
            stream = None
            size = None
            for frame in frames:
                frame = check_frame(frame, count, size, path)
                if stream is None:
                    size = frame.shape[:2]
                    stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
                    stream.height, stream.width = (s + s % 2 for s in size)
                    stream.pix_fmt = "yuv420p"
                    if codec == "libx264":
                        stream.options = {"crf": str(quality), "preset": "medium"}
                    else:
                        # MPEG-4 Part 2 has no CRF: a generous rate keeps edges of thin outlines clean.
                        stream.bit_rate = int(8 * stream.width * stream.height * fps / 6)
                video_frame = av.VideoFrame.from_ndarray(_pad_even(frame), format="rgb24")
                for packet in stream.encode(video_frame):
                    container.mux(packet)
                count += 1
            if stream is None:
                raise InputError(f"{path}: no frames to write")
            for packet in stream.encode(None):
                container.mux(packet)
    return count

