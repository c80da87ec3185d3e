"""How much of the hidden region propagation fills: the share of hidden pixels another frame shows.

Over the clips of a set in the synthetic layout (true amodal masks), the share of hidden pixels
(amodal minus modal) that ``amodal.completion.baselines.propagate`` copies from another frame of the
clip; the rest is what a completion model paints under ``PipelineConfig.propagate``::

    python benchmarks/completion_propagation.py --data data/synth --split test --limit 20
"""

from __future__ import annotations

from common import make_parser


def build_parser():
    parser = make_parser(__doc__, "json")
    parser.add_argument("--data", required=True, help="a set in the synthetic layout")
    parser.add_argument("--split", default="test", help="split folder inside --data")
    parser.add_argument("--limit", type=int, default=None, help="only the first N clips")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    from itertools import islice

    from common import write_rows

    from amodal.completion.baselines import propagate
    from amodal.data.datasets import open_dataset

    hidden_pixels = filled = clips = 0
    for clip in islice(open_dataset("synthetic", args.data, split=args.split), args.limit):
        _, known = propagate(clip, clip.amodal_masks)
        hidden = clip.amodal_masks & ~clip.modal_masks
        hidden_pixels += int(hidden.sum())
        filled += int((known & hidden).sum())
        clips += 1
    share = filled / max(1, hidden_pixels)
    print(f"{args.data} ({args.split}, {clips} clips): {hidden_pixels} hidden pixels, {share:.3f} filled by propagation")
    write_rows(args.json, [{"clips": clips, "hidden_pixels": hidden_pixels, "propagated_share": share}], args)


if __name__ == "__main__":
    main()
