"""How much of the hidden region propagation fills: the share of hidden pixels another frame shows.

Over the clips of a set in the synthetic layout (true amodal masks), the share of hidden pixels
(amodal minus modal) that ``amodal.completion.baselines.propagate`` copies from another frame of the
clip; the rest is what a completion model paints under ``PipelineConfig.propagate``.

With ``--time``, also what that saves: the model (``--model``) completes every clip twice in one
run, once as the pipeline does (object-windows with no amodal pixel left unknown are not run) and
once running every object-window (``paint_known=True``); the table gives the object-windows run
and the seconds of each, and their ratio. The painted pixels are the same either way
(tests/test_completion_model.py)::

    python benchmarks/completion_propagation.py --data data/synth --split test --limit 20
    python benchmarks/completion_propagation.py --data data/synth --split test --limit 5 --time --model default-completion
"""

from __future__ import annotations

from common import make_parser


def build_parser():
    parser = make_parser(__doc__, "json", "threads", "model", model={"default": "default-completion",
                                                                     "help": "completion model for --time"})
    parser.add_argument("--data", required=True, help="a set in the synthetic layout")
    parser.add_argument("--split", default="test", help="split folder inside --data")
    parser.add_argument("--limit", type=int, default=None, help="only the first N clips")
    parser.add_argument("--time", action="store_true", help="also time the model with and without skipping known windows")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    from itertools import islice

    import time

    from common import Table, set_threads, write_rows

    from amodal.completion.baselines import propagate
    from amodal.data.datasets import open_dataset

    model = None
    if args.time:
        from amodal.checkpoints.registry import load_completer

        set_threads(args.threads)
        model = load_completer(args.model)
        run_rows = []
        counted = model.samples

        def counting(modal_rgb, *a, **k):
            run_rows.append(len(modal_rgb))
            return counted(modal_rgb, *a, **k)

        model.samples = counting
    hidden_pixels = filled = clips = 0
    windows = {False: 0, True: 0}
    seconds = {False: 0.0, True: 0.0}
    for clip in islice(open_dataset("synthetic", args.data, split=args.split), args.limit):
        pixels, known = propagate(clip, clip.amodal_masks)
        hidden = clip.amodal_masks & ~clip.modal_masks
        hidden_pixels += int(hidden.sum())
        filled += int((known & hidden).sum())
        clips += 1
        if model is not None:
            from amodal.completion.pipeline import complete_crops

            for paint_known in ((False, True) if clips % 2 else (True, False)):  # alternate which runs first
                run_rows.clear()
                start = time.perf_counter()
                complete_crops(model, clip, clip.amodal_masks, steps=model.default_steps, guidance=model.default_guidance,
                               num_samples=1, seed=0, batch_size=8, progress=False, known=(pixels, known),
                               paint_known=paint_known)
                seconds[paint_known] += time.perf_counter() - start
                windows[paint_known] += sum(run_rows)
    share = filled / max(1, hidden_pixels)
    print(f"{args.data} ({args.split}, {clips} clips): {hidden_pixels} hidden pixels, {share:.3f} filled by propagation")
    row = {"clips": clips, "hidden_pixels": hidden_pixels, "propagated_share": share}
    if model is not None:
        table = Table([("object-windows", "s"), ("run", "d"), ("seconds", ".1f")])
        table.row("the pipeline's (known ones skipped)", windows[False], seconds[False])
        table.row("every one", windows[True], seconds[True])
        ratio = seconds[True] / max(seconds[False], 1e-9)
        print(f"skipping known object-windows: {ratio:.2f}x faster ({args.model}, {args.threads} thread(s))")
        row.update(windows_run=windows[False], windows_all=windows[True], seconds_skip=seconds[False],
                   seconds_all=seconds[True], speedup=ratio)
    write_rows(args.json, [row], args)


if __name__ == "__main__":
    main()
