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
  ``recall`` of the hidden pixels;
- ``Top-k hidden IoU``: the best of ``--samples`` samples per window (mean over windows);
- ``errors flagged`` and ``uncertainty AUROC``: whether the uncertainty map marks where sample A
  is wrong. Over the pixels outside the modal mask, with ``f`` the share of samples marking a
  pixel amodal: the share of A's wrong pixels where the samples disagree (``0 < f < 1``), and the
  AUROC of ``4 f (1 - f)`` at telling A's wrong pixels from its right ones (0.5: no information).

``--levels`` thresholds the samples as the pipeline does (``fixed``, or ``stratified``: sample A
at the model's threshold, the others at levels drawn from strata of (0, 1);
amodal.segmentation.pipeline.sample_levels); the default is the model's own.

``--sigma-min`` changes the lowest noise level of the Karras schedule (default: the model's).
With two steps the schedule is ``[sigma_max, sigma_min, 0]``, so ``sigma_min`` is the noise the
second step still sees: near 0 the samples cannot differ, larger values let them. Usage::

    python benchmarks/sampling_drift.py --config configs/default.json --model default --steps 1 2 4 8 25
    python benchmarks/sampling_drift.py --config configs/default.json --model default --steps 2 --sigma-min 0.02 1 4 --samples 3
    python benchmarks/sampling_drift.py --config configs/default.json --model default --steps 1 --samples 3 --levels fixed stratified
"""

from __future__ import annotations

from common import Table, load_diffusion_model, make_parser, set_threads, write_rows


def pooled_iou(a, b) -> float:
    """IoU of two boolean tensors, pooled over all their elements."""
    union = float((a | b).sum())
    return float((a & b).sum()) / union if union else float("nan")


def auroc(scores, positive) -> float:
    """Area under the ROC curve of ``scores`` for the boolean ``positive`` (ties count half)."""
    import numpy as np

    scores, positive = np.asarray(scores, np.float64).ravel(), np.asarray(positive, bool).ravel()
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if not n_pos or not n_neg:
        return float("nan")
    values, index = np.unique(scores, return_inverse=True)
    pos = np.bincount(index, weights=positive, minlength=len(values))
    neg = np.bincount(index, weights=~positive, minlength=len(values))
    below = np.cumsum(neg) - neg  # negatives scoring strictly lower
    return float((pos * below).sum() + 0.5 * (pos * neg).sum()) / (n_pos * n_neg)


def build_parser():
    parser = make_parser(
        __doc__,
        "config", "model", "seed", "threads", "cache", "json",
        seed={"help": "seed of sample A (B uses seed + 1)"},
    )
    parser.add_argument("--steps", type=int, nargs="+", default=[1, 2, 4, 8, 25], help="Euler step counts")
    parser.add_argument("--guidance", type=float, default=1.0, help="CFG scale")
    parser.add_argument("--sigma-min", type=float, nargs="+", default=[None], help="lowest sigma of the schedule (default: the model's)")
    parser.add_argument("--samples", type=int, default=2, help="samples per window (>= 2; A and B are the first two)")
    parser.add_argument("--levels", nargs="+", choices=("fixed", "stratified"), default=[None],
                        help="how samples are thresholded (default: the model's own sample_levels)")
    return parser


def main() -> None:
    args = build_parser().parse_args()

    import numpy as np
    import torch

    from amodal.training.config import TrainConfig
    from amodal.training.data import config_validation_windows
    from amodal.training.loop import validation_scores
    from amodal.segmentation.pipeline import sample_levels

    import dataclasses

    if args.samples < 2:
        raise SystemExit("--samples must be >= 2")
    set_threads(args.threads)
    model = load_diffusion_model(args.model)
    original = model.config
    batch = config_validation_windows(TrainConfig.from_json(args.config), args.cache)
    depth = torch.where(batch.has_depth[:, None, None, None], batch.depth, 0.0)
    modal, truth = batch.modal > 0.5, batch.amodal > 0.5
    hidden_truth = truth & ~modal

    def sample(steps: int, seed: int) -> torch.Tensor:
        return model.sample(
            batch.modal, depth, steps=steps, guidance=args.guidance, generator=torch.Generator().manual_seed(seed)
        )

    def score(steps: int, mode: str, draws: list[torch.Tensor]) -> dict:
        a, b = draws[0], draws[1]
        per_window = np.stack([validation_scores(d, batch)[:, 1].numpy() for d in draws], 1)  # (windows, samples)
        hidden_a, hidden_b = a & ~modal, b & ~modal
        hit = float((hidden_a & hidden_truth).sum())
        frequency = torch.stack(draws).float().mean(0)
        outside = ~modal
        wrong = (a != truth)[outside].numpy()
        f = frequency[outside].numpy()
        disagree = (f > 0) & (f < 1)
        return {
            "steps": steps,
            "sigma_min": model.config.sigma_min,
            "levels": mode,
            "top_k": float(np.nanmean(np.nanmax(per_window, 1))),
            "hidden_iou": float(np.nanmean(validation_scores(a, batch)[:, 1].numpy())),
            "a_vs_truth": pooled_iou(hidden_a, hidden_truth),
            "a_vs_b": pooled_iou(hidden_a, hidden_b),
            "area": float(hidden_a.sum()) / float(hidden_truth.sum()),
            "precision": hit / max(1.0, float(hidden_a.sum())),
            "recall": hit / float(hidden_truth.sum()),
            "errors_flagged": float(disagree[wrong].mean()) if wrong.any() else float("nan"),
            "auroc": auroc(4 * f * (1 - f), wrong),
        }

    rows = []
    keys = ("hidden_iou", "top_k", "a_vs_truth", "a_vs_b", "area", "precision", "recall", "errors_flagged", "auroc")
    titles = ("hidden IoU", f"Top-{args.samples} hidden IoU", "A vs truth", "A vs B", "area", "precision", "recall",
              "errors flagged", "uncertainty AUROC")
    table = Table([("steps", "d"), ("sigma_min", ".3g"), ("levels", "s")] + [(title, ".3f") for title in titles])
    settings = [(steps, sigma_min) for sigma_min in args.sigma_min for steps in args.steps]
    for steps, sigma_min in settings:
        model.config = original if sigma_min is None else dataclasses.replace(original, sigma_min=sigma_min)
        softs = [sample(steps, args.seed + k) for k in range(args.samples)]
        for levels_mode in args.levels:
            mode = levels_mode or original.sample_levels
            levels = torch.from_numpy(sample_levels(mode, model.threshold, args.samples, len(modal), args.seed))
            draws = [(soft > levels[k][:, None, None, None]) | modal for k, soft in enumerate(softs)]
            rows.append(score(steps, mode, draws))
            table.row(steps, model.config.sigma_min, mode, *(rows[-1][key] for key in keys))
    write_rows(args.json, rows, args)

if __name__ == "__main__":
    main()
