"""Where does a diffusion segmenter decide the hidden shape? Its one-call estimate against the noise level.

For each noise level ``sigma``, the ground-truth amodal masks of the fixed
validation windows of a training config (the windows training validates on)
are noised, ``x = x0 + sigma * n``, and denoised in one call with the condition
(no guidance); the estimate is thresholded at 0 and unioned with the modal
mask. Where the estimate is still near perfect, the noisy input tells the
answer and the level is easy; where it has fallen to the level of the largest
sigma, the input says nothing and the network has to decide the hidden shape
from the condition alone. The last column is the share of training noise
levels, ``ln sigma ~ N(p_mean, p_std^2)``, at or above each level. Usage::

    python benchmarks/noise_levels.py --config configs/default.json --model default
"""

from __future__ import annotations

import math

from common import Table, load_diffusion_model, make_parser, set_threads, write_rows

SIGMAS = (0.05, 0.2, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 12.0, 20.0, 40.0, 80.0)


def share_at_or_above(sigma: float, p_mean: float, p_std: float) -> float:
    """``P(sigma' >= sigma)`` for ``ln sigma' ~ N(p_mean, p_std^2)``."""
    return 0.5 * math.erfc((math.log(sigma) - p_mean) / (p_std * math.sqrt(2.0)))


def build_parser():
    parser = make_parser(
        __doc__,
        "config", "model", "seed", "threads", "cache", "json",
        config={
            "help": "training config whose validation windows and noise distribution to use "
            "(default: %(default)s, the bundled default's)"
        },
    )
    parser.add_argument("--sigmas", type=float, nargs="+", default=list(SIGMAS), help="noise levels (one row each)")
    return parser


def main() -> None:
    args = build_parser().parse_args()

    import numpy as np
    import torch

    from amodal.segmentation.model import build_condition
    from amodal.training.config import TrainConfig
    from amodal.training.data import config_validation_windows
    from amodal.training.loop import validation_scores

    set_threads(args.threads)
    config = TrainConfig.from_json(args.config)
    model = load_diffusion_model(args.model)
    batch = config_validation_windows(config, args.cache)
    cond = build_condition(batch.modal, batch.depth, model.config.priors)
    x0 = batch.amodal[:, :, None] * 2.0 - 1.0  # (N, T, 1, H, W) in {-1, 1}
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(args.seed))
    rows = []
    table = Table([("sigma", "g"), ("mIoU", ".3f"), ("hidden IoU", ".3f"), ("training share >= sigma", ".2f")])
    for sigma in args.sigmas:
        chunks = []
        with torch.no_grad():
            for i in range(0, len(x0), 8):
                s = torch.full((len(x0[i : i + 8]),), float(sigma))
                chunks.append(model(x0[i : i + 8] + sigma * noise[i : i + 8], s, cond[i : i + 8]))  # no self-conditioning estimate: zeros
        pred = (torch.cat(chunks)[:, :, 0] > 0) | (batch.modal > 0.5)
        scores = validation_scores(pred, batch).numpy()
        row = {
            "sigma": sigma,
            "miou": float(np.nanmean(scores[:, 0])),
            "hidden_iou": float(np.nanmean(scores[:, 1])),
            "train_share_at_or_above": share_at_or_above(sigma, config.p_mean, config.p_std),
        }
        rows.append(row)
        table.row(sigma, row["miou"], row["hidden_iou"], row["train_share_at_or_above"])
    write_rows(args.json, rows, args)


if __name__ == "__main__":
    main()
