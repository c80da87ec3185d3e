"""Stage-1 results on a synthetic split: baselines, the regression twin, and the diffusion model.

    python benchmarks/stage1.py --data data/synth --split test --limit 40 --out runs/stage1
    python benchmarks/stage1.py --data data/synth --limit 40 --only diffusion --steps 1 2 4 8 --out runs/stage1_steps

Every row is scored by :func:`amodal.evaluation.run.run_evaluation` (the
SAIL-VOS protocol the synthetic set uses: mIoU, mIoU_occ in the reference
reading, mIoU_occ_strict), the same code as ``amodal eval``. Rows:

- ``modal``, ``convex``, ``temporal``: the baselines;
- ``regression`` / ``regression (mask only)``: the one-step twin with and without depth;
- ``diffusion N steps [guidance G]``: the diffusion model at each ``--steps`` and
  ``--guidance`` scale, Top-1 (sample 0) and Top-k over ``--samples``
  hypotheses, with depth; ``(mask only)`` without depth; with ``--vote``, the
  per-pixel majority over the samples instead (the pipeline's answer when
  ``--samples > 1``: no ground truth picks it).

Speed is wall time of the method per scored frame (all objects of the frame,
all samples), on this machine, while nothing else of ours runs.
Writes ``OUT/results.json`` and ``OUT/results.md`` (plus each evaluation's own
report under ``OUT/<row>/``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from amodal.util.fs import write_bytes

from common import Table, make_parser, set_threads, write_rows

ROWS = ("baselines", "regression", "diffusion", "maskonly")


def timed(method):
    """Wrap a method so that its wall time and frame count accumulate on the wrapper."""

    def call(clip):
        start = time.perf_counter()
        out = method(clip)
        call.seconds += time.perf_counter() - start
        call.frames += clip.num_frames
        return out

    call.seconds, call.frames = 0.0, 0
    return call


def model_method(model: str, steps: int, samples: int, use_depth: bool, seed: int, guidance: float = 1.5, vote: bool = False):
    from amodal.evaluation.methods import pipeline_method
    from amodal.segmentation.pipeline import AmodalSegmentationPipeline, SegmentationConfig

    config = SegmentationConfig(
        steps=steps, guidance=guidance, samples=samples, seed=seed, use_depth=use_depth, progress=False
    )
    pipeline = AmodalSegmentationPipeline.from_pretrained(model, config)
    if vote:
        # Without the samples, the method scores the pipeline's own answer: their per-pixel majority.
        return timed(pipeline_method(lambda clip, return_samples: pipeline(clip, return_samples=False)))
    return timed(pipeline_method(pipeline))


def guided(scale: float) -> str:
    """Row-name suffix for a guidance scale other than the paper's 1.5."""
    return "" if scale == 1.5 else f" guidance {scale:g}"


def evaluate(name: str, method, args) -> dict:
    from amodal.evaluation.methods import register_method
    from amodal.evaluation.run import EvalConfig, run_evaluation

    key = name.replace(" ", "_").replace("(", "").replace(")", "").replace(".", "p")
    register_method(key, lambda options: method)
    config = EvalConfig(
        dataset="synthetic",
        out=Path(args.out) / key,
        data=Path(args.data),
        split=args.split,
        methods=(key,),
        limit=args.limit,
        plots=False,
    )
    result = run_evaluation(config)[key]
    row = {"name": name, **{k: result.metrics[k] for k in ("miou", "miou_occ", "miou_occ_strict", "frames")}}
    if "top_k" in result.metrics:
        top = result.metrics["top_k"]
        row["top_k"] = {k: top[k] for k in ("k", "miou", "miou_occ", "miou_occ_strict")}
    inner = getattr(method, "seconds", None)
    row["sec_per_frame"] = inner / max(1, method.frames) if inner is not None else None
    print(json.dumps(row), flush=True)
    return row


def baseline(name: str):
    from amodal.evaluation.methods import MethodOptions, get_method

    inner = get_method(name, MethodOptions())
    return timed(inner)


def markdown(rows: list[dict]) -> str:
    table = Table(
        [("method", ""), ("mIoU", ".4f"), ("mIoU_occ", ".4f"), ("mIoU_occ_strict", ".4f"), ("s/frame", ".3f")],
        echo=False,
    )
    for row in rows:
        table.row(row["name"], row["miou"], row["miou_occ"], row["miou_occ_strict"], row["sec_per_frame"])
        if "top_k" in row:
            top = row["top_k"]
            table.row(f"{row['name']}, Top-{top['k']}", top["miou"], top["miou_occ"], top["miou_occ_strict"], "(same run)")
    return table.text()


def build_parser():
    parser = make_parser(__doc__, "model", "seed", "threads", threads={"default": None})
    parser.add_argument("--data", required=True, help="synthetic dataset folder (amodal data synth --out)")
    parser.add_argument("--split", default="test", help="split to score")
    parser.add_argument("--limit", type=int, default=None, help="only the first N clips")
    parser.add_argument("--regression", default="default-regression", help="regression model (name or folder)")
    parser.add_argument("--steps", type=int, nargs="+", default=[25], help="diffusion step counts (one row each)")
    parser.add_argument(
        "--guidance", type=float, nargs="+", default=[1.5], help="guidance scales of the diffusion rows (one row per steps and scale)"
    )
    parser.add_argument("--samples", type=int, default=3, help="hypotheses of the diffusion rows (Top-k)")
    parser.add_argument(
        "--vote", action="store_true", help="score the diffusion rows' per-pixel majority over the samples (one answer) instead of Top-1/Top-k"
    )
    parser.add_argument("--only", nargs="+", choices=ROWS, default=list(ROWS), help="row groups to run")
    parser.add_argument("--out", required=True, help="output folder")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    set_threads(args.threads)
    rows = []
    if "baselines" in args.only:
        for name in ("modal", "convex", "temporal"):
            rows.append(evaluate(name, baseline(name), args))
    if "regression" in args.only:
        rows.append(evaluate("regression", model_method(args.regression, 1, 1, True, args.seed), args))
    if "diffusion" in args.only:
        for steps in args.steps:
            for guidance in args.guidance:
                method = model_method(args.model, steps, args.samples, True, args.seed, guidance, args.vote)
                voted = f", vote of {args.samples}" if args.vote else ""
                rows.append(evaluate(f"diffusion {steps} steps{guided(guidance)}{voted}", method, args))
    if "maskonly" in args.only:
        rows.append(evaluate("regression (mask only)", model_method(args.regression, 1, 1, False, args.seed), args))
        for steps in args.steps:
            for guidance in args.guidance:
                method = model_method(args.model, steps, args.samples, False, args.seed, guidance)
                rows.append(evaluate(f"diffusion {steps} steps{guided(guidance)} (mask only)", method, args))
    out = Path(args.out)
    write_rows(out / "results.json", rows, args)
    write_bytes(out / "results.md", markdown(rows).encode())
    print(markdown(rows))


if __name__ == "__main__":
    main()
