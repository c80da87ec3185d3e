"""Long videos: windowed segmentation against single-window runs, and the blending of overlaps.

On synthetic videos of ``--frames`` frames with ground truth, compares:

- ``single windows``: the video cut into disjoint clips of the model's native
  length, each segmented on its own (what a 25-frame-only tool does);
- ``windowed, overlap O, blend B``: ``AmodalSegmentationPipeline`` streaming
  the whole video with overlapping windows.

All rows score the same frames (SAIL-VOS protocol, out-of-view frames
skipped). Usage::

    python benchmarks/windowing.py --model default --frames 300 --videos 2 --steps 25
"""

from __future__ import annotations

import time

import numpy as np

from common import Table, make_parser, set_threads, write_rows


def build_parser():
    parser = make_parser(
        __doc__,
        "model", "seed", "threads", "json",
        model={"help": "segmentation model, diffusion or regression (name or folder)"},
        seed={"help": "synthetic video seed base"},
        threads={"default": None},
    )
    parser.add_argument("--frames", type=int, default=300, help="frames of each synthetic video")
    parser.add_argument("--videos", type=int, default=2, help="synthetic videos")
    parser.add_argument("--steps", type=int, default=25, help="denoising steps")
    parser.add_argument("--overlaps", type=int, nargs="+", default=[0, 4, 8], help="window overlaps (one row each, two with blending)")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    set_threads(args.threads)

    from amodal.apps.demo import score
    from amodal.segmentation.pipeline import AmodalSegmentationPipeline, SegmentationConfig
    from amodal.data.synth import SynthConfig, generate_clip
    from amodal.data.synth.dataset import video_seed

    clips = [
        generate_clip(SynthConfig().replace(num_frames=args.frames), video_seed(args.seed, "long", i))
        for i in range(args.videos)
    ]
    base = AmodalSegmentationPipeline.from_pretrained(args.model)
    window = int(base.segmenter.num_frames)

    def run(config: SegmentationConfig, disjoint: bool):
        pipe = AmodalSegmentationPipeline(base.segmenter, config)
        preds, seconds = [], 0.0
        for clip in clips:
            start = time.perf_counter()
            if disjoint:
                parts = [pipe(clip.frame_range(s, min(s + window, clip.num_frames))).amodal_masks
                         for s in range(0, clip.num_frames, window)]
                preds.append(np.concatenate(parts, axis=1))
            else:
                preds.append(pipe(clip).amodal_masks)
            seconds += time.perf_counter() - start
        scores = [score(clip, pred) for clip, pred in zip(clips, preds)]
        frames = sum(c.num_frames for c in clips)
        keys = ("miou", "miou_occ", "miou_occ_strict")
        # A video without scored occluded frames has no mIoU_occ (None or nan): leave it out of that mean.
        mean = {k: float(np.nanmean([np.nan if s[k] is None else s[k] for s in scores])) for k in keys}
        return {**mean, "seconds_per_frame": seconds / frames}

    settings = [("single windows (disjoint)", SegmentationConfig(steps=args.steps, progress=False), True)]
    for overlap in args.overlaps:
        for blend in ("average", "ramp") if overlap else ("average",):
            config = SegmentationConfig(steps=args.steps, overlap=overlap, blend=blend, progress=False)
            settings.append((f"windowed, overlap {overlap}, {blend}", config, False))
    print(f"{args.model}: {args.videos} synthetic videos x {args.frames} frames, window {window}, {args.steps} steps")
    table = Table([("setting", ""), ("mIoU", ".4f"), ("mIoU_occ", ".4f"), ("mIoU_occ_strict", ".4f"), ("s/frame", ".3f")])
    rows = []
    for name, config, disjoint in settings:
        rows.append({"setting": name, **run(config, disjoint)})
        table.row(*(rows[-1][key] for key in ("setting", "miou", "miou_occ", "miou_occ_strict", "seconds_per_frame")))
    write_rows(args.json, rows, args)


if __name__ == "__main__":
    main()
