"""``amodal train``: train a stage-1 model from a JSON config, or export a run's EMA weights."""

from __future__ import annotations

from pathlib import Path

from amodal.cli import add_command

EXAMPLE = """\
  amodal train segmentation --config configs/default.json --out runs/default
  # killed? the same command resumes from the newest checkpoint in runs/default
  accelerate launch -m amodal train segmentation --config configs/default.json --out runs/default
  amodal train export runs/default --out my_model   # EMA weights of the newest checkpoint
  amodal train segmentation --config configs/default.json --out runs/default --stop-at 500   # first 500 steps only
"""


def register(subparsers) -> None:
    parser = add_command(subparsers, "train", "Train a stage-1 amodal segmentation model.", EXAMPLE)
    tasks = parser.add_subparsers(dest="task", metavar="TASK", required=True)

    seg = tasks.add_parser("segmentation", help="train (or resume) a diffusion or regression segmenter")
    seg.add_argument("--config", required=True, help="training config JSON (see configs/)")
    seg.add_argument("--out", default=None, help="run folder (default: runs/<config file stem>)")
    seg.add_argument(
        "--stop-at", type=int, default=None, metavar="STEP",
        help="stop after STEP steps with a checkpoint, as if killed there (the same command without it resumes)",
    )
    seg.add_argument("--no-progress", action="store_true", help="no progress bars")
    seg.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's choice; 1 is best on a busy machine)"
    )
    seg.set_defaults(func=_segmentation)

    export = tasks.add_parser("export", help="export the EMA weights of a run's newest checkpoint as a model folder")
    export.add_argument("run", help="run folder written by `amodal train segmentation`")
    export.add_argument("--out", required=True, help="model folder to write (config.json + model.safetensors)")
    export.add_argument("--checkpoint", default=None, help="a specific checkpoint folder (default: the newest)")
    export.set_defaults(func=_export)


def _segmentation(args) -> int:
    import torch

    from amodal.errors import InputError
    from amodal.training import TrainConfig, train_segmentation

    if args.threads is not None:
        if args.threads < 1:
            raise InputError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    config = TrainConfig.from_json(args.config)
    out = Path(args.out) if args.out else Path("runs") / Path(args.config).stem
    if args.stop_at is not None and args.stop_at < 1:
        raise InputError(f"--stop-at must be >= 1, got {args.stop_at}")
    result = train_segmentation(config, out, stop_at=args.stop_at, progress=not args.no_progress)
    if result.model_dir is None:
        print(f"stopped after {result.step} steps; resume with the same command, or export with `amodal train export {out}`")
    else:
        print(f"trained {result.step} steps; model: {result.model_dir}")
    return 0


def _export(args) -> int:
    from amodal.training import export_checkpoint

    out = export_checkpoint(args.run, args.out, args.checkpoint)
    print(f"exported {out}")
    return 0
