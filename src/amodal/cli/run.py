"""``amodal run``: depth, amodal segmentation and content completion in one command."""

from __future__ import annotations

from amodal.cli import add_command, add_overwrite
from amodal.cli.flags import add_legend, add_levels, add_progress, add_resolution, add_video, resolution_of, video_of

EXAMPLE = """\
  amodal run --frames clips/horse/rgbs --masks clips/horse/masks --out runs/horse
  amodal run --frames clips/horse/rgbs --masks clips/horse/masks \\
      --depth-model checkpoints/depth-anything-v2-small \\
      --segmentation-model checkpoints/diffusion-vas-amodal-segmentation \\
      --completion-model checkpoints/diffusion-vas-content-completion --device cuda --dtype float16 --out runs/horse
  # 4 hypotheses per object in both stages (uncertainty video, spread/), and the estimated depth kept:
  amodal run --video clip.mp4 --masks labels/ --mask-mode index --samples 4 \\
      --depth-model checkpoints/depth-anything-v2-small --save-depth --out runs/clip
  # object layers for 4D reconstruction (runs/horse/layers/<id>/{rgb,rgba}/, boxes.json, depth_order.json):
  amodal run --frames clips/horse/rgbs --masks clips/horse/masks --export layers --layer-size 576 --out runs/horse
"""


def register(subparsers) -> None:
    p = add_command(
        subparsers, "run", "Run the full two-stage system: pseudo-depth, amodal masks, then the objects' full appearance.",
        EXAMPLE,
    )
    add_video(p)
    masks = p.add_mutually_exclusive_group(required=True)
    masks.add_argument("--masks", help="modal masks: a folder (see --mask-mode) or a COCO RLE JSON")
    masks.add_argument("--rle", help="COCO RLE JSON of the modal masks (docs/io.md); the same as --masks FILE")
    p.add_argument("--mask-mode", choices=("luminance", "index"), default="luminance",
                   help="luminance: one object where luminance > 128; index: pixel value = object id")
    p.add_argument("--objects", type=int, nargs="+", help="only these object ids")
    depth = p.add_mutually_exclusive_group()
    depth.add_argument("--depth", help="folder of precomputed inverse-depth maps")
    depth.add_argument("--depth-model", help="Depth Anything V2 checkpoint (transformers folder or .pth)")
    depth.add_argument("--no-depth", action="store_true", help="stage 1 mask-only")
    p.add_argument("--save-depth", action="store_true",
                   help="with --depth-model: write the estimated inverse depth to OUT/segmentation/depth/<frame>.png (16-bit, range in its summary.json)")
    p.add_argument("--segmentation-model", "--model", dest="segmentation_model", default="default",
                   help="stage-1 model: default, default-regression, a model folder, or an official checkpoint")
    p.add_argument("--completion-model", default="default-completion",
                   help="stage-2 model: default-completion, default-completion-regression, a folder, or an official checkpoint (default: %(default)s)")
    p.add_argument("--out", required=True, help="output folder: OUT/segmentation and OUT/completion")
    add_overwrite(p)
    p.add_argument("--steps", type=int, default=None, help="denoising steps of both stages (default: each model's own; the official checkpoints' is 25)")
    p.add_argument("--guidance", type=float, default=None, help="guidance scale of both stages (default: each model's own; the official checkpoints' is 1.5)")
    p.add_argument("--samples", type=int, default=1,
                   help="hypotheses per object in both stages: >1 writes stage 1's uncertainty outputs and stage 2's spread/ (sample 0 is the one written)")
    p.add_argument("--seed", type=int, default=0, help="seed of both stages")
    add_levels(p)
    p.add_argument("--no-propagate", action="store_true",
                   help="stage 2 (ours) paints every hidden pixel, instead of first carrying those that other frames show")
    p.add_argument("--window", type=int, help="stage-1 frames per model call (default: native)")
    p.add_argument("--overlap", type=int, default=4, help="stage-1 frames shared by consecutive windows")
    p.add_argument("--blend", choices=("average", "ramp"), default="ramp", help="how overlapping stage-1 windows combine (default: ramp, a cross-fade)")
    p.add_argument("--batch-size", type=int, default=8, help="stage-1 (object, sample) rows per model call")
    p.add_argument("--pad", type=float, default=0.0,
                   help="not supported by run (stage 2 completes objects inside the frame): any value but 0 is refused; use `amodal segment --pad`")
    add_resolution(p, "model canvas HxW of stage 1, and of stage 2 when it is an official checkpoint (default: each model's own)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--dtype", default="float32", help="float32 (amodal's own models); official checkpoints also take bfloat16 on CPU, float16 or bfloat16 on CUDA")
    p.add_argument("--fps", type=float, help="frame rate of the overlay videos (default: the video's own, 8 for folders)")
    p.add_argument("--export", choices=("layers",), action="append", default=[], help="also write OUT/layers: per object a square object-centred video on white and as RGBA, its crop boxes and the depth order per frame, for 4D reconstruction (SV4D)")
    p.add_argument("--layer-size", type=int, default=576, metavar="PX", help="side of the layer frames (SV4D takes 576)")
    add_legend(p)
    add_progress(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from amodal.segmentation.pipeline import SegmentationConfig
    from amodal.apps.segment import SegmentRunConfig
    from amodal.apps.run import TwoStageConfig, run_two_stage

    resolution = resolution_of(args)
    segmentation = SegmentRunConfig(
        frames=video_of(args), masks=args.masks or args.rle, out=str(Path(args.out) / "segmentation"), mask_mode=args.mask_mode,
        objects=tuple(args.objects) if args.objects else None, depth=args.depth, depth_model=args.depth_model,
        no_depth=args.no_depth, model=args.segmentation_model, device=args.device, dtype=args.dtype,
        resolution=resolution, fps=args.fps, legend=not args.no_legend, save_depth=args.save_depth,
        pipeline=SegmentationConfig(steps=args.steps, guidance=args.guidance, samples=args.samples, seed=args.seed,
                                    levels=args.levels, window=args.window, overlap=args.overlap, blend=args.blend, pad=args.pad,
                                    batch_size=args.batch_size, progress=not args.quiet),
    )
    height, width = resolution if resolution is not None else (None, None)
    summary = run_two_stage(
        TwoStageConfig(segmentation=segmentation, completion_model=args.completion_model, steps=args.steps,
                       guidance=args.guidance, samples=args.samples, seed=args.seed, propagate=not args.no_propagate,
                       height=height, width=width, overwrite=args.overwrite, layers="layers" in args.export,
                       layer_size=args.layer_size),
        args.out,
    )
    timings = summary["timings_s"]
    print(f"wrote {args.out}: segmentation/ and completion/ for {len(summary['objects'])} object(s), "
          f"{summary['frames']} frames, {summary['seconds_per_frame']:.3f} s/frame "
          f"(stage 1 {timings['segmentation']:.1f} s, stage 2 {timings['completion']:.1f} s)")
    return 0
