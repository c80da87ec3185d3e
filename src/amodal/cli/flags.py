"""The flags several commands share, spelled once: the same thing has the same name in every command.

- ``--frames DIR|FILE`` or ``--video FILE``: the input video, a folder of frames or a video file;
- ``--quiet`` (also ``--no-progress``): no progress bars;
- ``--resolution HxW``: the model canvas (``--height`` and ``--width`` still work, unlisted);
- ``--no-legend``: overlay videos without the colour legend strip.

``tests/test_flag_vocabulary.py`` checks that every command taking one of these takes all its spellings.
"""

from __future__ import annotations

import argparse

from amodal.errors import InputError


def add_progress(parser: argparse.ArgumentParser, what: str = "no progress bars") -> None:
    """``--quiet`` and its synonym ``--no-progress``: ``args.quiet``."""
    parser.add_argument("--quiet", "--no-progress", dest="quiet", action="store_true", help=what)


def add_video(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    """``--frames`` or ``--video`` (one of them): ``video_of(args)``."""
    source = parser.add_mutually_exclusive_group(required=required)
    source.add_argument("--frames", metavar="DIR|FILE", help="folder of frames (png/jpg, natural order) or a video file")
    source.add_argument("--video", metavar="FILE", help="video file (mp4/mov/avi/mkv/webm); the same as --frames FILE")


def video_of(args: argparse.Namespace) -> str | None:
    """The video ``--frames`` or ``--video`` named."""
    return args.frames if args.frames is not None else args.video


def parse_resolution(text: str) -> tuple[int, int]:
    """``"64x128"`` -> ``(64, 128)`` (height, width); an ``argparse`` error otherwise."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HxW such as 64x128, got {text!r}") from None
    return h, w


def add_resolution(parser: argparse.ArgumentParser, help: str) -> None:
    """``--resolution HxW`` (and the older ``--height`` / ``--width``, kept unlisted): ``resolution_of(args)``."""
    parser.add_argument("--resolution", type=parse_resolution, metavar="HxW", help=help)
    parser.add_argument("--height", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--width", type=int, help=argparse.SUPPRESS)


def resolution_of(args: argparse.Namespace) -> tuple[int, int] | None:
    """``(height, width)`` from ``--resolution`` or ``--height`` with ``--width``; ``None`` when not given."""
    split = (args.height, args.width)
    if args.resolution is not None:
        if split != (None, None):
            raise InputError("give --resolution HxW, or --height and --width, not both")
        return tuple(args.resolution)
    if (args.height is None) != (args.width is None):
        raise InputError("give both --height and --width, or --resolution HxW")
    return None if args.height is None else (args.height, args.width)


# amodal.segmentation.protocol.SAMPLE_LEVELS, spelled here so that --help needs no torch import
SAMPLE_LEVELS = ("fixed", "stratified")


def add_levels(parser: argparse.ArgumentParser) -> None:
    """``--levels``: ``args.levels``, how stage-1 samples are thresholded (None = the model's own)."""
    parser.add_argument("--levels", choices=SAMPLE_LEVELS, default=None,
                        help="with --samples > 1, how stage-1 samples are thresholded: fixed (all at the model's "
                             "threshold) or stratified (the first there, the others at levels drawn from strata of "
                             "(0, 1); docs/model.md) (default: the model's own: stratified for default and "
                             "default-regression)")


def add_legend(parser: argparse.ArgumentParser) -> None:
    """``--no-legend``: ``args.no_legend``."""
    parser.add_argument("--no-legend", action="store_true",
                        help="leave out the colour legend (a strip below the overlay videos)")
