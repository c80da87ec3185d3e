"""``amodal demo``: run the bundled model on the bundled synthetic clip and print its scores."""

from __future__ import annotations

from amodal.cli import add_command, add_overwrite

EXAMPLE = """\
  amodal demo                       # default model, writes demo_output/
  amodal demo --model default-regression --out demo_regression
"""


def register(subparsers) -> None:
    p = add_command(
        subparsers, "demo", "Segment a bundled synthetic clip with ground truth and print mIoU against it.", EXAMPLE
    )
    p.add_argument("--out", default="demo_output", help="folder for overlays and scores (an earlier demo output there is replaced)")
    add_overwrite(p)
    p.add_argument("--model", default="default", help="default, default-regression, or a model folder")
    p.add_argument("--steps", type=int, default=None, help="denoising steps (default: the model's own best, from its config)")
    p.add_argument("--samples", type=int, default=1, help="hypotheses per object")
    p.add_argument("--seed", type=int, default=0, help="seed of the initial noise")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args) -> int:
    from amodal.apps.demo import DemoConfig, format_table, run_demo

    summary = run_demo(
        DemoConfig(out=args.out, model=args.model, steps=args.steps, samples=args.samples, seed=args.seed,
                   progress=not args.quiet, overwrite=args.overwrite)
    )
    print(f"{summary['clip']}: {summary['objects']} objects, {summary['frames']} frames, "
          f"{summary['seconds_per_frame']:.3f} s/frame with {summary['model']}")
    print(format_table(summary))
    print(f"overlays and scores in {args.out}/ (overlay.mp4, overlay.gif, panels.mp4, scores.json)")
    return 0
