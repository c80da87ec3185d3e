"""``amodal overlay``: draw modal (and amodal) masks over frames into a GIF or MP4."""

from __future__ import annotations

import argparse

EXAMPLE = """\
  amodal overlay --frames ../shared/data/real_clips/horse/rgbs \\
                 --masks ../shared/data/real_clips/horse/masks --out horse.gif --max-width 480

  # several objects in DAVIS-style label images, two of them, with amodal masks, as MP4:
  amodal overlay --video clip.mp4 --masks labels/ --mask-mode index --objects 1 3 \\
                 --amodal pred_amodal.json --out clip_overlay.mp4
"""


def register(subparsers) -> None:
    from amodal.cli import add_command, add_overwrite

    parser = add_command(
        subparsers,
        "overlay",
        "Draw modal masks (and amodal masks, hidden parts hatched) over a clip into a GIF or video.",
        EXAMPLE,
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--frames", metavar="DIR", help="folder of frames (.png/.jpg/.jpeg/.bmp, natural order)")
    source.add_argument("--video", metavar="FILE", help="video file (.mp4/.mov/.avi/.mkv/.webm)")
    masks = parser.add_mutually_exclusive_group(required=True)
    masks.add_argument("--masks", metavar="DIR", help="folder of modal masks, one per frame")
    masks.add_argument("--rle", metavar="JSON", help="COCO RLE JSON of modal masks (per-object or SAIL-VOS format)")
    parser.add_argument(
        "--amodal", metavar="DIR|JSON", help="amodal masks to draw, hidden parts hatched (folder or RLE JSON)"
    )
    parser.add_argument("--out", required=True, metavar="FILE", help="output .gif, .mp4, .mov, .mkv or .avi")
    parser.add_argument(
        "--mask-mode",
        choices=("luminance", "index"),
        default="luminance",
        help="luminance: one object where luminance > 128; index: pixel value = object id, 0 = background",
    )
    parser.add_argument(
        "--objects", type=int, nargs="+", metavar="ID", help="object ids to draw, in this order; none draws every object"
    )
    parser.add_argument("--fps", type=float, help="output frame rate; none keeps the video's rate (8 for a folder)")
    parser.add_argument(
        "--max-width", type=int, metavar="PX", help="shrink wider output to this width in pixels; none keeps the size"
    )
    parser.add_argument("--panels", action="store_true", help="labelled input | modal | amodal panels side by side")
    parser.add_argument("--no-legend", action="store_true", help="leave out the colour legend")
    add_overwrite(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from amodal.apps.overlay import OverlayConfig, render_overlay_files

    config = OverlayConfig(
        out=args.out,
        frames=args.frames,
        video=args.video,
        masks=args.masks,
        rle=args.rle,
        amodal=args.amodal,
        mask_mode=args.mask_mode,
        object_ids=tuple(args.objects) if args.objects else None,
        fps=args.fps,
        panels=args.panels,
        max_width=args.max_width,
        legend=not args.no_legend,
        overwrite=args.overwrite,
    )
    path = render_overlay_files(config)
    print(path)
    return 0
