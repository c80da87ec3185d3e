"""The training loop of stage-1 models on Hugging Face Accelerate.

One CPU process here; the same code runs on several GPUs under ``accelerate
launch``: the model and optimiser go through ``accelerator.prepare``, gradients
through ``accelerator.backward``, and validation metrics are gathered from every
process. Every random draw of step ``s`` on process ``p`` comes from generators
seeded with ``(seed, s, p)``, and the Python/NumPy/torch global generators are
saved too, so a killed run resumed from its last checkpoint continues exactly as
if it had never stopped.

Run folder layout::

    OUT/config.json          the training config
    OUT/log.jsonl            one JSON object per log line / validation
    OUT/checkpoints/step_*/  resumable state (see amodal.training.checkpoint)
    OUT/data/                cached native-size clip pools
    OUT/model/               exported EMA weights (a model folder) at the end
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from amodal.errors import InputError
from amodal.util.fs import atomic_path, mark_output, output_command, remove_stale_temporaries_in, write_json
from amodal.util.processes import leave_group_at_exit
from amodal.segmentation.model import (
    SegmenterConfig,
    build_segmenter,
    load_segmenter_folder,
    save_segmenter,
)
from amodal.checkpoints.formats import OURS
from amodal.checkpoints.registry import resolve
from amodal.checkpoints.safetensors import load_state_strict, read_safetensors
from amodal.checkpoints.surgery import diffusion_from_regression, widen_condition
from amodal.training.checkpoint import pick_checkpoint, resume_newest, save_checkpoint
from amodal.training.config import TrainConfig
from amodal.training.data import Batch, WindowSampler, open_pool, validation_windows
from amodal.training.ema import EMA
from amodal.training.objective import LOSSES, distillation_loss


@dataclass(frozen=True)
class TrainResult:
    """Where a run left its outputs."""

    out_dir: Path
    step: int  # optimiser steps completed
    model_dir: Path | None  # exported EMA model folder (None when stopped early)


def initial_state(path: str | Path, config: SegmenterConfig) -> dict[str, torch.Tensor]:
    """Backbone weights of ``path`` as the start of a model of ``config``.

    ``path`` is a model folder written by ``amodal train`` or a bundled model name
    (``"default"``, ``"default-regression"``: fine-tuning the shipped weights).
    Allowed differences: added condition channels (new priors, self-conditioning),
    which start at zero; and a regression twin as the start of a ``"logit"``
    diffusion model (:func:`amodal.checkpoints.surgery.diffusion_from_regression`).
    """
    found = resolve(path, "segmentation", flag="init_from")
    if found.kind != OURS:
        raise InputError(
            f"init_from {path}: a {found.kind} checkpoint cannot start a training run; "
            "pass a model folder written by `amodal train` or a bundled model name"
        )
    start = load_segmenter_folder(found.path)
    old = start.config
    if old.objective == "regression" and config.objective == "diffusion":
        if config.parameterization != "logit":
            raise InputError(
                f"init_from {path}: a regression twin can only start a diffusion model with "
                "parameterization 'logit' (its output is a logit)"
            )
        adapt = diffusion_from_regression
    elif (old.objective, old.parameterization) != (config.objective, config.parameterization):
        raise InputError(
            f"init_from {path}: a {old.objective} ({old.parameterization}) model cannot start a "
            f"{config.objective} ({config.parameterization}) one"
        )
    else:
        adapt = widen_condition  # no added channels: the weights as they are
    try:
        return adapt(start.backbone.state_dict(), old.backbone, config.backbone)
    except InputError:
        raise InputError(
            f"init_from {path}: its backbone config differs from this run's model.backbone "
            "(only added condition channels are allowed)"
        ) from None


def with_sampling(model_config, steps: int | None, guidance: float | None, box_mode: str | None = None,
                  sample_levels: str | None = None):
    """``model_config`` with its default sampling steps, guidance, box mode and sample levels replaced where given
    (validated again)."""
    changes = {k: v for k, v in (("sampling_steps", steps), ("sampling_guidance", guidance)) if v is not None}
    if changes and model_config.objective != "diffusion":
        raise InputError("--sampling-steps and --sampling-guidance are for diffusion models; a one-step model has neither")
    if steps is not None and steps < 1:
        raise InputError(f"--sampling-steps must be >= 1, got {steps}")
    if guidance is not None and guidance < 0:
        raise InputError(f"--sampling-guidance must be >= 0, got {guidance}")
    if box_mode is not None:
        changes["box_mode"] = box_mode
    if sample_levels is not None:
        changes["sample_levels"] = sample_levels
    return dataclasses.replace(model_config, **changes) if changes else model_config


def distillation_teacher(config: TrainConfig):
    """The frozen teacher of a guidance-distillation run (``config.distill_from``), checked against the run's model."""
    found = resolve(config.distill_from, "segmentation", flag="distill_from")
    if found.kind != OURS:
        raise InputError(f"distill_from {config.distill_from}: pass a model folder written by `amodal train` or a bundled model name")
    teacher = load_segmenter_folder(found.path)
    t, m = teacher.config, config.model
    if t.objective != "diffusion" or t.parameterization != "logit":
        raise InputError(f"distill_from {config.distill_from}: the teacher must be a diffusion model with parameterization 'logit'")
    if (t.priors, t.uses_depth, t.self_condition) != (m.priors, m.uses_depth, m.self_condition):
        raise InputError(
            f"distill_from {config.distill_from}: the teacher's condition (priors {list(t.priors)}, depth {t.uses_depth}, "
            f"self-conditioning {t.self_condition}) differs from this run's model"
        )
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher.eval()


