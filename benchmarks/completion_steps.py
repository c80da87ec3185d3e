"""Sampling settings of a completion model: hidden-region PSNR and sample spread against steps and guidance.

On the fixed validation windows of a stage-2 training config (each with a pasted occluder, truth
known), the model completes every window for each (steps, guidance) setting, with ``--samples``
samples, and the table reports:

- ``psnr_occ``: PSNR on the hidden pixels of sample 0 (Top-1), mean over windows;
- ``psnr_occ top-k``: the best of the samples per window (Top-k);
- ``spread``: mean per-pixel standard deviation over the samples on the hidden pixels (0..255);
- ``copy-modal``: the same PSNR with the hidden pixels left white, for scale.

The best Top-1 setting is what a model's config records as ``sampling_steps`` / ``sampling_guidance``::

    python benchmarks/completion_steps.py --model runs/default-completion/model --steps 2 4 8 25 --guidance 1 1.5 2
"""

from __future__ import annotations

from common import Table, completion_parser, completion_validation, set_threads, write_rows


def build_parser():
    parser = completion_parser(__doc__, "completion model (name or folder)")
    parser.add_argument("--steps", type=int, nargs="+", default=[2, 4, 8, 25], help="Euler step counts")
    parser.add_argument("--guidance", type=float, nargs="+", default=[1.0, 1.5], help="CFG scales")
    parser.add_argument("--samples", type=int, default=3, help="samples per window (Top-k and spread)")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    set_threads(args.threads)
    import numpy as np
    import torch

    from amodal.checkpoints.registry import load_completer
    from amodal.training.completion import hidden_psnr

    config, batch = completion_validation(args.config, args.cache)
    model = load_completer(args.model)
    hidden = (batch.amodal * (1 - batch.modal)) > 0.5
    copy = float(np.nanmean(hidden_psnr(batch.modal_rgb, batch).numpy()))
    table = Table([("steps", "d"), ("guidance", "g"), ("psnr_occ", ".2f"), ("psnr_occ top-k", ".2f"), ("spread", ".2f"),
                   ("copy-modal", ".2f")])
    rows = []
    for steps in args.steps:
        for guidance in args.guidance:
            generator = torch.Generator().manual_seed(args.seed)
            out = model.samples(batch.modal_rgb, batch.amodal, batch.modal, args.samples, steps=steps, guidance=guidance,
                                generator=generator)
            visible = batch.modal[:, None, :, None] > 0.5
            out = torch.where(visible, batch.modal_rgb[:, None], out)  # (B, S, T, 3, h, w), visible pixels as given
            psnr = torch.stack([hidden_psnr(out[:, s], batch) for s in range(args.samples)], dim=1)  # (B, S)
            spread = (out.std(dim=1) * 255).mean(dim=2)[hidden].mean() if args.samples > 1 else torch.tensor(0.0)
            row = {"steps": steps, "guidance": guidance, "psnr_occ": float(np.nanmean(psnr[:, 0].numpy())),
                   "psnr_occ_top_k": float(np.nanmean(psnr.max(dim=1).values.numpy())), "spread": float(spread),
                   "copy_modal": copy}
            rows.append(row)
            table.row(steps, guidance, row["psnr_occ"], row["psnr_occ_top_k"], row["spread"], copy)
    write_rows(args.json, rows, args)


if __name__ == "__main__":
    main()
