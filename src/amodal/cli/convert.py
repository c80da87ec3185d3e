"""``amodal convert``: foreign checkpoints to safetensors folders that load strictly and fast."""

from __future__ import annotations

from amodal.cli import add_command, add_overwrite

EXAMPLE = """\
  amodal convert official checkpoints/diffusion-vas-amodal-segmentation --out models/vas-seg
  amodal convert official checkpoints/diffusion-vas-content-completion --out models/vas-rgb --dtype float16
  amodal convert depth-anything checkpoints/depth_anything_v2_vitl.pth --out models/depth-vitl
"""


OFFICIAL_DESCRIPTION = (
    "Convert an official Diffusion-VAS checkpoint folder (the diffusers layout with model_index.json, as released "
    "for amodal segmentation or content completion) into one config.json and one model.safetensors. The result "
    "loads strictly and faster, and every command takes it wherever it takes the original (--model, "
    "--segmentation-model, --completion-model). --dtype float16 halves its size for GPU use."
)
OFFICIAL_EXAMPLE = """\
  amodal convert official checkpoints/diffusion-vas-amodal-segmentation --out models/vas-seg
  amodal convert official checkpoints/diffusion-vas-content-completion --out models/vas-rgb --dtype float16
  amodal run --frames clip/rgbs --masks clip/masks --segmentation-model models/vas-seg --completion-model models/vas-rgb --out runs/clip
"""
DEPTH_DESCRIPTION = (
    "Convert an original Depth Anything V2 checkpoint (depth_anything_v2_vits.pth, _vitb or _vitl, read with "
    "torch's weights-only loader) into a transformers folder with safetensors weights, "
    "which --depth-model takes. Released sizes need no --config."
)
DEPTH_EXAMPLE = """\
  amodal convert depth-anything checkpoints/depth_anything_v2_vits.pth --out models/depth-vits
  amodal segment --frames clip/rgbs --masks clip/masks --depth-model models/depth-vits --save-depth --out runs/clip
"""


def register(subparsers) -> None:
    parser = add_command(subparsers, "convert", "Convert official checkpoints to amodal's safetensors folders.", EXAMPLE)
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True)

    official = kinds.add_parser("official", help="a Diffusion-VAS folder (model_index.json) -> config.json + model.safetensors",
                                description=OFFICIAL_DESCRIPTION, epilog="example:\n" + OFFICIAL_EXAMPLE,
                                formatter_class=parser.formatter_class)
    official.add_argument("path", help="official checkpoint folder")
    official.add_argument("--out", required=True, help="folder to write (never the checkpoint itself)")
    add_overwrite(official)
    official.add_argument("--dtype", default=None, choices=("float32", "float16", "bfloat16"), help="recast the weights (default: keep)")
    official.set_defaults(func=_official)

    depth = kinds.add_parser("depth-anything", help="an original Depth Anything V2 .pth -> transformers folder (safetensors)",
                             description=DEPTH_DESCRIPTION, epilog="example:\n" + DEPTH_EXAMPLE,
                             formatter_class=parser.formatter_class)
    depth.add_argument("path", help="depth_anything_v2_vit{s,b,l}.pth (read with torch's weights_only loader)")
    depth.add_argument("--out", required=True, help="folder to write")
    add_overwrite(depth)
    depth.add_argument("--config", default=None, help="transformers config.json, only for non-released sizes")
    depth.set_defaults(func=_depth)


def _official(args) -> int:
    from amodal.checkpoints.official.model import save_converted
    from amodal.util.fs import check_output

    check_output(args.out, command="convert official", inputs=(args.path,), overwrite=args.overwrite)
    out = save_converted(args.path, args.out, dtype=args.dtype)
    print(f"wrote {out}")
    return 0


def _depth(args) -> int:
    from amodal.depth import convert_depth_checkpoint
    from amodal.util.fs import check_output

    check_output(args.out, command="convert depth-anything", inputs=(args.path, args.config), overwrite=args.overwrite)
    out = convert_depth_checkpoint(args.path, args.out, config=args.config)
    print(f"wrote {out}")
    return 0
