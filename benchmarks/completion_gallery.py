"""Look at completions: one PNG per object, the truth and each method's completion, frame by frame.

From a synthetic set with true amodal appearance (``amodal_rgb_file_names``), the objects whose
hidden part no other frame shows are picked (most never-seen hidden pixels first, after the
pipeline's propagation); each gets a picture whose rows are the input (modal RGB on white), the
truth, then one row per method (completion inside the true amodal mask, propagation on), and
whose columns are evenly spaced frames of the clip, each cut to the object's amodal box in that
frame and enlarged ``--scale`` times. ``--out`` follows amodal's output policy: written whole
or not at all, never into or over an input.
A red outline marks the pixels no frame shows, the only ones a model paints::

    python benchmarks/completion_gallery.py --data data/synth100 --split val --method default-completion-regression --method default-completion --out runs/gallery
"""

from __future__ import annotations

import argparse
import sys

from common import set_threads


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="synthetic set folder (with amodal_rgb_file_names)")
    parser.add_argument("--split", default="val", help="split folder inside --data (default: %(default)s)")
    parser.add_argument("--limit", type=int, default=20, help="clips searched, from the first (default: %(default)s)")
    parser.add_argument("--objects", type=int, default=4, help="objects drawn (default: %(default)s)")
    parser.add_argument("--frames", type=int, default=6, help="frames per row (default: %(default)s)")
    parser.add_argument("--scale", type=int, default=4, help="pixels drawn per image pixel (default: %(default)s)")
    parser.add_argument("--method", action="append", required=True, help="completion method; repeat for several")
    parser.add_argument("--seed", type=int, default=0, help="seed of generative methods (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: %(default)s)")
    parser.add_argument("--out", required=True, help="folder for the PNGs, written whole or not at all (never an input)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out that this script did not write")
    return parser


def never_seen(clip):
    """``(K, T, H, W) bool``: each object's hidden pixels that propagation cannot fill from another frame."""
    from amodal.completion.baselines import propagate

    _, known = propagate(clip, clip.amodal_masks)
    return clip.amodal_masks & ~known


def main() -> None:
    from amodal.errors import InputError

    args = build_parser().parse_args()
    set_threads(args.threads)
    try:
        draw(args)
    except InputError as e:
        print(f"amodal: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None


def draw(args: argparse.Namespace) -> None:
    from amodal.checkpoints.registry import model_inputs
    from amodal.data.datasets import index_dataset
    from amodal.errors import InputError
    from amodal.evaluation.completion_methods import CompletionOptions, get_completion_method
    from amodal.util.fs import atomic_dir, check_output

    out = check_output(args.out, command="completion gallery", overwrite=args.overwrite,
                       inputs=(args.data, *model_inputs(*args.method)))
    index = index_dataset("synthetic", args.data, args.split)
    found = []  # (never-seen pixels, clip index, object)
    for i in range(min(args.limit, len(index))):
        counts = never_seen(index.item(i).clip).sum(axis=(1, 2, 3))
        found += [(int(n), i, k) for k, n in enumerate(counts)]
    found.sort(reverse=True)
    picked = [f for f in found if f[0] > 0][: args.objects]
    if not picked:
        raise InputError(f"--data {args.data}: no object of its first {args.limit} clips has a hidden part no frame shows; raise --limit")
    methods = {name: get_completion_method(name, CompletionOptions(samples=1, seed=args.seed)) for name in args.method}
    with atomic_dir(out, command="completion gallery") as tmp:
        for count, i, k in picked:
            item = index.item(i)
            name = f"{item.annotation.video}_object{item.clip.object_ids[k]}.png"
            picture(item.clip, k, methods, args.frames, args.scale).save(tmp / name, format="PNG")
            print(f"{out / name}: rows input, truth, {', '.join(methods)}; {count} never-seen hidden pixels")


def picture(clip, k: int, methods: dict, frames: int, scale: int):
    """Object ``k``'s picture: rows input, truth and each method; columns ``frames`` evenly spaced frames."""
    import numpy as np
    from PIL import Image

    from amodal.viz.overlay import boundary

    given = clip.replace(amodal_rgb=None)
    unseen = never_seen(clip)[k]
    shown = [int(f) for f in np.unique(np.linspace(0, clip.num_frames - 1, frames).round()) if clip.amodal_masks[k][int(f)].any()]
    boxes = {}
    for f in shown:
        ys, xs = np.nonzero(clip.amodal_masks[k][f])
        boxes[f] = (slice(max(ys.min() - 2, 0), ys.max() + 3), slice(max(xs.min() - 2, 0), xs.max() + 3))
    height = max(b[0].stop - b[0].start for b in boxes.values())
    width = max(b[1].stop - b[1].start for b in boxes.values())
    rows = [np.where(clip.modal_masks[k][..., None], clip.frames, np.uint8(255)), clip.amodal_rgb[k]]
    rows += [method(given, clip.amodal_masks)[0, k] for method in methods.values()]  # (samples, K, T, H, W, 3): sample 0
    tiles = []
    for row in rows:
        cells = []
        for f in shown:
            cell = row[f][boxes[f]].copy()
            cell[boundary(unseen[f][boxes[f]], width=1)] = (255, 0, 0)
            cell = np.pad(cell, ((0, height - cell.shape[0]), (0, width - cell.shape[1]), (0, 0)), constant_values=255)
            cell = cell.repeat(scale, axis=0).repeat(scale, axis=1)
            cells.append(np.pad(cell, ((2, 2), (2, 2), (0, 0)), constant_values=128))
        tiles.append(np.concatenate(cells, axis=1))
    return Image.fromarray(np.concatenate(tiles, axis=0))


if __name__ == "__main__":
    main()
