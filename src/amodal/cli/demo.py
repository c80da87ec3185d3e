"""``amodal demo``: run both stages on the bundled synthetic clip and print their scores."""

from __future__ import annotations

from amodal.cli import add_command, add_overwrite
from amodal.cli.flags import add_legend, add_progress

EXAMPLE = """\
  amodal demo                       # default and default-completion, writes demo_output/
  amodal demo --no-legend --quiet --out demo_plain   # overlays without the legend strip, no progress bars
  amodal demo --model default-regression --completion-model default-completion-regression --out demo_regression
"""


def register(subparsers) -> None:
    p = add_command(
        subparsers, "demo", "Run both stages on a bundled synthetic clip with ground truth and print their scores against it.", EXAMPLE
    )
    p.add_argument("--out", default="demo_output", help="folder for overlays and scores (an earlier demo output there is replaced)")
    add_overwrite(p)
    p.add_argument("--model", "--segmentation-model", dest="model", default="default",
                   help="stage-1 model: default, default-regression, or a model folder")
    p.add_argument("--completion-model", default="default-completion",
                   help="stage-2 model: default-completion, default-completion-regression, or a model folder")
    p.add_argument("--steps", type=int, default=None, help="stage-1 denoising steps (default: the model's own best, from its config)")
    p.add_argument("--guidance", type=float, default=None, help="stage-1 guidance scale (default: the model's own best, from its config)")
    p.add_argument("--samples", type=int, default=1, help="hypotheses per object")
    p.add_argument("--seed", type=int, default=0, help="seed of the initial noise")
    add_legend(p)
    add_progress(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from amodal.apps.demo import DemoConfig, format_completion_table, format_table, run_demo

    summary = run_demo(
        DemoConfig(out=args.out, model=args.model, completion_model=args.completion_model, steps=args.steps, guidance=args.guidance,
                   samples=args.samples, seed=args.seed, progress=not args.quiet, legend=not args.no_legend,
                   overwrite=args.overwrite)
    )
    by_stage = summary["seconds_per_frame_by_stage"]
    print(f"{summary['clip']}: {summary['objects']} objects, {summary['frames']} frames, "
          f"{by_stage['segmentation']:.3f} s/frame with {summary['model']}, "
          f"{by_stage['completion']:.3f} s/frame with {summary['completion_model']}")
    print("stage 1, amodal masks (percent):")
    print(format_table(summary))
    print("stage 2, completed objects inside the stage-1 masks, on the truly hidden pixels (dB, SSIM, 0..255):")
    print(format_completion_table(summary))
    print(f"outputs in {args.out}/: system.mp4 (input | masks | completed objects), overlay.mp4, overlay.gif, "
          "panels.mp4, completion/<object>/rgba/*.png, scores.json")
    return 0
