"""Look at completions: one PNG per object, the truth and each method's completion, frame by frame.

From a synthetic set with true amodal appearance (``amodal_rgb_file_names``), the objects whose
hidden part no other frame shows are picked (most never-seen hidden pixels first, after the
pipeline's propagation); each gets a picture whose rows are the input (modal RGB on white), the
truth, then one row per method (completion inside the true amodal mask, propagation on), and
whose columns are evenly spaced frames of the clip, each cut to the object's amodal box in that
frame and enlarged ``--scale`` times.
A red outline marks the pixels no frame shows, the only ones a model paints::

    python benchmarks/completion_gallery.py --data data/synth100 --split val --method default-completion-regression --method default-completion --out runs/gallery
"""

from __future__ import annotations

import argparse

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
    parser.add_argument("--out", required=True, help="folder for the PNGs (created; existing files are not replaced)")
    return parser


def never_seen(clip):
    """``(K, T, H, W) bool``: each object's hidden pixels that propagation cannot fill from another frame."""
    from amodal.completion.baselines import propagate

    _, known = propagate(clip, clip.amodal_masks)
    return clip.amodal_masks & ~known


def main() -> None:
    args = build_parser().parse_args()
    set_threads(args.threads)
    from pathlib import Path

    import numpy as np

    from PIL import Image

    from amodal.data.datasets import index_dataset
    from amodal.evaluation.completion_methods import CompletionOptions, get_completion_method
    from amodal.util.fs import atomic_path
    from amodal.viz.overlay import boundary

    index = index_dataset("synthetic", args.data, args.split)
    found = []  # (never-seen pixels, clip index, object)
    for i in range(min(args.limit, len(index))):
        counts = never_seen(index.item(i).clip).sum(axis=(1, 2, 3))
        found += [(int(n), i, k) for k, n in enumerate(counts)]
    found.sort(reverse=True)
    picked = [f for f in found if f[0] > 0][: args.objects]
    if not picked:
        raise SystemExit(f"amodal: error: no object of the first {args.limit} clips of {args.data} has a never-seen hidden part")
    methods = {name: get_completion_method(name, CompletionOptions(samples=1, seed=args.seed)) for name in args.method}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for count, i, k in picked:
        clip = index.item(i).clip
        given = clip.replace(amodal_rgb=None)
        unseen = never_seen(clip)[k]
        frames = [int(f) for f in np.unique(np.linspace(0, clip.num_frames - 1, args.frames).round()) if clip.amodal_masks[k][int(f)].any()]
        boxes = {}
        for f in frames:
            ys, xs = np.nonzero(clip.amodal_masks[k][f])
            boxes[f] = (slice(max(ys.min() - 2, 0), ys.max() + 3), slice(max(xs.min() - 2, 0), xs.max() + 3))
        height = max(b[0].stop - b[0].start for b in boxes.values())
        width = max(b[1].stop - b[1].start for b in boxes.values())
        modal = np.where(clip.modal_masks[k][..., None], clip.frames, np.uint8(255))
        rows = [modal, clip.amodal_rgb[k]]
        for name, method in methods.items():
            rows.append(method(given, clip.amodal_masks)[0, k])  # (samples, K, T, H, W, 3): sample 0
        tiles = []
        for row in rows:
            cells = []
            for f in frames:
                cell = row[f][boxes[f]].copy()
                cell[boundary(unseen[f][boxes[f]], width=1)] = (255, 0, 0)
                cell = np.pad(cell, ((0, height - cell.shape[0]), (0, width - cell.shape[1]), (0, 0)), constant_values=255)
                cell = cell.repeat(args.scale, axis=0).repeat(args.scale, axis=1)
                cells.append(np.pad(cell, ((2, 2), (2, 2), (0, 0)), constant_values=128))
            tiles.append(np.concatenate(cells, axis=1))
        path = out / f"{index.item(i).annotation.video}_object{clip.object_ids[k]}.png"
        if path.exists():
            raise SystemExit(f"amodal: error: {path} exists; pass another --out")
        with atomic_path(path) as tmp:
            Image.fromarray(np.concatenate(tiles, axis=0)).save(tmp, format="PNG")
        print(f"{path}: rows input, truth, {', '.join(methods)}; {count} never-seen hidden pixels")


if __name__ == "__main__":
    main()
