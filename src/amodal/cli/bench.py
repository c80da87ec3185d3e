"""``amodal bench``: speed per frame and peak memory of a model at its native geometry, or of both stages."""

from __future__ import annotations

from amodal.cli import add_command, add_overwrite

EXAMPLE = """\
  amodal bench                                   # the default model at its own best sampling settings
  amodal bench --model default --steps 1 2 4 8 25 --json bench.json
  amodal bench --model default-regression
  amodal bench --model default --against default-regression   # the default's cost as a ratio to its twin's, one run
  amodal bench --model runs/default/model --no-depth
  amodal bench --video-frames 25 1000            # peak memory of `amodal segment` on 25- and 1,000-frame videos
  amodal bench --model default-completion        # the stage-2 model on one native window
  amodal bench --system                          # both stages (default + default-completion) on the demo clip
"""


def register(subparsers) -> None:
    parser = add_command(
        subparsers, "bench", "Measure seconds per frame and peak memory of a segmentation or completion model.", EXAMPLE
    )
    parser.add_argument("--model", default="default", help="a bundled model name (default, default-regression, default-completion, ...) or a model folder of either stage")
    parser.add_argument("--steps", type=int, nargs="+", default=[None], help="denoising steps, one run per value (default: the model's own best, from its config)")
    parser.add_argument("--guidance", type=float, default=None, help="classifier-free guidance scale, >1 doubles the batch (default: the model's own best, from its config)")
    parser.add_argument(
        "--against", default=None, metavar="MODEL",
        help="also time this model (at its own settings) before and after, and report each --model setting as a ratio to it",
    )
    parser.add_argument("--no-depth", action="store_true", help="run mask-only (no depth input)")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per setting (median reported)")
    parser.add_argument("--device", default="cpu", help="torch device")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    add_overwrite(parser, "--json file")
    parser.add_argument(
        "--video-frames", type=int, nargs="+", default=None, metavar="N",
        help="instead: peak memory of `amodal segment` on generated 640x360 videos of these lengths "
        "(one fresh process each; 1 denoising step, since memory does not depend on the step count)",
    )
    parser.add_argument(
        "--system", action="store_true",
        help="instead: both stages in memory (AmodalSystem: --model for stage 1, --completion-model for stage 2) "
        "on the bundled 48-frame, 5-object demo clip: seconds per frame and per object-frame of each stage",
    )
    parser.add_argument("--completion-model", default="default-completion", help="stage-2 model of --system")
    parser.set_defaults(func=_bench)


def _bench(args) -> int:
    import torch

    from amodal.errors import InputError
    from amodal.util.fs import write_json
    from amodal.apps.bench import benchmark

    _check_json(args)
    if args.video_frames is not None:
        return _bench_video_memory(args)
    if args.repeats < 1 or any(s is not None and s < 1 for s in args.steps):
        raise InputError("--repeats and every --steps value must be >= 1")
    if args.threads is not None:
        if args.threads < 1:
            raise InputError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    if args.system:
        return _bench_system(args)
    def measure(model, steps, guidance):
        r = benchmark(model, steps=steps, guidance=guidance, depth=not args.no_depth, repeats=args.repeats, device=args.device)
        ignored = "" if r.iterative or (steps is None and guidance is None) else " (--steps/--guidance ignored)"
        print(
            f"{r.model}: {r.num_frames}x{r.height}x{r.width} {r.settings}{ignored} "
            f"depth={'yes' if r.depth else 'no'}: {r.sec_per_frame:.4f} s/frame "
            f"({r.sec_per_window:.3f} s/window), peak RSS {r.peak_rss_mib:.0f} MiB, {r.threads} threads"
        )
        return {**r.to_dict(), "settings": r.settings}

    results = []
    reference = [measure(args.against, None, None)] if args.against else []
    for steps in args.steps:
        results.append(measure(args.model, steps, args.guidance))
    if args.against:
        # Timed before and after: machine load drifts, and the mean of both is the fairer yardstick.
        reference.append(measure(args.against, None, None))
        base = sum(r["sec_per_frame"] for r in reference) / len(reference)
        for r in results:
            r["ratio_to_against"] = r["sec_per_frame"] / base
            r["against"] = args.against
            print(f"{r['model']} ({r['settings']}): {r['ratio_to_against']:.2f}x the time per frame of {args.against}")
        results += [{**r, "role": "against"} for r in reference]
    if args.json:
        write_json(args.json, results)
    return 0


def _check_json(args) -> None:
    """``--json`` and ``--device`` are checked before anything is measured, not after minutes of it."""
    from amodal.checkpoints.registry import model_inputs
    from amodal.util.checks import check_device
    from amodal.util.fs import check_output

    check_device(args.device)
    if args.json:
        inputs = model_inputs(args.model, args.against)
        check_output(args.json, command="bench", kind="file", inputs=inputs, overwrite=args.overwrite, flag="--json")


def _bench_video_memory(args) -> int:
    from amodal.errors import InputError
    from amodal.util.fs import write_json
    from amodal.apps.stream_bench import measure_stream_memory

    if any(n < 1 for n in args.video_frames):
        raise InputError("every --video-frames value must be >= 1")
    results = measure_stream_memory(args.model, tuple(args.video_frames))
    for r in results:
        print(
            f"{args.model}: {r['frames']} frames of 640x360: peak RSS {r['peak_rss_mb']:.0f} MiB "
            f"({r['ratio_to_first']:.2f}x the {results[0]['frames']}-frame peak), {r['seconds']:.1f} s"
        )
    if args.json:
        write_json(args.json, results)
    return 0


def _bench_system(args) -> int:
    from amodal.apps.bench import benchmark_system
    from amodal.checkpoints.registry import resolve
    from amodal.util.fs import write_json

    resolve(args.model, "segmentation", flag="--model")
    resolve(args.completion_model, "completion", flag="--completion-model")
    r = benchmark_system(args.model, args.completion_model, repeats=args.repeats, device=args.device)
    print(
        f"{r['segmentation_model']} + {r['completion_model']} on {r['frames']} frames x {r['objects']} objects of "
        f"{r['size'][1]}x{r['size'][0]}: stage 1 {r['segmentation_sec_per_frame']:.3f} s/frame "
        f"({r['segmentation_sec_per_object_frame']:.4f} per object-frame), stage 2 {r['completion_sec_per_frame']:.3f} "
        f"s/frame ({r['completion_sec_per_object_frame']:.4f} per object-frame), peak RSS {r['peak_rss_mib']:.0f} MiB, "
        f"{r['threads']} threads"
    )
    if args.json:
        write_json(args.json, r)
    return 0
