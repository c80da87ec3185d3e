"""Summarise training runs from their ``log.jsonl``: loss over time and validation scores.

    python benchmarks/training_curves.py runs/default-stage1 runs/default-stage2 runs/default
    python benchmarks/training_curves.py runs/ablation-* --markdown

For each run: steps done, mean seconds per step, the mean loss over a few
spans of the run, and every validation line (mIoU and mIoU_hidden of the EMA
weights on the run's fixed validation windows). ``--plot FILE`` also draws the
loss curves (moving average) with matplotlib.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from common import Table, make_parser, print_json


def read_log(run: Path) -> tuple[list[dict], list[dict]]:
    lines = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line.strip()]
    return [r for r in lines if "loss" in r], [r for r in lines if "val" in r]


def summary(run: Path, spans: int = 4) -> dict:
    losses, vals = read_log(run)
    steps = np.array([r["step"] for r in losses])
    values = np.array([r["loss"] for r in losses])
    seconds = np.array([r["sec_per_step"] for r in losses])
    edges = np.linspace(0, len(values), spans + 1).astype(int)
    parts = [
        {"steps": f"{steps[a] if a < len(steps) else 0}-{steps[b - 1] if b > 0 else 0}", "loss": float(values[a:b].mean())}
        for a, b in zip(edges[:-1], edges[1:])
        if b > a
    ]
    return {
        "run": str(run),
        "steps": int(steps[-1]) if len(steps) else 0,
        "sec_per_step": float(seconds.mean()) if len(seconds) else float("nan"),
        "hours": float((seconds * np.diff(np.concatenate([[0], steps]))).sum() / 3600) if len(seconds) else 0.0,
        "loss_spans": parts,
        "val": [{"step": r["step"], **r["val"]} for r in vals],
    }


def markdown(rows: list[dict]) -> str:
    table = Table(
        [("run", ""), ("steps", "d"), ("s/step", ".2f"), ("hours", ".2f"), ("loss by quarter", ""),
         ("last val mIoU", ".4f"), ("last val mIoU_hidden", ".4f")],
        echo=False,
    )
    for row in rows:
        spans = ", ".join(f"{p['loss']:.4f}" for p in row["loss_spans"])
        last = row["val"][-1] if row["val"] else {}
        table.row(row["run"], row["steps"], row["sec_per_step"], row["hours"], spans, last.get("mIoU"), last.get("mIoU_hidden"))
    return table.text()


def build_parser():
    parser = make_parser(__doc__)
    parser.add_argument("runs", nargs="+", type=Path, help="run folders written by amodal train segmentation")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table instead of JSON")
    parser.add_argument("--plot", type=Path, default=None, help="write loss curves to this PNG")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    rows = [summary(run) for run in args.runs]
    if args.markdown:
        print(markdown(rows))
    else:
        print_json(rows)
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4))
        for run in args.runs:
            losses, _ = read_log(run)
            steps = np.array([r["step"] for r in losses])
            values = np.array([r["loss"] for r in losses])
            k = min(10, len(values))
            smooth = np.convolve(values, np.ones(k) / k, mode="valid")
            ax.plot(steps[k - 1 :], smooth, label=run.name)
        ax.set_xlabel("step")
        ax.set_ylabel("training loss (moving average of 10 log lines)")
        ax.set_yscale("log")
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.plot, dpi=100)


if __name__ == "__main__":
    main()
