"""Where a stage-2 diffusion model is weak: its one-call estimate of the hidden pixels at each noise level.

On the fixed validation windows of a stage-2 training config (each with a pasted occluder, truth
known), the true appearance is noised to each sigma (one fixed noise draw per window) and the
model denoises it once, with guidance 1 (the conditional branch alone) and with ``--guidance``.
The table gives the PSNR of the estimate on the hidden pixels, next to what the one-step
regression twin (``--twin``) predicts from the condition alone: at large sigma the noisy input
says nothing about the hidden part and the ideal denoiser's estimate *is* the twin's target (the
conditional mean), so the gap there is what the diffusion model has not learnt; the last column
is the share of training noise draws at or above each sigma (ln sigma ~ N(p_mean, p_std^2) of the
config), how often training visits that level::

    python benchmarks/completion_noise_levels.py --model default-completion --twin default-completion-regression
"""

from __future__ import annotations

from common import Table, completion_parser, completion_validation, set_threads, write_rows


def build_parser():
    parser = completion_parser(__doc__, "stage-2 diffusion model (name or folder)")
    parser.add_argument("--twin", default="default-completion-regression", help="the one-step twin to compare with")
    parser.add_argument("--sigmas", type=float, nargs="+", default=[0.05, 0.2, 0.5, 1.0, 2.0, 5.0, 20.0, 80.0])
    parser.add_argument("--guidance", type=float, default=1.5, help="the second guided column's scale")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    set_threads(args.threads)
    import math

    import numpy as np
    import torch

    from amodal.checkpoints.registry import load_completer
    from amodal.completion.model import build_condition
    from amodal.diffusion import CFGDenoiser
    from amodal.training.completion import hidden_psnr

    config, batch = completion_validation(args.config, args.cache)
    model, twin = load_completer(args.model), load_completer(args.twin)
    cond = build_condition(batch.modal_rgb, batch.amodal, batch.modal)
    x0 = batch.target * 2.0 - 1.0
    visible = batch.modal[:, :, None] > 0.5

    def score(estimate) -> float:  # estimate in [-1, 1]; visible pixels as given, as the pipeline pastes them
        pred = torch.where(visible, batch.modal_rgb, ((estimate + 1.0) / 2.0).clamp(0, 1))
        return float(np.nanmean(hidden_psnr(pred, batch).numpy()))

    with torch.no_grad():
        twin_psnr = score(twin(cond))
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(args.seed))
    table = Table([("sigma", "g"), ("psnr_occ g=1", ".2f"), (f"psnr_occ g={args.guidance:g}", ".2f"),
                   ("twin", ".2f"), ("train share >= sigma", ".3f")])
    rows = []
    for sigma in args.sigmas:
        s = torch.full((x0.shape[0],), float(sigma))
        x = x0 + sigma * noise
        with torch.no_grad():
            plain = score(model(x, s, cond))
            guided = score(CFGDenoiser(model, {"cond": cond}, {"cond": torch.zeros_like(cond)}, args.guidance)(x, s))
        z = (math.log(sigma) - config.p_mean) / config.p_std
        share = 0.5 * math.erfc(z / math.sqrt(2))
        rows.append({"sigma": sigma, "psnr_occ": plain, "psnr_occ_guided": guided, "twin": twin_psnr, "train_share": share})
        table.row(sigma, plain, guided, twin_psnr, share)
    write_rows(args.json, rows, args)


if __name__ == "__main__":
    main()
