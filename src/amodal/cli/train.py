"""``amodal train``: train a stage-1 or stage-2 model from a JSON config, or export a run's EMA weights."""

from __future__ import annotations

import json
from pathlib import Path

from amodal.cli import add_command, add_overwrite
from amodal.cli.flags import SAMPLE_LEVELS, add_progress
from amodal.errors import InputError

EXAMPLE = """\
  amodal train segmentation --config configs/default.json --out runs/default --threads 1
  # killed? the same command resumes from the newest checkpoint in runs/default
  amodal train segmentation --config configs/finetune-default.json --out runs/finetune   # from the bundled weights
  accelerate launch -m amodal train segmentation --config configs/default.json --out runs/default
  amodal train export runs/default --out my_model   # EMA weights of the newest checkpoint
  amodal train export runs/default --out my_model --sampling-steps 1   # and its measured best steps as the default
  amodal train segmentation --config configs/default.json --out runs/default --stop-at 500   # first 500 steps only
  amodal train completion --config configs/completion/default-completion.json --out runs/default-completion --threads 1
  amodal train segmentation --config my-svd.json --out runs/svd   # "backbone": "svd": fine-tune the paper's model
  amodal train export runs/svd --out my-diffusion-vas              # an official-layout folder (docs/training-svd.md)
  # configs/README.md: the recipes; configs/curriculum/README.md: how the bundled models were trained
"""


DESCRIPTIONS = {
    "segmentation": (
        "Train (or resume) a stage-1 model: a diffusion or one-step regression segmenter that predicts amodal masks "
        "from modal masks (and depth), as the JSON config describes (configs/README.md). Checkpoints go to "
        "OUT/checkpoints; running the same command again resumes from the newest one exactly. A config with "
        '"backbone": "svd" fine-tunes the paper\'s Stable Video Diffusion architecture instead (docs/training-svd.md).'
    ),
    "completion": (
        "Train (or resume) a stage-2 model: a diffusion or one-step regression completer that paints each object's "
        "hidden pixels inside its amodal mask, on object-centred crops, as the JSON config describes "
        "(configs/completion/). Checkpoints and resume as for `amodal train segmentation`."
    ),
    "export": (
        "Turn a training run into a model folder (config.json + model.safetensors) that every command takes as "
        "--model: the EMA weights of the run's newest checkpoint (or --checkpoint), with the sampling settings to "
        "use by default (--sampling-steps, --sampling-guidance). An svd run exports an official-layout folder."
    ),
}

TASK_EXAMPLES = {
    "segmentation": """\
  amodal train segmentation --config configs/default.json --out runs/default --threads 1
  # killed? the same command resumes from the newest checkpoint in runs/default
  amodal train segmentation --config configs/finetune-default.json --out runs/finetune   # from the bundled weights
  amodal train segmentation --config configs/default.json --out runs/default --stop-at 500 --quiet   # first 500 steps only
  accelerate launch -m amodal train segmentation --config configs/default.json --out runs/default
""",
    "completion": """\
  amodal train completion --config configs/completion/default-completion.json --out runs/default-completion --threads 1
  amodal train completion --config configs/completion/default-completion.json --out runs/default-completion --stop-at 200
""",
    "export": """\
  amodal train export runs/default --out my_model   # EMA weights of the newest checkpoint
  amodal train export runs/default --out my_model --sampling-steps 1 --sampling-guidance 1.0   # its measured best as the default
  amodal train export runs/default --checkpoint runs/default/checkpoints/step_00001200 --out my_model-1200
  amodal segment --frames clip/rgbs --masks clip/masks --model my_model --out runs/clip   # then use it
""",
}


def register(subparsers) -> None:
    parser = add_command(subparsers, "train", "Train an amodal segmentation (stage 1) or content-completion (stage 2) model.", EXAMPLE)
    tasks = parser.add_subparsers(dest="task", metavar="TASK", required=True)

    for task, what, handler in (
        ("segmentation", "a diffusion or regression segmenter (stage 1)", _segmentation),
        ("completion", "a diffusion or regression completer (stage 2)", _completion),
    ):
        p = tasks.add_parser(task, help=f"train (or resume) {what}", description=DESCRIPTIONS[task],
                             epilog="example:\n" + TASK_EXAMPLES[task], formatter_class=parser.formatter_class)
        p.add_argument("--config", required=True, help="training config JSON (see configs/README.md)")
        p.add_argument("--out", default=None, help="run folder (default: runs/<config file stem>)")
        add_overwrite(p, "--out run folder")
        p.add_argument(
            "--stop-at", type=int, default=None, metavar="STEP",
            help="stop after STEP steps with a checkpoint, as if killed there (the same command without it resumes)",
        )
        add_progress(p)
        p.add_argument(
            "--threads", type=int, default=None, help="torch CPU threads (default: torch's choice; 1 is best on a busy machine)"
        )
        p.set_defaults(func=handler)

    export = tasks.add_parser("export", help="export the EMA weights of a run's newest checkpoint as a model folder",
                              description=DESCRIPTIONS["export"], epilog="example:\n" + TASK_EXAMPLES["export"],
                              formatter_class=parser.formatter_class)
    export.add_argument("run", help="run folder written by `amodal train segmentation` or `amodal train completion`")
    export.add_argument("--out", required=True, help="model folder to write (config.json + model.safetensors)")
    add_overwrite(export)
    export.add_argument("--checkpoint", default=None, help="a specific checkpoint folder (default: the newest)")
    export.add_argument("--sampling-steps", type=int, default=None, metavar="N",
                        help="diffusion models: record N as the model's default steps (its measured best; default: the run's config)")
    export.add_argument("--sampling-guidance", type=float, default=None, metavar="G",
                        help="diffusion models: record G as the model's default guidance (default: the run's config)")
    export.add_argument("--box-mode", choices=("clip", "crop"), default=None,
                        help="stage 1: record how the model is best given amodal boxes, crop for one trained on box crops (default: the run's config)")
    export.add_argument("--sample-levels", choices=SAMPLE_LEVELS, default=None,
                        help="stage 1: record how the model's samples are thresholded, stratified for a one-step model "
                             "whose samples would otherwise agree (default: the run's config)")
    export.set_defaults(func=_export)


