"""``amodal complete``: stage 2, the full appearance of each object inside its amodal mask."""

from __future__ import annotations

from amodal.cli import add_command, add_overwrite

EXAMPLE = """\
  amodal complete --model checkpoints/diffusion-vas-content-completion \\
      --frames clip/rgbs --masks clip/masks --amodal out/amodal_masks --out out/completion
  # --masks/--amodal: one folder of mask images (one object), or subfolders named by object id
  # writes out/completion/<object id>/{rgb,rgba,overlay}/<frame>.png (and spread/ with --samples > 1)
  amodal complete --frames clip/rgbs --masks clip/masks --amodal out/amodal_masks --out out/completion   # default-completion
  amodal complete --model ... --device cuda --dtype float16 --offload   # a GPU with little memory
  # object layers for 4D reconstruction: out/completion/layers/<id>/{rgb,rgba}/ at 576x576, boxes.json, depth_order.json
  amodal complete --frames clip/rgbs --masks clip/masks --amodal out/amodal_masks --export layers --out out/completion
"""


def register(subparsers) -> None:
    parser = add_command(subparsers, "complete", "Complete each object's appearance (stage 2).", EXAMPLE)
    parser.add_argument("--model", default="default-completion", help="completion model (default: %(default)s): default-completion, default-completion-regression, one of our model folders, or an official checkpoint (folder with model_index.json, or converted)")
    parser.add_argument("--frames", required=True, help="folder of RGB frames, or a video file")
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
    parser.add_argument("--height", type=int, default=None, help="model resolution; unset: the checkpoint's own (256 for the official ones)")
    parser.add_argument("--width", type=int, default=None, help="model resolution; unset: the checkpoint's own (512 for the official ones)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"), help="network precision")
    parser.add_argument("--offload", action="store_true", help="move each network to the GPU only while it runs")
    parser.add_argument("--export", choices=("layers",), action="append", default=[], help="also write OUT/layers: per object a square object-centred video on white and as RGBA, its crop boxes and the depth order per frame, for 4D reconstruction (SV4D)")
    parser.add_argument("--layer-size", type=int, default=576, metavar="PX", help="side of the layer frames (SV4D takes 576)")
    parser.add_argument("--quiet", "--no-progress", dest="no_progress", action="store_true", help="no progress bars")
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
    command = CompleteCommand(
        model=args.model,
        frames=args.frames,
        masks=args.masks,
        amodal=args.amodal,
        out=args.out,
        completion=CompletionConfig(generation=generation, seed=args.seed, paste_visible=args.paste_visible),
        device=args.device,
        dtype=args.dtype,
        offload=args.offload,
        height=args.height,
        width=args.width,
        overwrite=args.overwrite,
        steps=args.steps,
        guidance=args.guidance,
        samples=args.samples,
        propagate=not args.no_propagate,
        layers="layers" in args.export,
        layer_size=args.layer_size,
    )
    out = run_complete(command, progress=not args.no_progress)
    print(f"wrote {out}")
    return 0
