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

    python benchmarks/noise_levels.py --config configs/default-stage4.json --model default
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

SIGMAS = (0.05, 0.2, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 12.0, 20.0, 40.0, 80.0)


def share_at_or_above(sigma: float, p_mean: float, p_std: float) -> float:
    """``P(sigma' >= sigma)`` for ``ln sigma' ~ N(p_mean, p_std^2)``."""
    return 0.5 * math.erfc((math.log(sigma) - p_mean) / (p_std * math.sqrt(2.0)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="training config whose validation windows and noise distribution to use")
    parser.add_argument("--model", default="default", help="diffusion model (name or folder)")
    parser.add_argument("--sigmas", type=float, nargs="+", default=list(SIGMAS))
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--cache", default="runs/cache", help="window cache folder of training")
    parser.add_argument("--json", default=None, help="write the rows here as JSON")
    args = parser.parse_args()

    import numpy as np
    import torch

    from amodal.checkpoints.registry import load_segmenter
    from amodal.segmentation.model import build_condition
    from amodal.training.config import TrainConfig
    from amodal.training.data import config_validation_windows
    from amodal.training.loop import validation_scores

    torch.set_num_threads(args.threads)
    config = TrainConfig.from_json(args.config)
    model = load_segmenter(args.model)
    if model.config.objective != "diffusion":
        raise SystemExit(f"{args.model}: not a diffusion model")
    batch = config_validation_windows(config, args.cache)
    cond = build_condition(batch.modal, batch.depth, model.config.priors)
    x0 = batch.amodal[:, :, None] * 2.0 - 1.0  # (N, T, 1, H, W) in {-1, 1}
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(args.seed))
    rows = []
    print("| sigma | mIoU | hidden IoU | training share >= sigma |")
    print("| --- | --- | --- | --- |")
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
        print(f"| {sigma:g} | {row['miou']:.3f} | {row['hidden_iou']:.3f} | {row['train_share_at_or_above']:.2f} |", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