def learning_rate_factor(step: int, config: TrainConfig) -> float:
    """Multiplier of ``config.lr`` at ``step``: linear warm-up, then cosine decay to ``lr_final_ratio``."""
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    span = max(1, config.steps - config.warmup_steps)
    progress = min(1.0, (step - config.warmup_steps) / span)
    final = config.lr_final_ratio
    return final + (1 - final) * 0.5 * (1 + math.cos(math.pi * progress))


def step_generator(seed: int, step: int, process: int) -> torch.Generator:
    """The torch generator (CPU) of the model-side randomness of one step of one process."""
    state = np.random.SeedSequence([seed, step, process, 1]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def mask_iou_frames(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-frame IoU of binary masks ``(N, T, H, W) bool``: ``(ious, valid)``, both ``(N, T)``.

    ``valid`` is False where both masks are empty (IoU undefined there).
    """
    inter = (pred & target).flatten(2).sum(-1).float()
    union = (pred | target).flatten(2).sum(-1).float()
    return inter / union.clamp(min=1), union > 0


def validation_scores(pred: torch.Tensor, batch: Batch) -> torch.Tensor:
    """``(N, 2)`` per-window scores ``[IoU, IoU_hidden]`` (nan where undefined).

    ``IoU`` is the mean over frames of the amodal-mask IoU; ``IoU_hidden`` the
    mean over frames of the IoU restricted to pixels outside the modal mask
    (the part the model has to invent), over frames where something is hidden.
    ``pred``: ``(N, T, H, W) bool``, already unioned with the modal mask.
    """
    modal, amodal = batch.modal > 0.5, batch.amodal > 0.5
    iou, valid = mask_iou_frames(pred, amodal)
    iou_h, valid_h = mask_iou_frames(pred & ~modal, amodal & ~modal)
    full = (iou * valid).sum(1) / valid.sum(1).clamp(min=1)
    full = torch.where(valid.any(1), full, torch.nan)
    hidden = (iou_h * valid_h).sum(1) / valid_h.sum(1).clamp(min=1)
    hidden = torch.where(valid_h.any(1), hidden, torch.nan)
    return torch.stack([full, hidden], dim=1)


def _shard(batch: Batch, index: int, count: int) -> Batch:
    return Batch(*(t[index::count] for t in (batch.modal, batch.amodal, batch.depth, batch.has_depth)))


def validate(model, batch: Batch, config: TrainConfig, accelerator) -> dict:
    """Predict the validation windows with ``model`` (EMA weights) and gather ``mIoU`` / ``mIoU_hidden`` (with depth)."""
    shard = _shard(batch, accelerator.process_index, accelerator.num_processes)
    size = math.ceil(batch.modal.shape[0] / accelerator.num_processes)
    scores = torch.full((size, 2), torch.nan)
    generator = torch.Generator().manual_seed(config.seed)
    device = accelerator.device
    if shard.modal.shape[0]:
        depth = torch.where(shard.has_depth[:, None, None, None], shard.depth, 0.0)
        soft = model.sample(
            shard.modal.to(device),
            depth.to(device) if bool(shard.has_depth.all()) else None,
            steps=config.val_steps,
            guidance=config.val_guidance,
            generator=generator,
        ).cpu()
        pred = (soft > model.threshold) | (shard.modal > 0.5)
        scores[: shard.modal.shape[0]] = validation_scores(pred, shard)
    gathered = accelerator.gather(scores.to(device)).cpu()
    return {
        "mIoU": float(np.nanmean(gathered[:, 0].numpy())),
        "mIoU_hidden": float(np.nanmean(gathered[:, 1].numpy())),
        "windows": int(batch.modal.shape[0]),
    }


def _truncate_log(path: Path, step: int) -> None:
    """Drop log lines written after ``step`` (by a run killed before its next checkpoint)."""
    if not path.is_file():
        return
    kept = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line).get("step", 0) <= step]
    with atomic_path(path) as tmp:
        tmp.write_text("".join(line + "\n" for line in kept))


@dataclass
class Task:
    """What the loop needs of one kind of model: the stage-specific parts of a training run.

    The loop owns everything else (Accelerate, optimiser, schedule, EMA, checkpoints, exact
    resume, logging, progress), so both stages train, resume and log the same way.
    """

    name: str  # shown on the progress bar ("diffusion", "completion diffusion")
    command: str  # the command whose output the run folder is (its marker)
    model: torch.nn.Module  # the model being optimised; ``model.backbone`` is what checkpoints hold
    eval_model: torch.nn.Module  # a copy that validation loads the EMA weights into
    batch: Callable  # (step, process, batch_size) -> the step's batch, a function of its arguments
    loss: Callable  # (model, batch, generator) -> scalar loss
    validate: Callable  # (eval_model, accelerator) -> metrics dict (gathered over processes)
    describe: Callable  # metrics dict -> one line for the progress bar
    save: Callable  # (folder, EMA state dict) -> writes the exported model folder
    # The parameter names the EMA averages (None: all of ``model.backbone``'s); a model that trains
    # a subset of a large network (the ``svd`` backbone) averages only what it trains.
    ema_names: tuple[str, ...] | None = None
    # ``ema state -> context manager`` under which ``validate(None, accelerator)`` sees the EMA
    # weights (None: they are loaded into ``eval_model`` strictly), for models too large to copy.
    with_ema: Callable | None = None


def train_segmentation(
    config: TrainConfig,
    out_dir: str | Path,
    *,
    stop_at: int | None = None,  # stop after this many steps (with a checkpoint), as if killed; None = run to the end
    progress: bool = True,  # tqdm bars on stderr
) -> TrainResult:
    """Train (or resume) one stage-1 model; see the module docstring for the run folder.

    A run folder with checkpoints is resumed from its newest one; its saved
    config must equal ``config``.
    """

    def build(accelerator, main: bool) -> Task:
        mcfg = config.model
        if config.init_from:
            # Checked before the data is made (minutes), so that a wrong init_from fails at once; with
            # the torch generator forked, so that the run's random draws are what they always were.
            with torch.random.fork_rng(devices=[]):
                initial_state(config.init_from, mcfg)
        cache_dir = Path(config.data.cache_dir) if config.data.cache_dir else Path(out_dir) / "data"
        with accelerator.main_process_first():
            train_pool = open_pool(config.data, "train", mcfg.height, mcfg.width, cache_dir, progress and main)
            val_pool = open_pool(config.data, "val", mcfg.height, mcfg.width, cache_dir, progress and main)
        sampler = WindowSampler(train_pool, config.data, mcfg.num_frames, config.seed)
        val_batch = validation_windows(val_pool, config.data, mcfg.num_frames)
        model = build_segmenter(mcfg)
        if config.init_from:
            load_state_strict(model.backbone, initial_state(config.init_from, mcfg), config.init_from)
        loss_fn = LOSSES[mcfg.objective]
        if config.distill_from:
            teacher = distillation_teacher(config).to(accelerator.device)
            loss_fn = lambda m, batch, config, generator: distillation_loss(m, teacher, batch, config, generator)  # noqa: E731
        return Task(
            name=mcfg.objective,
            command="train segmentation",
            model=model,
            eval_model=build_segmenter(mcfg).to(accelerator.device).eval(),
            batch=sampler.batch,
            loss=lambda m, batch, generator: loss_fn(m, batch, config, generator),
            validate=lambda m, acc: validate(m, val_batch, config, acc),
            describe=lambda metrics: f"val mIoU {metrics['mIoU']:.4f} mIoU_hidden {metrics['mIoU_hidden']:.4f}",
            save=lambda folder, state: save_segmenter(folder, mcfg, state),
        )

    return run_training(build, config, out_dir, stop_at=stop_at, progress=progress)


def run_training(build: Callable, config, out_dir: str | Path, *, stop_at: int | None = None, progress: bool = True) -> TrainResult:
    """The loop every model trains with: ``build(accelerator, is_main) -> Task`` supplies the stage's parts.

    ``config`` holds the optimisation settings both stages share (steps, batch_size, lr,
    warmup_steps, lr_final_ratio, weight_decay, grad_clip, ema_decay, log_every,
    checkpoint_every, keep_checkpoints, validate_every, seed, bf16 or mixed_precision) and ``to_dict()``;
    ``grad_accumulation`` and ``adam_betas`` where it has them.
    """
    from accelerate import Accelerator
    from tqdm import tqdm

    out_dir = Path(out_dir)
    # cpu=True without CUDA: several processes started by `accelerate launch` then
    # join one CPU (gloo) group instead of each running alone.
    precision = getattr(config, "mixed_precision", None) or ("bf16" if config.bf16 else "no")
    accumulate = getattr(config, "grad_accumulation", 1)  # micro-batches per optimiser step
    accelerator = Accelerator(mixed_precision=precision, cpu=not torch.cuda.is_available())
    if accelerator.num_processes > 1:
        leave_group_at_exit()
    main = accelerator.is_main_process
    config_path = out_dir / "config.json"
    if config_path.is_file():
        saved = json.loads(config_path.read_text())
        if saved != json.loads(json.dumps(config.to_dict())):
            raise InputError(
                f"{config_path}: this run folder was started with a different config; "
                "use a new --out folder or restore the original config"
            )

    torch.manual_seed(config.seed)
    np.random.seed(config.seed % 2**32)
    task = build(accelerator, main)  # a bad init_from or data fails here, before the run folder is marked
    if main and not config_path.is_file():
        write_json(config_path, config.to_dict())
    if main and output_command(out_dir) is None:
        mark_output(out_dir, task.command)
    model = task.model
    trained = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trained, lr=config.lr, weight_decay=config.weight_decay, betas=getattr(config, "adam_betas", (0.9, 0.99)))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: learning_rate_factor(s, config))
    ema = EMA(model.backbone, config.ema_decay, task.ema_names)

    step = 0
    pending = [0.0, 0]  # loss sum and count since the last log line
    resumed = resume_newest(out_dir / "checkpoints", model.backbone, ema, optimizer, scheduler)
    if resumed is not None:
        step, pending = resumed.step, list(resumed.state["pending_loss"])
    if main:
        # Lines logged after the checkpoint resumed from (or before the first one) are logged again.
        _truncate_log(out_dir / "log.jsonl", step)
        if (out_dir / "checkpoints").is_dir():
            remove_stale_temporaries_in(out_dir / "checkpoints")
    model, optimizer = accelerator.prepare(model, optimizer)
    log_path = out_dir / "log.jsonl"

    def log(record: dict) -> None:
        if main:
            with open(log_path, "a") as f:
                f.write(json.dumps(record) + "\n")

    def checkpoint() -> None:
        accelerator.wait_for_everyone()
        if main:
            save_checkpoint(
                out_dir / "checkpoints",
                step,
                accelerator.unwrap_model(model).backbone,
                ema,
                optimizer,
                scheduler,
                {"pending_loss": pending, "data_position": {"step": step}, "config": config.to_dict()},
                config.keep_checkpoints,
            )

    def run_validation() -> None:
        if task.with_ema is None:
            load_state_strict(task.eval_model.backbone, ema.state_dict(), "EMA weights")
            metrics = task.validate(task.eval_model, accelerator)
        else:
            with task.with_ema(ema.state_dict()):
                metrics = task.validate(None, accelerator)
        log({"step": step, "val": metrics})
        if main and progress:
            bar.write(f"step {step}: {task.describe(metrics)}")

    end = config.steps if stop_at is None else min(config.steps, stop_at)
    bar = tqdm(total=config.steps, initial=step, desc=f"train {task.name}", unit="step", disable=not (progress and main))
    tic = time.perf_counter()
    model.train()
    while step < end:
        losses = []
        for micro in range(accumulate):  # one micro-batch (the plain case) draws as step `step` always did
            draw = step if accumulate == 1 else step * accumulate + micro
            batch = task.batch(draw, accelerator.process_index, config.batch_size)
            generator = step_generator(config.seed, draw, accelerator.process_index)
            with accelerator.autocast():
                loss = task.loss(model, batch, generator)
            accelerator.backward(loss / accumulate)
            losses.append(loss.detach())
        loss = torch.stack(losses).mean()
        if config.grad_clip > 0:
            accelerator.clip_grad_norm_(trained, config.grad_clip)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        ema.update(accelerator.unwrap_model(model).backbone)
        step += 1
        pending[0] += float(accelerator.gather(loss.detach()[None]).mean())
        pending[1] += 1
        bar.update(1)
        if step % config.log_every == 0:
            now = time.perf_counter()
            record = {
                "step": step,
                "loss": pending[0] / pending[1],
                "lr": scheduler.get_last_lr()[0],
                "sec_per_step": (now - tic) / pending[1],
            }
            log(record)
            bar.set_postfix(loss=f"{record['loss']:.4f}")
            pending, tic = [0.0, 0], now
        if config.validate_every and step % config.validate_every == 0:
            run_validation()
        if step % config.checkpoint_every == 0 or step == end:
            checkpoint()
    bar.close()

    if step < config.steps:
        return TrainResult(out_dir, step, None)
    if not config.validate_every or step % config.validate_every:
        run_validation()
    model_dir = out_dir / "model"
    if main:
        task.save(model_dir, ema.state_dict())
    accelerator.wait_for_everyone()
    return TrainResult(out_dir, step, model_dir)


def export_checkpoint(
    run_dir: str | Path,
    out: str | Path,
    checkpoint: str | Path | None = None,
    sampling_steps: int | None = None,  # record a measured best setting in the model's config; None = the run's
    sampling_guidance: float | None = None,
    box_mode: str | None = None,  # record how the model is best given amodal boxes; None = the run's
    sample_levels: str | None = None,  # record how the model's samples are thresholded; None = the run's
) -> Path:
    """Export the EMA weights of a run's newest (or the given) checkpoint as a model folder."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file():
        raise InputError(
            f"{run_dir}: not a training run folder (no config.json); pass the --out folder of `amodal train segmentation`"
        )
    config = TrainConfig.from_json(run_dir / "config.json")
    checkpoint = pick_checkpoint(run_dir, checkpoint)
    state = read_safetensors(Path(checkpoint) / "ema.safetensors", fix="pick another checkpoint with --checkpoint")
    model = build_segmenter(config.model)
    load_state_strict(model.backbone, state, str(Path(checkpoint) / "ema.safetensors"))
    model_config = with_sampling(config.model, sampling_steps, sampling_guidance, box_mode, sample_levels)
    save_segmenter(out, model_config, model.backbone.state_dict())
    return Path(out)
