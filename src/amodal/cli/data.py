"""``amodal data``: make and manage datasets (``amodal data synth`` writes synthetic splits)."""

from __future__ import annotations

import argparse

from amodal.cli import add_command

SYNTH_EXAMPLE = """\
  amodal data synth --out data/synth --split val --videos 100 --seed 0 --workers 2
  # writes data/synth/val/{annotations.json,summary.json,generation.json,videos/...};
  # run it again after an interruption and finished videos are skipped.
  # Defaults per split (--videos/--seed left out): train 1200/0, val 100/0, test 200/0.
  # A config file holds any subset of the SynthConfig fields, e.g.
  #   {"height": 64, "width": 128, "num_frames": 12, "occlusion_rate": 0.9}
"""


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "data",
        "Make datasets: synthetic MOVi-style splits in the SAIL-VOS clip format.",
        "  amodal data synth --out data/synth --split train --workers 2\n",
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
    synth.add_argument("--quiet", action="store_true", help="no progress bar")
    synth.set_defaults(func=run_synth)


def run_synth(args) -> int:
    from amodal.errors import InputError
    from amodal.data.synth import DEFAULT_SPLITS, SynthConfig, SynthSplit, write_split
    from amodal.data.synth.dataset import format_summary

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
    summary = write_split(job, progress=not args.quiet)
    print(format_summary(summary, job.split_dir))
    return 0
