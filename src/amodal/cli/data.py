"""``amodal data``: make and manage datasets (``amodal data synth`` writes synthetic splits, ``amodal data occlude``
benchmark splits from real clips with painted occluders)."""

from __future__ import annotations

import argparse

from amodal.cli import add_command, add_overwrite
from amodal.cli.flags import add_progress

SYNTH_EXAMPLE = """\
  amodal data synth --out data/synth --split val --videos 100 --seed 0 --workers 2
  # writes data/synth/val/{annotations.json,summary.json,generation.json,videos/...};
  # run it again after an interruption and finished videos are skipped.
  # Defaults per split (--videos/--seed left out): train 1200/0, val 100/0, test 200/0.
  # A config file holds any subset of the SynthConfig fields, e.g.
  #   {"height": 64, "width": 128, "num_frames": 12, "occlusion_rate": 0.9}
"""

OCCLUDE_EXAMPLE = """\
  amodal data occlude --clips ../shared/data/real_clips --out data/real_occluded --split test \\
      --size 180x320 --exclude horse:0-24 --exclude birdcage:0-3,22-24 --exclude giraffe:13-23
  # writes data/real_occluded/test/{annotations.json,summary.json,generation.json,videos/...}:
  # each clip's mask is the amodal truth, occluders are painted in front of it; excluded frames
  # (0-based, inclusive ranges) split a clip into videos, runs under 4 frames are dropped.
  amodal eval --dataset synthetic --data data/real_occluded --split test --method modal --out /tmp/eval
"""


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "data",
        "Make datasets: synthetic MOVi-style splits, or occluded real clips, in the SAIL-VOS clip format.",
        "  amodal data synth --out data/synth --split train --workers 2\n"
        "  amodal data occlude --clips ../shared/data/real_clips --out data/real_occluded --size 180x320\n",
    )
    commands = parser.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)
    synth = add_command(
        commands,
        "synth",
        "Render a synthetic split (frames, depth, amodal RGB, amodal and modal masks) to DIR/<split>/.",
        SYNTH_EXAMPLE,
    )
    # SUPPRESS keeps "(default: None)" out of the help of options whose default depends on the split.
    unset = argparse.SUPPRESS
    synth.add_argument("--out", required=True, default=unset, help="dataset root folder; the split goes to OUT/<split>/")
    synth.add_argument("--split", default="train", help="split name (train, val, test have default sizes)")
    synth.add_argument("--videos", type=int, default=unset, help="number of videos (default: the split's default)")
    synth.add_argument("--seed", type=int, default=unset, help="base seed (default: the split's default)")
    synth.add_argument("--config", default=unset, help="JSON file of SynthConfig fields to change (default: built-in)")
    synth.add_argument("--workers", type=int, default=1, help="parallel worker processes")
    add_overwrite(synth)
    add_progress(synth, "no progress bar")
    synth.set_defaults(func=run_synth)

    occlude = add_command(
        commands,
        "occlude",
        "Paint moving occluders over the object of real clips: a split with known amodal masks and amodal RGB.",
        OCCLUDE_EXAMPLE,
    )
    occlude.add_argument(
        "--clips", action="append", required=True, metavar="DIR",
        help="a clip folder (rgbs/, masks/) or a folder of them; repeat for more",
    )
    occlude.add_argument("--out", required=True, help="dataset root folder; the split goes to OUT/<split>/")
    occlude.add_argument("--split", default="test", help="split name")
    occlude.add_argument("--seed", type=int, default=0, help="base seed; each clip segment's seed hashes it with the clip name")
    occlude.add_argument(
        "--exclude", action="append", default=[], metavar="CLIP:FRAMES",
        help="frames of a clip never used, 0-based inclusive ranges, e.g. horse:10-18 or birdcage:0-3,22-24; repeatable",
    )
    occlude.add_argument("--size", default=None, metavar="HxW", help="shrink frames to fit HxW, keeping the aspect ratio")
    occlude.add_argument(
        "--variants", type=int, default=1, help="occluded versions of each clip segment (same footage, independent occluders)"
    )
    occlude.add_argument("--config", default=None, help="JSON file of OccludeConfig fields to change (none: the built-in config)")
    add_overwrite(occlude)
    occlude.set_defaults(func=run_occlude)


def run_synth(args) -> int:
    from amodal.errors import InputError
    from amodal.data.synth import DEFAULT_SPLITS, SynthConfig, SynthSplit, write_split
    from amodal.data.synth.dataset import format_summary
    from amodal.util.fs import check_output

    videos, seed, config = (getattr(args, name, None) for name in ("videos", "seed", "config"))
    defaults = DEFAULT_SPLITS.get(args.split)
    if defaults is None and videos is None:
        raise InputError(f"--videos is required for split {args.split!r} (defaults exist for {sorted(DEFAULT_SPLITS)})")
    job = SynthSplit(
        out=args.out,
        split=args.split,
        videos=videos if videos is not None else defaults.videos,
        seed=seed if seed is not None else (defaults.seed if defaults else 0),
        synth=SynthConfig.from_json(config) if config else SynthConfig(),
        workers=args.workers,
    )
    check_output(
        args.out, command="data synth", resume=True, overwrite=args.overwrite,
        inputs=(config,), earlier=lambda root: any(root.glob("*/generation.json")),
    )
    summary = write_split(job, progress=not args.quiet)
    print(format_summary(summary, job.split_dir))
    return 0


def run_occlude(args) -> int:
    from amodal.apps.occlude import OccludeJob, format_summary, parse_exclude, parse_size, write_occluded_split
    from amodal.data.occlude import OccludeConfig

    job = OccludeJob(
        clips=tuple(args.clips),
        out=args.out,
        split=args.split,
        seed=args.seed,
        exclude=tuple(parse_exclude(text) for text in args.exclude),
        size=parse_size(args.size) if args.size is not None else None,
        variants=args.variants,
        config=OccludeConfig.from_json(args.config) if args.config else OccludeConfig(),
        overwrite=args.overwrite,
    )
    summary = write_occluded_split(job)
    print(format_summary(summary, job.out / job.split))
    return 0
