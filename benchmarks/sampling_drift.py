"""What sampling does to the hidden parts: agreement between samples, agreement with the truth, area.

On the fixed validation windows of a training config (the windows training
validates on; ground truth known), the diffusion model draws two samples per
window for each step count, and the table reports, for the hidden region (amodal
and not modal):

- ``hidden IoU``: the validation score of sample A (mean over frames, as in training logs);
- ``A vs truth`` / ``A vs B``: IoU of the hidden pixels pooled over every window,
  of sample A against the ground truth and against sample B. A calibrated sampler
  has ``A vs B`` about equal to ``A vs truth`` (the truth is one more draw from
  the same distribution); ``A vs B`` far above it means the samples agree on an
  answer the truth does not share: a bias of the sampler, not diversity;
- ``area``: predicted hidden area over the true hidden area; ``precision`` and
  ``recall`` of the hidden pixels. Usage::

    python benchmarks/sampling_drift.py --config configs/default-stage6.json --model default --steps 1 2 4 8 25
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def pooled_iou(a, b) -> float:
    """IoU of two boolean tensors, pooled over all their elements."""
    union = float((a | b).sum())
    return float((a & b).sum()) / union if union else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="training config whose validation windows to use")
    parser.add_argument("--model", default="default", help="diffusion model (name or folder)")
    parser.add_argument("--steps", type=int, nargs="+", default=[1, 2, 4, 8, 25], help="Euler step counts")
    parser.add_argument("--guidance", type=float, default=1.0, help="CFG scale")
    parser.add_argument("--seed", type=int, default=0, help="seed of sample A (B uses seed + 1)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--cache", default="runs/cache", help="window cache folder of training")
    parser.add_argument("--json", default=None, help="write the rows here as JSON")
    args = parser.parse_args()

    import numpy as np
    import torch

    from amodal.checkpoints.registry import load_segmenter
    from amodal.training.config import TrainConfig
    from amodal.training.data import config_validation_windows
    from amodal.training.loop import validation_scores

    torch.set_num_threads(args.threads)
    model = load_segmenter(args.model)
    if model.config.objective != "diffusion":
        raise SystemExit(f"{args.model}: not a diffusion model")
    batch = config_validation_windows(TrainConfig.from_json(args.config), args.cache)
    depth = torch.where(batch.has_depth[:, None, None, None], batch.depth, 0.0)
    modal, truth = batch.modal > 0.5, batch.amodal > 0.5
    hidden_truth = truth & ~modal

    def sample(steps: int, seed: int) -> torch.Tensor:
        soft = model.sample(
            batch.modal, depth, steps=steps, guidance=args.guidance, generator=torch.Generator().manual_seed(seed)
        )
        return (soft > model.threshold) | modal

    rows = []
    print("| steps | hidden IoU | A vs truth | A vs B | area | precision | recall |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for steps in args.steps:
        a, b = sample(steps, args.seed), sample(steps, args.seed + 1)
        hidden_a, hidden_b = a & ~modal, b & ~modal
        hit = float((hidden_a & hidden_truth).sum())
        row = {
            "steps": steps,
            "hidden_iou": float(np.nanmean(validation_scores(a, batch)[:, 1].numpy())),
            "a_vs_truth": pooled_iou(hidden_a, hidden_truth),
            "a_vs_b": pooled_iou(hidden_a, hidden_b),
            "area": float(hidden_a.sum()) / float(hidden_truth.sum()),
            "precision": hit / max(1.0, float(hidden_a.sum())),
            "recall": hit / float(hidden_truth.sum()),
        }
        rows.append(row)
        print(
            f"| {steps} | {row['hidden_iou']:.3f} | {row['a_vs_truth']:.3f} | {row['a_vs_b']:.3f} | "
            f"{row['area']:.3f} | {row['precision']:.3f} | {row['recall']:.3f} |",
            flush=True,
        )
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
