"""``amodal annotate``: pseudo ground truth, amodal masks written back into an annotation file that has amodal boxes."""

from __future__ import annotations

from pathlib import Path

from amodal.cli import add_command, add_overwrite
from amodal.cli.flags import add_progress

EXAMPLE = """\
  # TAO-Amodal: amodal masks for every track, from its amodal boxes and modal masks
  amodal annotate --dataset tao-amodal --annotations tao/amodal_annotations.json --data tao/frames \\
      --samples 3 --out runs/tao-pseudo
  # a SAIL-VOS-format file (its 'bbox' per entry bounds each object); here a synthetic split
  amodal annotate --dataset synthetic --annotations data/synth/test/annotations.json --data data/synth/test \\
      --limit 2 --out runs/synth-pseudo
  # then: runs/tao-pseudo/annotations.json (same format, masks added), coco_instances.json,
  #       cvat/<video>.xml (import into CVAT), review.csv (least certain frames first)
"""


def register(subparsers) -> None:
    from amodal.apps.annotate import ANNOTATABLE

    p = add_command(
        subparsers, "annotate",
        "Write amodal masks into an annotation file from its amodal boxes (pseudo ground truth), with COCO and CVAT exports.",
        EXAMPLE,
    )
    p.add_argument("--dataset", required=True, choices=ANNOTATABLE, help="the annotation file's format")
    p.add_argument("--annotations", required=True, type=Path, help="the annotation file")
    p.add_argument("--data", required=True, type=Path, help="the folder its frame file names are relative to")
    p.add_argument("--track-offsets", type=Path, help="TAO-Amodal {video_id: first track id} (default: track_ids_abs2rel.json beside the annotations)")
    p.add_argument("--model", default="default-boxes", help="stage-1 model: default-boxes (trained on box crops), default, a model folder or an official checkpoint (default: default-boxes)")
    p.add_argument("--samples", type=int, default=3, help="hypotheses per object; > 1 gives the per-frame uncertainty of review.csv")
    p.add_argument("--steps", type=int, default=None, help="denoising steps (default: the model's own)")
    p.add_argument("--guidance", type=float, default=None, help="guidance scale (default: the model's own)")
    p.add_argument("--seed", type=int, default=0, help="seed of the initial noise")
    p.add_argument("--box-mode", choices=("clip", "crop"), default=None, help="the model sees each object's box region (crop) or the whole frame (clip) (default: the model's own: crop for default-boxes, else clip)")
    p.add_argument("--box-margin", type=float, default=0.25, metavar="F", help="with --box-mode crop: context around the boxes, a fraction of their size per side")
    p.add_argument("--no-depth", action="store_true", help="run mask-only even when the data has depth")
    p.add_argument("--limit", type=int, help="only the first N clips")
    p.add_argument("--out", required=True, type=Path, help="output folder, written when the run completes")
    add_overwrite(p)
    add_progress(p, "no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    from amodal.apps.annotate import AnnotateConfig, annotate
    from amodal.segmentation.pipeline import SegmentationConfig

    summary = annotate(AnnotateConfig(
        dataset=args.dataset, annotations=args.annotations, data=args.data, out=args.out,
        track_offsets=args.track_offsets, model=args.model, limit=args.limit, progress=not args.quiet,
        overwrite=args.overwrite,
        pipeline=SegmentationConfig(
            samples=args.samples, steps=args.steps, guidance=args.guidance, seed=args.seed,
            box_mode=args.box_mode, box_margin=args.box_margin, use_depth=not args.no_depth, progress=False,
        ),
    ))
    print(f"wrote {args.out}: {summary['masks']} amodal masks for {summary['objects']} object(s) in "
          f"{summary['clips']} clip(s) ({summary['timings_s']['total']:.1f} s)")
    return 0
