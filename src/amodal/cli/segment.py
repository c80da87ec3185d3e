"""``amodal segment``: amodal masks for every object of a video."""

from __future__ import annotations

from amodal.cli import add_command, add_overwrite
from amodal.cli.flags import add_legend, add_levels, add_progress, add_resolution, add_video, resolution_of, video_of

EXAMPLE = """\
  amodal segment --frames clips/horse/rgbs --masks clips/horse/masks --out runs/horse
  amodal segment --video street.mp4 --masks street_masks --mask-mode index --objects 2 5 \\
      --samples 4 --window 16 --overlap 4 --out runs/street
  amodal segment --frames f/ --masks m/ --model checkpoints/diffusion-vas-amodal-segmentation \\
      --depth-model checkpoints/depth-anything-v2-small --device cuda --dtype float16 --out runs/official
  # the depth Depth Anything estimated, kept as 16-bit PNGs in runs/depth/depth/ (reusable with --depth):
  amodal segment --frames f/ --masks m/ --depth-model checkpoints/depth-anything-v2-small --save-depth --out runs/depth
  # amodal boxes as a prior ({"<object id>": [[x, y, w, h] or null, ...one per frame]}):
  amodal segment --frames f/ --masks m/ --amodal-boxes boxes.json --out runs/boxed
"""


def register(subparsers) -> None:
    p = add_command(subparsers, "segment", "Predict amodal masks (hidden parts included) for objects in a video.", EXAMPLE)
    add_video(p)
    masks = p.add_mutually_exclusive_group(required=True)
    masks.add_argument("--masks", help="folder of modal masks, one per frame (see --mask-mode)")
    masks.add_argument("--rle", help="COCO RLE JSON of the modal masks (docs/io.md)")
    p.add_argument("--mask-mode", choices=("luminance", "index"), default="luminance",
                   help="luminance: one object where luminance > 128; index: pixel value = object id")
    p.add_argument("--objects", type=int, nargs="+", help="segment only these object ids")
    depth = p.add_mutually_exclusive_group()
    depth.add_argument("--depth", help="folder of precomputed inverse-depth maps (larger = nearer)")
    depth.add_argument("--depth-model", help="Depth Anything V2 checkpoint (transformers folder or .pth)")
    depth.add_argument("--no-depth", action="store_true", help="run mask-only")
    p.add_argument("--save-depth", action="store_true",
                   help="with --depth-model: write the estimated inverse depth to OUT/depth/<frame>.png (16-bit, range in summary.json; docs/segment.md)")
    p.add_argument("--model", default="default", help="default, default-regression, a model folder or an official checkpoint")
    p.add_argument("--out", required=True, help="output folder, written when the run completes (an earlier `amodal segment` output there is replaced)")
    add_overwrite(p)
    p.add_argument("--steps", type=int, default=None, help="denoising steps (default: the model's own best, from its config; 25 is the paper's)")
    p.add_argument("--guidance", type=float, default=None, help="classifier-free guidance scale (default: the model's own best, from its config; 1.5 is the paper's)")
    p.add_argument("--samples", type=int, default=1, help="hypotheses per object; >1 writes an uncertainty video")
    p.add_argument("--seed", type=int, default=0, help="random seed of the initial noise")
    add_levels(p)
    add_resolution(p, "model canvas HxW (default: the model's native size)")
    p.add_argument("--window", type=int, help="frames per model call (default: the model's native length)")
    p.add_argument("--overlap", type=int, default=4, help="frames shared by consecutive windows")
    p.add_argument("--blend", choices=("average", "ramp"), default="ramp", help="how overlapping windows combine (default: ramp, a cross-fade)")
    p.add_argument("--pad", type=float, default=0.0,
                   help="room around the frame (fraction per side) so objects may extend past the border; 0.25 as the TAO-Amodal evaluation")
    p.add_argument("--batch-size", type=int, default=8, help="(object, sample) rows per model call")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--dtype", default="float32", help="float32 (amodal's own models); official checkpoints also take bfloat16 on CPU, float16 or bfloat16 on CUDA")
    p.add_argument("--fps", type=float, help="frame rate of the outputs (default: the video's own, 8 for folders)")
    p.add_argument("--amodal-boxes", metavar="FILE", help='JSON {"<object id>": [[x, y, w, h] or null, ...one per frame]}: each amodal mask stays inside its box (docs/applications.md)')
    p.add_argument("--box-mode", choices=("clip", "crop"), default=None, help="with --amodal-boxes: the model sees each object's box region (crop) or the whole frame (clip) (default: the model's own: crop for default-boxes, else clip)")
    p.add_argument("--box-margin", type=float, default=0.25, metavar="F", help="with --box-mode crop: context around the boxes, a fraction of their size per side")
    add_legend(p)
    add_progress(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from amodal.segmentation.pipeline import SegmentationConfig
    from amodal.apps.segment import SegmentRunConfig, segment_video

    config = SegmentRunConfig(
        frames=video_of(args),
        masks=args.masks or args.rle,
        out=args.out,
        mask_mode=args.mask_mode,
        objects=tuple(args.objects) if args.objects else None,
        depth=args.depth,
        depth_model=args.depth_model,
        no_depth=args.no_depth,
        model=args.model,
        device=args.device,
        dtype=args.dtype,
        resolution=resolution_of(args),
        fps=args.fps,
        overwrite=args.overwrite,
        amodal_boxes=args.amodal_boxes,
        legend=not args.no_legend,
        save_depth=args.save_depth,
        pipeline=SegmentationConfig(
            steps=args.steps, guidance=args.guidance, samples=args.samples, seed=args.seed, levels=args.levels, window=args.window,
            overlap=args.overlap, blend=args.blend, pad=args.pad, batch_size=args.batch_size,
            box_mode=args.box_mode, box_margin=args.box_margin, progress=not args.quiet,
        ),
    )
    summary = segment_video(config)
    print(f"wrote {args.out}: {len(summary['objects'])} object(s), {summary['frames']} frames, "
          f"{summary['seconds_per_frame']:.3f} s/frame")
    return 0