def _prepare(args, config, command: str) -> Path:
    """Threads, --stop-at and the run folder, checked before any data is made."""
    import torch

    from amodal.checkpoints.registry import model_inputs
    from amodal.util.fs import check_output

    if args.threads is not None:
        if args.threads < 1:
            raise InputError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    if args.stop_at is not None and args.stop_at < 1:
        raise InputError(f"--stop-at must be >= 1, got {args.stop_at}")
    out = Path(args.out) if args.out else Path("runs") / Path(args.config).stem
    starts = model_inputs(*(getattr(config, k, "") or None for k in ("init_from", "distill_from", "start_from")))
    check_output(
        out, command=command, resume=True, overwrite=args.overwrite, inputs=(args.config, *starts),
        earlier=lambda run: (run / "config.json").is_file() and (run / "checkpoints").is_dir(),
    )
    return out


def _svd(args, stage: str) -> int | None:
    """Train an ``svd``-backbone config (``"backbone": "svd"``); ``None`` when the config is a lite one."""
    from amodal.training.svd import SVDTrainConfig, is_svd_config, read_config_json, train_svd

    values = read_config_json(args.config)
    if not is_svd_config(values):
        return None
    config = SVDTrainConfig.from_dict(values, where=str(args.config))
    if config.stage != stage:
        raise InputError(f"--config {args.config}: an svd {config.stage} config; run `amodal train {config.stage}`")
    out = _prepare(args, config, f"train {stage}")
    result = train_svd(config, out, stop_at=args.stop_at, progress=not args.quiet)
    return _report(result, out)


def _completion(args) -> int:
    from amodal.training.completion import CompletionTrainConfig, train_completion

    svd = _svd(args, "completion")
    if svd is not None:
        return svd
    config = CompletionTrainConfig.from_json(args.config)
    out = _prepare(args, config, "train completion")
    result = train_completion(config, out, stop_at=args.stop_at, progress=not args.quiet)
    return _report(result, out)


def _segmentation(args) -> int:
    from amodal.training import TrainConfig, train_segmentation

    svd = _svd(args, "segmentation")
    if svd is not None:
        return svd
    config = TrainConfig.from_json(args.config)
    out = _prepare(args, config, "train segmentation")
    result = train_segmentation(config, out, stop_at=args.stop_at, progress=not args.quiet)
    return _report(result, out)


def _report(result, out: Path) -> int:
    if result.model_dir is None:
        print(f"stopped after {result.step} steps; resume with the same command, or export with `amodal train export {out}`")
    else:
        print(f"trained {result.step} steps; model: {result.model_dir}")
    return 0


def _export(args) -> int:
    from amodal.training import export_checkpoint
    from amodal.util.fs import check_output

    from amodal.util.fs import output_command

    # What an export reads: the run's config and its checkpoints. A new folder beside them in the run
    # folder (runs/x/export-1200) is allowed; the run folder itself or a place inside the checkpoints is not.
    run = Path(args.run)
    reads = (run / "config.json", run / "checkpoints", args.checkpoint)
    check_output(args.out, command="train export", inputs=reads if run.is_dir() else (run,), overwrite=args.overwrite)
    from amodal.training.svd import is_svd_config

    run_config = Path(args.run) / "config.json"
    if run_config.is_file() and is_svd_config(json.loads(run_config.read_text())):
        from amodal.training.svd import export_svd_run

        if args.sample_levels is not None:
            raise InputError("--sample-levels is for our stage-1 models; svd exports keep the reference's sampling")
        if args.sampling_steps is not None or args.sampling_guidance is not None or args.box_mode is not None:
            raise InputError("--sampling-steps/--sampling-guidance: svd exports are official-layout folders, which keep "
                             "the reference's sampling settings; pass --steps/--guidance when running them")
        print(f"exported {export_svd_run(args.run, args.out, args.checkpoint)}")
        return 0
    if output_command(Path(args.run)) == "train completion":
        from amodal.training.completion import export_completion

        if args.box_mode is not None or args.sample_levels is not None:
            flag = "--box-mode" if args.box_mode is not None else "--sample-levels"
            raise InputError(f"{flag} is for stage-1 models; pass it when exporting a `train segmentation` run")
        out = export_completion(args.run, args.out, args.checkpoint, args.sampling_steps, args.sampling_guidance)
    else:
        out = export_checkpoint(args.run, args.out, args.checkpoint, args.sampling_steps, args.sampling_guidance,
                                args.box_mode, args.sample_levels)
    print(f"exported {out}")
    return 0
