"""``amodal compose``: move, scale, re-order or remove completed objects in a video."""

from __future__ import annotations

from amodal.cli import add_command, add_overwrite
from amodal.cli.flags import add_video, video_of

EXAMPLE = """\
  # complete the objects first (amodal run writes OUT/segmentation/modal and OUT/completion):
  amodal run --frames clip/rgbs --masks clip/masks --out runs/clip
  # edit.json: object 1 slides 40 px right and grows by half over frames 0..24, and goes in front
  #   {"objects": {"1": {"keyframes": [{"frame": 0}, {"frame": 24, "dx": 40, "scale": 1.5}], "depth": 0}}}
  amodal compose --frames clip/rgbs --masks runs/clip/segmentation/modal --completed runs/clip/completion \\
      --edit edit.json --out runs/clip-edited
  # {"objects": {"2": {"remove": true}}} takes object 2 out; the background shows through
  amodal compose --frames clip/rgbs --masks runs/clip/segmentation/modal --completed runs/clip/completion \
      --edit edit.json --paint-with default-completion --out runs/clip-edited-painted
"""


def register(subparsers) -> None:
    p = add_command(subparsers, "compose", "Re-compose a video from its completed objects: move, scale, re-order or remove them.", EXAMPLE)
    add_video(p)
    p.add_argument("--masks", required=True, help="modal masks: one folder (one object) or subfolders named by object id")
    p.add_argument("--completed", required=True, help="the output of `amodal complete` (<id>/rgba/<frame>.png), e.g. OUT/completion of `amodal run`")
    p.add_argument("--edit", required=True, help="edit JSON (docs/applications.md)")
    p.add_argument("--hole-margin", type=int, default=1, metavar="PX", help="pixels each visible mask grows by before it is cut out of the background")
    p.add_argument("--paint-with", metavar="MODEL", help="a completion model (default-completion, a folder) paints the background no frame shows (default: filled from its border, which measures better)")
    p.add_argument("--fps", type=float, default=8.0, help="frame rate of video.mp4")
    p.add_argument("--out", required=True, help="output folder, written when the run completes")
    add_overwrite(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from amodal.apps.compose import ComposeCommand, run_compose

    summary = run_compose(ComposeCommand(
        frames=video_of(args), masks=args.masks, completed=args.completed, edit=args.edit, out=args.out,
        hole_margin=args.hole_margin, fps=args.fps, paint_with=args.paint_with, overwrite=args.overwrite,
    ))
    print(f"wrote {args.out}: {summary['frames']} frames, object(s) {summary['edited']} edited "
          f"({summary['never_seen_pixels']} background pixels no frame showed, filled from their border)")
    return 0
