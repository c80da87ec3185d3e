"""``amodal complete``: stage 2, the full appearance of each object inside its amodal mask."""

from __future__ import annotations

from amodal.cli import add_command, add_overwrite
from amodal.cli.flags import add_progress, add_resolution, add_video, resolution_of, video_of

EXAMPLE = """\
  amodal complete --model checkpoints/diffusion-vas-content-completion \\
      --frames clip/rgbs --masks clip/masks --amodal out/amodal_masks --out out/completion
  # --masks/--amodal: one folder of mask images (one object), or subfolders named by object id
  # writes out/completion/<object id>/{rgb,rgba,overlay}/<frame>.png (and spread/ with --samples > 1)
  amodal complete --frames clip/rgbs --masks clip/masks --amodal out/amodal_masks --out out/completion   # default-completion
  amodal complete --model ... --device cuda --dtype float16 --offload   # a GPU with little memory
  amodal complete --video clip.mp4 --masks clip/masks --amodal runs/clip/masks --samples 3 --quiet --out out/completion
  # object layers for 4D reconstruction: out/completion/layers/<id>/{rgb,rgba}/ at 576x576, boxes.json, depth_order.json
  amodal complete --frames clip/rgbs --masks clip/masks --amodal out/amodal_masks --export layers --out out/completion
"""


def register(subparsers) -> None:
    parser = add_command(subparsers, "complete", "Complete each object's appearance (stage 2).", EXAMPLE)
    parser.add_argument("--model", "--completion-model", dest="model", default="default-completion", help="completion model (default: %(default)s): default-completion, default-completion-regression, one of our model folders, or an official checkpoint (folder with model_index.json, or converted)")
    add_video(parser)
    parser.add_argument("--masks", required=True, help="modal masks (object = luminance > 128)")
    parser.add_argument("--amodal", required=True, help="amodal masks from stage 1, laid out like --masks")
    parser.add_argument("--out", required=True, help="output folder, written once complete (an earlier `amodal complete` output there is replaced)")
    add_overwrite(parser)
    parser.add_argument("--steps", type=int, default=None, help="Euler steps (default: the model's own; the official checkpoints' is 25)")
    parser.add_argument("--guidance", type=float, default=None, help="classifier-free guidance scale (default: the model's own; the official checkpoints' is 1.5)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initial noise")
    parser.add_argument("--samples", type=int, default=1,
                        help="appearances per object: sample 0 is written, and with more than one the per-pixel spread (spread/)")
    parser.add_argument("--noise-aug", type=float, default=0.02, help="noise added to the conditions (the reference's 0.02)")
    parser.add_argument("--decode-chunk-size", type=int, default=8, help="frames per VAE decoder call; lower saves memory")
    parser.add_argument(
        "--embedding-order",
        choices=("reference", "corrected"),
        default="reference",
        help="pairing of per-frame embeddings under guidance: as the released pipeline, or corrected",
    )
    parser.add_argument("--paste-visible", action="store_true", help="official checkpoints: keep the real visible pixels in the output (ours always do)")
    parser.add_argument("--no-propagate", action="store_true",
                        help="our models: paint every hidden pixel, instead of first carrying those that other frames show along the object's motion")
    add_resolution(parser, "model resolution HxW of an official checkpoint (default: its own, 256x512; the reference notes 512x1024 sometimes does better)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"), help="network precision")
    parser.add_argument("--offload", action="store_true", help="move each network to the GPU only while it runs")
    parser.add_argument("--export", choices=("layers",), action="append", default=[], help="also write OUT/layers: per object a square object-centred video on white and as RGBA, its crop boxes and the depth order per frame, for 4D reconstruction (SV4D)")
    parser.add_argument("--layer-size", type=int, default=576, metavar="PX", help="side of the layer frames (SV4D takes 576)")
    add_progress(parser)
    parser.set_defaults(func=_complete)


def _complete(args) -> int:
    from amodal.apps.complete import CompleteCommand, run_complete
    from amodal.completion.pipeline import CompletionConfig
    from amodal.checkpoints.official.config import GenerationConfig

    generation = GenerationConfig(
        noise_aug_strength=args.noise_aug,
        decode_chunk_size=args.decode_chunk_size,
        embedding_order=args.embedding_order,
    )
    height, width = resolution_of(args) or (None, None)
    command = CompleteCommand(
        model=args.model,
        frames=video_of(args),
        masks=args.masks,
        amodal=args.amodal,
        out=args.out,
        completion=CompletionConfig(generation=generation, seed=args.seed, paste_visible=args.paste_visible),
        device=args.device,
        dtype=args.dtype,
        offload=args.offload,
        height=height,
        width=width,
        overwrite=args.overwrite,
        steps=args.steps,
        guidance=args.guidance,
        samples=args.samples,
        propagate=not args.no_propagate,
        layers="layers" in args.export,
        layer_size=args.layer_size,
    )
    summary = run_complete(command, progress=not args.quiet)
    print(f"wrote {summary['out']}: {len(summary['objects'])} object(s), {summary['frames']} frames, "
          f"{summary['seconds_per_frame']:.3f} s/frame")
    return 0
